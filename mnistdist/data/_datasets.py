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

import contextlib
import dataclasses
import gzip
import itertools
import logging
import os
import pathlib
import struct
import zlib
from collections.abc import Iterator

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from . import config
from .errors import DataError, OptionError
from .outputs import atomic_path

log = logging.getLogger(__name__)

#: IDX type byte -> NumPy dtype (big-endian where it matters).
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
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
CACHE_ENV = "MNISTDIST_CACHE"
#: load_digits has no official split: keep its last 360 images (20%) for test.
DIGITS_TEST_SIZE = 360
_GZIP_MAGIC = b"\x1f\x8b"
_READ_BLOCK = 1 << 22


@dataclasses.dataclass(frozen=True)
class IDXHeader:
    """What an IDX file's header says, checked against the file's real size."""

    path: pathlib.Path
    magic: int
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    @property
    def compressed(self) -> bool:
        return self.path.suffix == ".gz"


@contextlib.contextmanager
def _open(path: pathlib.Path) -> Iterator:
    """Open an IDX file, transparently gunzipping a ``.gz`` one; closed on exit."""
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot open ({exc.strerror or exc})") from None
    with raw:
        if path.suffix != ".gz":
            yield raw
            return
        if raw.read(2) != _GZIP_MAGIC:
            raise DataError(f"{path}: not a gzip file, though named .gz")
        raw.seek(0)
        with gzip.GzipFile(fileobj=raw, mode="rb") as f:
            yield f


def _read_exact(f, n: int, path: pathlib.Path, what: str) -> bytes:
    try:
        data = f.read(n)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    if len(data) != n:
        raise DataError(f"{path}: file ends inside the {what} ({len(data)} of {n} bytes)")
    return data


