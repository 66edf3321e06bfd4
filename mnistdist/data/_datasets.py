"""Loading MNIST (or scikit-learn's 8x8 digits) into chunked Dask arrays.

Sources, in the order :func:`load_dataset` tries them for ``mnist``:

1. a folder of the four IDX files (``.gz`` or raw), from ``data_dir`` or the
   ``MNISTDIST_DATA`` environment variable;
2. OpenML's ``mnist_784`` through :func:`sklearn.datasets.fetch_openml`, as the
   book does, cached and then kept as IDX files so the workers can read them.

Nothing in a file is trusted: magic numbers, dimensions, byte counts, the
agreement of images and labels and the label range are all checked, and any
fault raises :class:`~mnistdist.errors.DataError` naming the file.

The images become Dask arrays of ``(n, side * side)`` uint8 rows, chunked by
rows; every chunk is read from the file by a task on a worker, so the client
never pushes image data through the task graph. Labels are small and are
read on the client (folds and votes need them there).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pathlib

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from .. import config
from ..errors import DataError, OptionError
from ._idx import IDXHeader, cache_dir, read_idx_header, read_idx_rows, write_idx

log = logging.getLogger(__name__)

#: The four MNIST files, by role, without the optional ``.gz``.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
DATASETS = ("mnist", "digits")
DATA_ENV = "MNISTDIST_DATA"
#: load_digits has no official split: keep its last 360 images (20%) for test.
DIGITS_TEST_SIZE = 360
#: Labels checked this many at a time: no temporary the size of a (large) labels file.
_LABEL_BLOCK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A train/test split: images as lazy Dask arrays of flat rows, labels in NumPy."""

    name: str
    X_train: da.Array
    y_train: np.ndarray
    X_test: da.Array
    y_test: np.ndarray
    image_shape: tuple[int, int]
    source: str
    #: The files the workers read chunks from, with their sizes and SHA-256 (empty
    #: when the data does not come from files, or was sent to the workers).
    files: tuple[tuple[str, int, str], ...] = ()
    #: Where the images were read on the client and sent to the workers: the files
    #: each worker could not read, by worker (:func:`load_on_cluster`).
    unreadable: dict[str, list[str]] = dataclasses.field(default_factory=dict, compare=False)
    #: The SHA-256 of each source file's content, by file name: the data's identity.
    digests: dict[str, str] = dataclasses.field(default_factory=dict, compare=False)

    @property
    def identity(self) -> dict:
        """What the data is, whatever its path: the dataset and its files' SHA-256.

        The journal ties its rows to it, and the arrays' Dask names hold the digests.
        """
        return {"dataset": self.name, "files": dict(self.digests)}

    def head(self, n_train: int) -> Dataset:
        """The same dataset with only its first ``n_train`` training images."""
        available = len(self.y_train)
        if not 1 <= n_train <= available:
            raise OptionError(
                f"--train-size must be between 1 and {available} for {self.name}, got {n_train}"
            )
        return dataclasses.replace(
            self, X_train=self.X_train[:n_train], y_train=self.y_train[:n_train]
        )

    def persist(self) -> Dataset:
        """The same dataset with its images kept in the workers' memory once read.

        Every later phase then reuses the chunks instead of reading the files
        again; Dask still knows how to re-read any chunk a lost worker held.
        """
        X_train, X_test = dask.persist(self.X_train, self.X_test)
        return dataclasses.replace(self, X_train=X_train, X_test=X_test)

    def summary(self) -> dict:
        """Sizes and origin, for metrics files and logs."""
        return {
            "dataset": self.name,
            "source": self.source,
            "image_shape": list(self.image_shape),
            "n_train": len(self.y_train),
            "n_test": len(self.y_test),
            "train_chunks": len(self.X_train.chunks[0]),
        }


def _row_chunks(n: int, chunk_rows: int | None) -> tuple[int, ...]:
    chunk_rows = int(chunk_rows or config.get("chunk-rows"))
    if chunk_rows < 1:
        raise OptionError(f"chunk rows must be positive, got {chunk_rows}")
    return tuple(min(chunk_rows, n - s) for s in range(0, n, chunk_rows))


def _lazy_rows(
    name: str, n: int, n_features: int, chunk_rows: int | None, reader, *args, identity=None
) -> da.Array:
    """A Dask array of ``n`` rows, each chunk ``reader(*args, start, stop)`` run on a worker.

    ``identity`` (the SHA-256 of the file's content) makes the name's token in
    place of the reader's arguments (the file's path among them): data that
    changed gets new keys, whatever its size and times, and the same data in
    another folder the same keys. The journal relies on it.
    """
    chunks = _row_chunks(n, chunk_rows)
    token = tokenize(reader, *args, chunks) if identity is None else tokenize(chunks, identity)
    key = f"{name}-{token}"
    layer, start = {}, 0
    for i, size in enumerate(chunks):
        layer[(key, i, 0)] = (reader, *args, start, start + size)
        start += size
    graph = HighLevelGraph.from_collections(key, layer, dependencies=[])
    return da.Array(graph, key, chunks=(chunks, (n_features,)), dtype=np.uint8)


