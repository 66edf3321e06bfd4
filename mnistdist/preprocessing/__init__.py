"""Image preprocessing: augmented copies (shifts, rotations) and the ``Augment`` pipeline step,
deskewing and Gaussian blur as scikit-learn transformers."""

from ._augment import (
    AUGMENTATIONS,
    FOUR_SHIFTS,
    ROTATIONS,
    Augment,
    augment_shifts,
    augmented_copies,
    check_augmentation,
    rotate_images,
    shift_images,
)
from ._transformers import Deskew, GaussianBlur, image_moments

__all__ = [
    "AUGMENTATIONS",
    "FOUR_SHIFTS",
    "ROTATIONS",
    "Augment",
    "Deskew",
    "GaussianBlur",
    "augment_shifts",
    "augmented_copies",
    "check_augmentation",
    "image_moments",
    "rotate_images",
    "shift_images",
]
