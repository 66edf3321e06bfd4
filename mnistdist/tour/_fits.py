"""The tour's fits split at their natural grain, each piece equal to scikit-learn's unsplit fit.

Every function here runs as one task on a worker. Each takes the data it
needs (arrays, or the list of cross-validation folds and a fold's index) and
returns something small: a class's coefficients, a fitted binary model, a
block of predictions, the class probabilities of a chunk of trees.

How each split reproduces scikit-learn (the digits tests check each with
exact equality against the unsplit call):

- **one-vs-rest of a multiclass** ``SGDClassifier``: scikit-learn draws one
  seed per class from ``random_state`` and fits each class with
  ``fit_binary``; :func:`fit_sgd_class` draws the same seeds and fits only
  its class, and :func:`sgd_from_classes` stacks the classes' coefficients
  into an ordinary ``SGDClassifier``;
- **one-vs-one** and **one-vs-rest** meta-estimators: each pair or class is
  fitted by scikit-learn's own helper (``_fit_ovo_binary``,
  ``_fit_binary``), and the meta-estimator is rebuilt around the fitted
  models, so ``predict`` is scikit-learn's;
- **random forests**: a chunk of trees is fitted by a warm-started forest
  that believes it already holds the trees before it, so it skips their
  seeds exactly as scikit-learn's warm start does, and its trees' seeds and
  bootstrap samples are the unsplit forest's. Their class probabilities are
  summed in tree order, as the unsplit forest sums them.

The private helpers used here (``fit_binary``, ``_fit_ovo_binary``,
``_fit_binary``) are pinned by ``constraints.txt``; the tests notice a
scikit-learn that changes them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import SGDClassifier
from sklearn.linear_model._stochastic_gradient import MAX_INT, fit_binary
from sklearn.multiclass import (
    OneVsOneClassifier,
    OneVsRestClassifier,
    _fit_binary,
    _fit_ovo_binary,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import LabelBinarizer, StandardScaler
from sklearn.utils import check_random_state

SEED = 42  #: the book's random_state, everywhere


def sgd() -> SGDClassifier:
    """The book's ``SGDClassifier(random_state=42)``."""
    return SGDClassifier(random_state=SEED)


class Never5Classifier(BaseEstimator):
    """The book's baseline: says "not 5" for every image.

    Deliberately not a ``ClassifierMixin``: ``cross_val_score(cv=3)`` then
    splits with plain ``KFold``, as in the book, and each fold's accuracy is
    exactly its share of non-5s.
    """

    def fit(self, X, y=None):
        """Learn nothing."""
        return self

    def predict(self, X):
        """``False`` (not a 5) for every row of ``X``."""
        return np.zeros(len(X), dtype=bool)


def multilabel_targets(y: np.ndarray) -> np.ndarray:
    """The book's two labels per digit: large (7, 8, 9) and odd."""
    return np.c_[y >= 7, y % 2 == 1]


def rows(folds: list | None, f: int | None, part: int = 0):
    """The rows of fold ``f`` (``part`` 0: training, 1: validation), or all rows for ``f=None``."""
    return slice(None) if f is None else folds[f][part]


def fit_predict_fold(estimator, X, y, folds, f: int, methods: tuple[str, ...]) -> dict:
    """Fit a clone on fold ``f``'s training rows; each method's output on its validation rows.

    One fit serves every call that shares it: ``cross_val_score``'s
    accuracy, ``cross_val_predict``'s predictions and decision scores, and
    the book's hand-written loop all come from the same fold's model.
    """
    train, test = folds[f]
    model = clone(estimator).fit(X[train], y[train])
    return {method: getattr(model, method)(X[test]) for method in methods}


@dataclasses.dataclass
class ClassFit:
    """One class of a one-vs-rest ``SGDClassifier``: its row of ``coef_``, intercept, epochs."""

    classes: np.ndarray
    coef: np.ndarray
    intercept: float
    n_iter: int
    n_samples: int