def _flat_rows(header: IDXHeader, start: int, stop: int) -> np.ndarray:
    return read_idx_rows(header, start, stop).reshape(stop - start, -1)


def _find_idx_file(folder: pathlib.Path, base: str) -> pathlib.Path:
    for candidate in (folder / base, folder / f"{base}.gz"):
        if candidate.is_symlink() or candidate.exists():  # a broken link is reported when opened
            return candidate
    raise DataError(f"{folder}: missing {base} (or {base}.gz)")


def _check_images(header: IDXHeader) -> tuple[int, int]:
    if header.magic != IMAGES_MAGIC or len(header.shape) != 3:
        raise DataError(
            f"{header.path}: magic number 0x{header.magic:08x} is not an images file's "
            f"(0x{IMAGES_MAGIC:08x})"
        )
    rows, cols = header.shape[1], header.shape[2]
    if rows != cols:  # shifts, rotations, deskewing and the figures all need square digits
        raise DataError(f"{header.path}: the header says images of {rows}x{cols}, not square")
    if not rows or not header.shape[0]:
        raise DataError(f"{header.path}: the header says {header.shape[0]} images of {rows}x{cols}")
    return rows, cols


def _check_labels(header: IDXHeader, n_images: int, images: pathlib.Path) -> np.ndarray:
    if header.magic != LABELS_MAGIC or len(header.shape) != 1:
        raise DataError(
            f"{header.path}: magic number 0x{header.magic:08x} is not a labels file's "
            f"(0x{LABELS_MAGIC:08x})"
        )
    if header.shape[0] != n_images:
        raise DataError(
            f"{header.path}: {header.shape[0]} labels for the {n_images} images in {images.name}"
        )
    labels = read_idx_rows(header)
    for start in range(0, len(labels), _LABEL_BLOCK):  # no temporary the size of the labels
        block = labels[start : start + _LABEL_BLOCK]
        if block.max() > 9:
            bad = start + int(np.argmax(block > 9))
            raise DataError(f"{header.path}: label {labels[bad]} at row {bad} is outside 0-9")
    return labels


def load_mnist_idx(data_dir: str | os.PathLike, *, chunk_rows: int | None = None) -> Dataset:
    """MNIST from a folder of the four IDX files, checked, as lazy chunked arrays."""
    folder = pathlib.Path(data_dir).expanduser()
    if not folder.is_dir():
        try:
            folder.stat()
            problem = "not a folder"
        except FileNotFoundError:
            problem = "data folder not found"
        except (OSError, ValueError) as exc:  # a symlink loop, a NUL in the name
            problem = f"cannot open ({getattr(exc, 'strerror', None) or exc})"
        raise DataError(f"{folder}: {problem}")
    folder = folder.resolve()  # workers may run in another folder
    parts, shapes, files, digests = {}, {}, [], {}
    for split in ("train", "test"):
        images = read_idx_header(_find_idx_file(folder, MNIST_FILES[f"{split}_images"]))
        shapes[split] = _check_images(images)
        labels_header = read_idx_header(_find_idx_file(folder, MNIST_FILES[f"{split}_labels"]))
        labels = _check_labels(labels_header, images.shape[0], images.path)
        source = images.source or images.path  # the workers read the raw file, or the raw copy
        files.append((str(source), source.stat().st_size, images.sha256))
        for header in (images, labels_header):
            digests[header.path.name] = header.sha256
            log.info("%s: SHA-256 %s", header.path, header.sha256)
        n_features = shapes[split][0] * shapes[split][1]
        X = _lazy_rows(
            f"load-mnist-{split}-images",
            images.shape[0],
            n_features,
            chunk_rows,
            _flat_rows,
            images,
            identity=images.sha256,
        )
        parts[split] = (X, labels)
    if shapes["train"] != shapes["test"]:
        raise DataError(
            f"{folder}: train images are {shapes['train']}, test images {shapes['test']}"
        )
    log.info(
        "MNIST from %s: %d train, %d test images",
        folder,
        len(parts["train"][1]),
        len(parts["test"][1]),
    )
    return Dataset(
        "mnist",
        *parts["train"],
        *parts["test"],
        shapes["train"],
        f"idx:{folder}",
        tuple(files),
        digests=digests,
    )


def _cache_dir(folder: str | os.PathLike | None) -> pathlib.Path:
    return cache_dir() if folder is None else pathlib.Path(folder).expanduser()