def _data_length(f, path: pathlib.Path) -> int:
    """Bytes left in ``f``, reading (and so checking) any gzip stream to its end."""
    total = 0
    try:
        while chunk := f.read(_READ_BLOCK):
            total += len(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    return total


def read_idx_header(path: str | os.PathLike) -> IDXHeader:
    """Read and check an IDX header, and that the data that follows has exactly its size.

    The header's claims are checked against the file before anything is
    allocated, so a forged header cannot make the reader ask for huge memory.
    """
    path = pathlib.Path(path)
    with _open(path) as f:
        head = _read_exact(f, 4, path, "header")
        if head[0] != 0 or head[1] != 0:
            raise DataError(
                f"{path}: bad magic number 0x{head.hex()} (an IDX file starts with two zero bytes)"
            )
        if head[2] not in IDX_DTYPES:
            raise DataError(
                f"{path}: bad magic number 0x{head.hex()} (unknown IDX type byte 0x{head[2]:02x})"
            )
        ndim = head[3]
        if ndim == 0:
            raise DataError(f"{path}: bad magic number 0x{head.hex()} (zero dimensions)")
        shape = struct.unpack(f">{ndim}I", _read_exact(f, 4 * ndim, path, "header"))
        dtype = IDX_DTYPES[head[2]]
        expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
        actual = _data_length(f, path)
    if actual != expected:
        dims = " x ".join(map(str, shape))
        raise DataError(
            f"{path}: dimensions {dims} need {expected} data bytes, the file has {actual}"
        )
    return IDXHeader(path, int.from_bytes(head, "big"), dtype, tuple(shape), 4 + 4 * ndim)


def read_idx_rows(header: IDXHeader, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Rows ``start:stop`` of an IDX file whose header was checked, as native-endian NumPy."""
    stop = header.shape[0] if stop is None else stop
    n = stop - start
    with _open(header.path) as f:
        f.seek(header.offset + start * header.row_bytes)
        raw = _read_exact(f, n * header.row_bytes, header.path, "data")
    out = np.frombuffer(raw, dtype=header.dtype).reshape((n, *header.shape[1:]))
    return out.astype(header.dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """A whole IDX file as a NumPy array, after checking it."""
    return read_idx_rows(read_idx_header(path))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed if ``path`` ends in ``.gz``), atomically."""
    path = pathlib.Path(path)
    codes = {dt: code for code, dt in IDX_DTYPES.items()}
    big = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if big not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, codes[big], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=big).tobytes()
    with atomic_path(path) as tmp:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(tmp, "wb") as f:
            f.write(payload)


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
    #: The files the workers read chunks from, with their sizes (empty when
    #: the data does not come from files, or was sent to the workers).
    files: tuple[tuple[str, int], ...] = ()

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

    ``identity`` (a file's size and modification time, say) joins the name's
    token, so that data that changed gets new keys: the journal relies on it.
    """
    chunks = _row_chunks(n, chunk_rows)
    key = f"{name}-{tokenize(reader, *args, chunks, identity)}"
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
    if labels.size and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
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
    parts, shapes, files = {}, {}, []
    for split in ("train", "test"):
        images = read_idx_header(_find_idx_file(folder, MNIST_FILES[f"{split}_images"]))
        stat = images.path.stat()
        files.append((str(images.path), stat.st_size))
        shapes[split] = _check_images(images)
        labels = _check_labels(
            read_idx_header(_find_idx_file(folder, MNIST_FILES[f"{split}_labels"])),
            images.shape[0],
            images.path,
        )
        n_features = shapes[split][0] * shapes[split][1]
        X = _lazy_rows(
            f"load-mnist-{split}-images",
            images.shape[0],
            n_features,
            chunk_rows,
            _flat_rows,
            images,
            identity=(stat.st_size, stat.st_mtime_ns),
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
        "mnist", *parts["train"], *parts["test"], shapes["train"], f"idx:{folder}", tuple(files)
    )


def _cache_dir(cache_dir: str | os.PathLike | None) -> pathlib.Path:
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or pathlib.Path("~/scikit_learn_data").expanduser()
    return pathlib.Path(cache_dir).expanduser()


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

    y = load_digits().target.astype(np.uint8)
    n_train = len(y) - DIGITS_TEST_SIZE
    chunk_rows = chunk_rows or 512  # few rows: chunk finer than MNIST so tests see several chunks
    X_all = _lazy_rows("load-digits-images", len(y), 64, chunk_rows, _digits_rows)
    return Dataset(
        "digits",
        X_all[:n_train],
        y[:n_train],
        X_all[n_train:],
        y[n_train:],
        (8, 8),
        "sklearn:load_digits",
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


def _file_probe(files: tuple[tuple[str, int], ...]):
    """A function (pickled by value) telling which of ``files`` a process cannot read as is."""

    def probe(dask_worker=None):
        import os

        bad = []
        for path, size in files:
            try:
                if os.path.getsize(path) != size or not os.access(path, os.R_OK):
                    bad.append(path)
            except OSError:
                bad.append(path)
        return bad

    return probe


def unreadable_files(dataset: Dataset, client) -> dict[str, list[str]]:
    """The dataset's files that some worker cannot read (same path, same size), by worker."""
    if not dataset.files:
        return {}
    return {addr: bad for addr, bad in client.run(_file_probe(dataset.files)).items() if bad}


def _scatter_rows(client, X: da.Array, name: str) -> da.Array:
    """``X`` read here and sent to the workers once, chunk by chunk, as a Dask array of futures."""
    local = X.compute(scheduler="sync")
    bounds = np.cumsum((0,) + X.chunks[0])
    parts = [local[a:b] for a, b in itertools.pairwise(bounds)]
    # Unique keys: a hashed key shared with an earlier scatter is dropped when that one is released.
    futures = client.scatter(parts, hash=False)
    blocks = [
        da.from_delayed(f, shape=p.shape, dtype=p.dtype, name=f"{name}-{i}-{f.key}")
        for i, (f, p) in enumerate(zip(futures, parts, strict=False))
    ]
    return da.concatenate(blocks, axis=0)


def scatter_dataset(dataset: Dataset, client) -> Dataset:
    """The dataset with its images read on the client and sent to the workers once (scatter)."""
    return dataclasses.replace(
        dataset,
        X_train=_scatter_rows(client, dataset.X_train, f"scattered-{dataset.name}-train"),
        X_test=_scatter_rows(client, dataset.X_test, f"scattered-{dataset.name}-test"),
        files=(),
        source=f"{dataset.source} (sent from the client)",
    )