class _OneClassSGD(SGDClassifier):
    """An ``SGDClassifier`` whose one-vs-rest fits only class ``_only_class``.

    Its ``_fit_multiclass`` is scikit-learn's, less the loop over classes:
    the same per-class seeds drawn from ``random_state``, the same
    validation mask, the same ``fit_binary`` call for the one class.
    """

    _only_class = 0

    def _fit_multiclass(self, X, y, alpha, learning_rate, sample_weight, max_iter):
        """Fit class ``_only_class`` of the one-vs-rest, as upstream fits each class."""
        if self.average:
            raise NotImplementedError("averaged SGD is not split by class")
        validation_mask = self._make_validation_split(y, sample_mask=sample_weight > 0)
        seeds = check_random_state(self.random_state).randint(MAX_INT, size=len(self.classes_))
        i = self._only_class
        _, intercept, n_iter = fit_binary(
            self,
            i,
            X,
            y,
            alpha,
            learning_rate,
            max_iter,
            self._expanded_class_weight[i],
            1.0,
            sample_weight,
            validation_mask=validation_mask,
            random_state=seeds[i],
        )
        self.intercept_[i] = intercept  # coef_[i] was updated in place, as upstream
        self.t_ += n_iter * X.shape[0]
        self.n_iter_ = n_iter


def fit_sgd_class(estimator: SGDClassifier, X, y, folds, f: int | None, i: int) -> ClassFit:
    """Class ``i`` of ``estimator``'s one-vs-rest, fitted on fold ``f``'s training rows."""
    train = rows(folds, f)
    model = _OneClassSGD(**estimator.get_params())
    model._only_class = i
    model.fit(X[train], y[train])
    if len(model.classes_) < 3:
        raise ValueError("fit_sgd_class splits multiclass problems (3 classes or more)")
    return ClassFit(
        model.classes_, model.coef_[i].copy(), model.intercept_[i], model.n_iter_, len(y[train])
    )


def sgd_from_classes(estimator: SGDClassifier, fits: list[ClassFit]) -> SGDClassifier:
    """The fitted ``SGDClassifier`` that the classes' fits make together, as upstream builds it."""
    model = clone(estimator)
    model.classes_ = fits[0].classes
    model.coef_ = np.stack([fit.coef for fit in fits])  # C-ordered, as upstream allocates it
    model.intercept_ = np.array([fit.intercept for fit in fits], dtype=model.coef_.dtype)
    n_iter = 0.0
    for fit in fits:  # upstream: the most epochs of any class
        n_iter = max(n_iter, fit.n_iter)
    model.n_iter_ = n_iter
    model.t_ = 1.0 + n_iter * fits[0].n_samples
    model.n_features_in_ = model.coef_.shape[1]
    model._loss_function_ = model._get_loss_function(model.loss)
    return model


def sgd_predict_fold(estimator, fits: list[ClassFit], X, folds, f: int) -> np.ndarray:
    """Predictions of the assembled one-vs-rest SGD on fold ``f``'s validation rows."""
    return sgd_from_classes(estimator, fits).predict(X[rows(folds, f, 1)])


def sgd_on_rows(estimator, fits: list[ClassFit], X, rows_: slice) -> dict:
    """The assembled SGD's predictions and decision scores on ``X[rows_]``."""
    model = sgd_from_classes(estimator, fits)
    return {
        "predict": model.predict(X[rows_]),
        "decision_function": model.decision_function(X[rows_]),
    }


def fit_ovo_pair(estimator, X, y, a, b):
    """The one-vs-one binary model of classes ``a`` and ``b``, as ``OneVsOneClassifier`` fits it."""
    model, _ = _fit_ovo_binary(estimator, X, y, a, b, fit_params={})
    return model


def ovo_predict(estimator, classes: np.ndarray, models: list, X_query) -> np.ndarray:
    """``OneVsOneClassifier.predict`` of the pairs' models (in the pairs' order)."""
    ovo = OneVsOneClassifier(estimator)
    ovo.classes_ = classes
    ovo.estimators_ = list(models)
    ovo.pairwise_indices_ = None
    ovo.n_features_in_ = models[0].n_features_in_
    return ovo.predict(X_query)


def fit_ovr_class(estimator, X, y, i: int, n: int | None = None):
    """Class ``i``'s binary model of ``OneVsRestClassifier(estimator)`` on the first ``n`` rows."""
    X, y = X[:n], y[:n]
    binarizer = LabelBinarizer(sparse_output=True).fit(y)
    column = binarizer.transform(y).tocsc()[:, [i]].toarray().ravel()
    label = binarizer.classes_[i]
    return _fit_binary(estimator, X, column, fit_params={}, classes=[f"not {label}", label])


def ovr_predict(estimator, y, models: list, X_query, n: int | None = None) -> np.ndarray:
    """``OneVsRestClassifier.predict`` of the classes' models fitted on the first ``n`` rows."""
    y = y[:n]
    ovr = OneVsRestClassifier(estimator)
    ovr.label_binarizer_ = LabelBinarizer(sparse_output=True).fit(y)
    ovr.classes_ = ovr.label_binarizer_.classes_
    ovr.estimators_ = list(models)
    ovr.n_features_in_ = models[0].n_features_in_
    return ovr.predict(X_query)