def load_mnist_openml(
    cache_dir: str | os.PathLike | None = None, *, chunk_rows: int | None = None
) -> Dataset:
    """MNIST from OpenML's ``mnist_784`` (the book's way), cached as IDX files.

    The download is cached by scikit-learn under ``cache_dir`` (default
    ``$MNISTDIST_CACHE`` or ``~/scikit_learn_data``); the converted IDX files
    go to ``cache_dir/mnistdist-idx`` so workers read them like any IDX folder.
    """
    cache = _cache_dir(cache_dir)
    idx_dir = cache / "mnistdist-idx"
    if not all((idx_dir / base).exists() for base in MNIST_FILES.values()):
        from sklearn.datasets import fetch_openml

        log.info("fetching mnist_784 from OpenML into %s", cache)
        try:
            X, y = fetch_openml(
                "mnist_784", version=1, as_frame=False, return_X_y=True, data_home=str(cache)
            )
        except Exception as exc:  # network errors come in many types
            raise DataError(
                f"could not fetch mnist_784 from OpenML ({type(exc).__name__}: {exc}); "
                f"pass --data DIR or set {DATA_ENV} to a folder of MNIST IDX files"
            ) from None
        if X.shape != (70000, 784):
            raise DataError(f"OpenML mnist_784 has shape {X.shape}, expected (70000, 784)")
        images = X.reshape(-1, 28, 28).astype(np.uint8)
        labels = y.astype(np.uint8)
        idx_dir.mkdir(parents=True, exist_ok=True)
        write_idx(idx_dir / MNIST_FILES["train_images"], images[:60000])
        write_idx(idx_dir / MNIST_FILES["train_labels"], labels[:60000])
        write_idx(idx_dir / MNIST_FILES["test_images"], images[60000:])
        write_idx(idx_dir / MNIST_FILES["test_labels"], labels[60000:])
    return dataclasses.replace(
        load_mnist_idx(idx_dir, chunk_rows=chunk_rows),
        source=f"openml:mnist_784 (cached in {idx_dir})",
    )


def _digits_rows(start: int, stop: int) -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data[start:stop].astype(np.uint8)


def load_digits_dataset(*, chunk_rows: int | None = None) -> Dataset:
    """scikit-learn's bundled 8x8 digits (pixels 0-16), the last 360 kept for test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    y = digits.target.astype(np.uint8)
    digest = hashlib.sha256(digits.data.astype(np.uint8).tobytes() + y.tobytes()).hexdigest()
    n_train = len(y) - DIGITS_TEST_SIZE
    chunk_rows = chunk_rows or 512  # few rows: chunk finer than MNIST so tests see several chunks
    X_all = _lazy_rows("load-digits-images", len(y), 64, chunk_rows, _digits_rows, identity=digest)
    return Dataset(
        "digits",
        X_all[:n_train],
        y[:n_train],
        X_all[n_train:],
        y[n_train:],
        (8, 8),
        "sklearn:load_digits",
        digests={"sklearn:load_digits": digest},
    )


def load_dataset(
    name: str = "mnist",
    *,
    data_dir: str | os.PathLike | None = None,
    train_size: int | None = None,
    chunk_rows: int | None = None,
) -> Dataset:
    """Load a dataset by name: ``mnist`` (IDX folder or OpenML) or ``digits``.

    Parameters
    ----------
    name : {"mnist", "digits"}, default="mnist"
        ``digits`` is scikit-learn's bundled 8x8 set.
    data_dir : path, optional
        For ``mnist``, a folder of the four IDX files (default:
        ``$MNISTDIST_DATA``; with neither, OpenML's ``mnist_784``).
    train_size : int, optional
        Keep only the first that many training images.
    chunk_rows : int, optional
        Rows per chunk (default: the ``mnistdist.chunk-rows`` setting).

    Returns
    -------
    Dataset
        Lazy chunked images and NumPy labels, for training and test.

    Raises
    ------
    OptionError
        If the name is unknown, or ``data_dir`` is given for ``digits``.
    DataError
        If a file is missing, malformed or inconsistent, or OpenML fails.
    """
    if name not in DATASETS:
        raise OptionError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "digits":
        if data_dir is not None:
            raise OptionError(
                "--data applies to --dataset mnist only; digits are bundled with scikit-learn"
            )
        dataset = load_digits_dataset(chunk_rows=chunk_rows)
    else:
        data_dir = data_dir or os.environ.get(DATA_ENV) or None
        dataset = (
            load_mnist_idx(data_dir, chunk_rows=chunk_rows)
            if data_dir
            else load_mnist_openml(chunk_rows=chunk_rows)
        )
    return dataset if train_size is None else dataset.head(train_size)
