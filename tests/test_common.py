"""scikit-learn's estimator checks over every estimator of mnistdist, as
``sklearn/tests/test_common.py`` runs them over scikit-learn's.

The checks feed random data of any width. The image estimators need square images, and
:class:`PixelRange` refuses a batch wholly within 0-1 (pixels scaled to 0-1), so the checks
that feed such data are expected to fail, each with its reason. ``xfail_strict``: a listed
check that starts to pass fails this test, so the lists stay true.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from mnistdist.data import PixelRange
from mnistdist.neighbors import DeformationKNNClassifier, KNNClassifier
from mnistdist.preprocessing import Augment, Deskew, GaussianBlur

ESTIMATORS = [
    KNNClassifier(n_neighbors=3),
    DeformationKNNClassifier(n_neighbors=1, n_candidates=2),
    PixelRange(),
    Deskew(),
    GaussianBlur(),
    Augment(),
]

#: Checks that fit random data of a width that is no square.
NOT_SQUARE = (
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_pipeline_consistency",
    "check_readonly_memmap_input",
)
NOT_SQUARE_TRANSFORMER = (
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
)
NOT_SQUARE_CLASSIFIER = (
    "check_classifier_data_not_an_array",
    "check_classifiers_classes",
    "check_classifiers_one_label",
    "check_classifiers_train",
    "check_supervised_y_2d",
)
#: Checks whose data lie within 0-1: pixels scaled to 0-1, which a saved model refuses.
SCALED_PIXELS = (
    "check_dtype_object",
    "check_estimators_nan_inf",
    "check_fit_score_takes_y",
    "check_transformers_unfitted_stateless",
)


def _expected_failed_checks(estimator) -> dict[str, str]:
    if isinstance(estimator, PixelRange):
        return dict.fromkeys(SCALED_PIXELS, "its data are pixels scaled to 0-1")
    if isinstance(estimator, DeformationKNNClassifier):
        names = NOT_SQUARE + NOT_SQUARE_CLASSIFIER
    elif isinstance(estimator, (Deskew, GaussianBlur, Augment)):
        names = NOT_SQUARE + NOT_SQUARE_TRANSFORMER
        if not isinstance(estimator, Augment):  # Augment needs fit, so this check skips it
            names += ("check_transformers_unfitted_stateless",)
    else:
        names = ()
    return dict.fromkeys(names, "its data are not square images")


@parametrize_with_checks(
    ESTIMATORS, expected_failed_checks=_expected_failed_checks, xfail_strict=True
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
