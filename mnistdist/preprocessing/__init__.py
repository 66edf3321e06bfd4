"""Image preprocessing: augmented copies (shifts, rotations, elastic and affine distortions) and
the ``Augment`` pipeline step, deskewing and Gaussian blur as scikit-learn transformers."""

from ._augment import (
    AUGMENTATIONS,
    DISTORTION_RECIPES,
    DISTORTIONS,
    FOUR_SHIFTS,
    ROTATIONS,
    Augment,
    augment_set,
    augment_shifts,
    augmented_copies,
    check_augmentation,
    make_copy,
    rotate_images,
    shift_images,
)
from ._elastic import Distortion, distort_images
from ._transformers import Deskew, GaussianBlur, image_moments

__all__ = [
    "AUGMENTATIONS",
    "DISTORTIONS",
    "DISTORTION_RECIPES",
    "FOUR_SHIFTS",
    "ROTATIONS",
    "Augment",
    "Deskew",
    "Distortion",
    "GaussianBlur",
    "augment_set",
    "augment_shifts",
    "augmented_copies",
    "check_augmentation",
    "distort_images",
    "image_moments",
    "make_copy",
    "rotate_images",
    "shift_images",
]
