import pytest
from sklearn.model_selection import ParameterGrid

from mnistdist.errors import OptionError
from mnistdist.model_selection import DEFAULT_GRID, PRESETS, get_preset
from mnistdist.preprocessing import AUGMENTATIONS


def test_book_preset_is_the_chapter_grid():
    preset = get_preset("book")
    assert preset.param_grid == DEFAULT_GRID and preset.estimator.get_params()["n_neighbors"] == 5


def test_best_preset_covers_preprocessing_augmentation_and_knn():
    preset = get_preset("best")
    candidates = list(ParameterGrid(preset.param_grid))
    assert {c.get("augment__kind") for c in candidates} >= set(AUGMENTATIONS)
    assert {c.get("pca__n_components") for c in candidates} >= {30, 40, 70}
    assert {c.get("deskew") for c in candidates} >= {"passthrough"} and {
        c.get("normalize") for c in candidates
    } >= {"passthrough"}
    names = preset.estimator.get_params()
    assert all(name in names for c in candidates for name in c)  # every grid name is the pipeline's
    assert [n for n, _ in preset.estimator.steps] == [
        "deskew",
        "blur",
        "augment",
        "normalize",
        "pca",
        "knn",
    ]
    assert {c.get("blur__sigma") for c in candidates} >= {
        0.5,
        1.0,
    } and preset.estimator.get_params()["blur__sigma"] == 0


def test_best_preset_fits_small_images():
    preset = get_preset("best", n_features=64)
    sizes = {c.get("pca__n_components") for c in ParameterGrid(preset.param_grid)} - {None}
    assert max(sizes) < 64 and preset.estimator.get_params()["pca__n_components"] < 64


def test_unknown_preset():
    with pytest.raises(
        OptionError, match="unknown preset 'fast': choose from best, book, deform, elastic"
    ):
        get_preset("fast")
    assert list(PRESETS) == ["best", "book", "deform", "elastic"]  # the package's presets/
