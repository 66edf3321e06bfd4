"""The data: MNIST (an IDX folder or OpenML) and scikit-learn's 8x8 digits, checked, as
chunked Dask arrays; the IDX format; and the pixel range a saved model accepts."""

from ._datasets import (
    DATA_ENV,
    DATASETS,
    MNIST_FILES,
    Dataset,
    load_dataset,
    load_digits_dataset,
    load_mnist_idx,
    load_mnist_openml,
)
from ._idx import IDXHeader, read_idx, read_idx_header, read_idx_rows, write_idx
from ._images import image_side
from ._on_cluster import load_on_cluster, scatter_dataset, unreadable_files
from ._pixels import PIXEL_MAX, PixelRange, check_pixels, with_pixel_check

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "MNIST_FILES",
    "PIXEL_MAX",
    "Dataset",
    "IDXHeader",
    "PixelRange",
    "check_pixels",
    "image_side",
    "load_dataset",
    "load_digits_dataset",
    "load_mnist_idx",
    "load_mnist_openml",
    "load_on_cluster",
    "read_idx",
    "read_idx_header",
    "read_idx_rows",
    "scatter_dataset",
    "unreadable_files",
    "with_pixel_check",
    "write_idx",
]
