import pytest

from mnistdist.data import image_side
from mnistdist.errors import OptionError


@pytest.mark.parametrize("n_features, side", [(1, 1), (64, 8), (784, 28)])
def test_side_of_square_images(n_features, side):
    assert image_side(n_features) == side


@pytest.mark.parametrize("n_features", [0, 2, 783, 785])
def test_non_square_rows_are_refused_naming_the_action(n_features):
    with pytest.raises(OptionError, match=f"cannot deskew images of {n_features} pixels"):
        image_side(n_features, "deskew")
