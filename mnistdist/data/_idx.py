"""The IDX file format (MNIST's): headers checked against the file, rows read, arrays written.

Nothing in a file is trusted: the magic number, the dimensions and the
byte count are checked before anything is allocated, and any fault raises
:class:`~mnistdist.errors.DataError` naming the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import os
import pathlib
import struct
import zlib
from collections.abc import Iterator

import numpy as np

from ..errors import DataError
from ..outputs import atomic_path

#: IDX type byte -> NumPy dtype (big-endian where it matters).
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
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