def svc_on_rows(estimator, X, y, n: int, X_query) -> dict:
    """``estimator`` fitted on the first ``n`` rows: its predictions and decision scores."""
    model = clone(estimator).fit(X[:n], y[:n])
    return {
        "predict": model.predict(X_query),
        "decision_function": model.decision_function(X_query),
    }


def forest_chunk_proba(forest, X, y, folds, f, start: int, stop: int, query=None) -> np.ndarray:
    """Trees ``start`` to ``stop - 1`` of ``forest``, fitted on fold ``f``: their probabilities.

    A warm-started forest that believes it holds ``start`` trees draws
    their seeds and discards them, as scikit-learn's own warm start does,
    so the new trees get the unsplit forest's seeds and bootstrap samples.
    ``query`` (rows of ``X``) defaults to the fold's validation rows.
    Returns an array of shape ``(stop - start, n_query, n_classes)``.
    """
    part = clone(forest).set_params(n_estimators=stop, warm_start=True)
    part.estimators_ = [None] * start  # placeholders: only their number is read
    train = rows(folds, f)
    part.fit(X[train], y[train])
    # The forest validates queries to float32 once, then asks each tree unchecked.
    X_query = np.asarray(X[rows(folds, f, 1) if query is None else query], dtype=np.float32)
    return np.stack(
        [tree.predict_proba(X_query, check_input=False) for tree in part.estimators_[start:]]
    )


def forest_proba(chunks: list[np.ndarray]) -> np.ndarray:
    """The forest's ``predict_proba`` from its chunks: summed in tree order, then averaged."""
    proba = np.zeros(chunks[0].shape[1:], dtype=np.float64)
    n_trees = 0
    for chunk in chunks:
        for tree_proba in chunk:  # upstream adds tree by tree (n_jobs=None: in order)
            proba += tree_proba
            n_trees += 1
    proba /= n_trees
    return proba


def knn_predict_block(X, y, folds, f, start: int, stop: int) -> np.ndarray:
    """A default ``KNeighborsClassifier`` on fold ``f``'s (float32) training rows.

    Predicts validation rows ``start`` to ``stop - 1`` of the fold (of all rows for ``f=None``).
    Fitting a KNN only stores its data: cheaper to repeat per block than to
    ship a fitted model around.
    """
    train = rows(folds, f)
    query = (np.arange(len(X)) if f is None else folds[f][1])[start:stop]
    model = KNeighborsClassifier().fit(X[train].astype(np.float32), y[train])
    return model.predict(X[query].astype(np.float32))


def standardize(X) -> np.ndarray:
    """The book's standardised pixels (float64), fitted on all of ``X``."""
    return StandardScaler().fit_transform(X.astype(np.float64))


def add_noise(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The book's noise, randint(0, 100) on 0-255 pixels, scaled to the images' own range."""
    top = max(1, round(100 * int(X.max()) / 255))
    return X.astype(np.int64) + rng.integers(0, top, size=X.shape)


def noisy_images(X, X_test, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The training images with noise (float32, the KNN's input) and the test images with noise."""
    rng = np.random.default_rng(seed)
    X_noisy, X_test_noisy = add_noise(X, rng), add_noise(X_test, rng)
    return X_noisy.astype(np.float32), X_test_noisy


def denoise_block(noisy: tuple, X, start: int, stop: int) -> np.ndarray:
    """Noisy test images ``start`` to ``stop - 1`` cleaned by a KNN from noisy to clean images."""
    X_noisy, X_test_noisy = noisy
    model = KNeighborsClassifier().fit(X_noisy, X)
    return model.predict(X_test_noisy[start:stop].astype(np.float32))


def denoise_scores(noisy: tuple, X_test, blocks: list, n_test: int, n_shown: int = 5) -> dict:
    """The cleaning's pixel errors over the first ``n_test`` test images, and a few to show."""
    X_test_noisy = noisy[1][:n_test]
    cleaned = np.concatenate(blocks) if blocks else np.empty((0, X_test.shape[1]))
    truth = X_test[:n_test].astype(np.float64)
    return {
        "denoise_test_size": n_test,
        "denoise_mae_noisy": float(np.mean(np.abs(X_test_noisy - truth))),
        "denoise_mae_cleaned": float(np.mean(np.abs(cleaned - truth))),
        "denoise_rmse_cleaned": float(np.sqrt(np.mean((cleaned - truth) ** 2))),
        "shown": (X_test_noisy[:n_shown], cleaned[:n_shown], X_test[:n_shown]),
    }
