"""The IDX file format (MNIST's): headers checked against the file, rows read, arrays written.

Nothing in a file is trusted. The magic number and the dimensions are
checked, and the byte count they declare against the file's size (a gzip
stream expands at most :data:`GZIP_MAX_RATIO` times) and against a stated
maximum (the ``mnistdist.max-idx-bytes`` setting), before anything past the
header is read or anything allocated; data is then read in bounded blocks.
Any fault raises :class:`~mnistdist.errors.DataError`, one line naming the file.

A file is read whole once: its SHA-256 is taken (the identity of its
content, which the workers and the journal check), and a ``.gz`` file is
decompressed to a raw copy named by that digest in
``$MNISTDIST_CACHE/mnistdist-raw`` (default ``~/scikit_learn_data``), from
which rows are then read at their offsets, by the client and by the workers.
The check is recorded there too (:mod:`._checked`): later runs take it while
the file and its raw copy are unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import os
import pathlib
import struct
import threading
import uuid
import zlib
from collections.abc import Iterator

import numpy as np

from .. import config
from ..errors import DataError
from ..outputs import atomic_path, file_sha256
from ._checked import recall, remember, stat_key

#: IDX type byte -> NumPy dtype (big-endian where it matters).
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: Deflate's limit: a gzip file holds at most about 1032 times its own size.
GZIP_MAX_RATIO = 1032
#: More dimensions than NumPy arrays may have (32 before NumPy 2) are refused.
MAX_DIMENSIONS = 32
#: The environment variable naming the cache folder (OpenML's download, the raw copies).
CACHE_ENV = "MNISTDIST_CACHE"
_GZIP_MAGIC = b"\x1f\x8b"
_READ_BLOCK = 1 << 22
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


@dataclasses.dataclass(frozen=True)
class IDXHeader:
    """What an IDX file's header says, checked against the file, and where its data is.

    Attributes
    ----------
    path : pathlib.Path
        The file as named.
    magic, dtype, shape, offset
        The header's magic number, element type, dimensions and length.
    sha256 : str
        The SHA-256 of the file's IDX content (decompressed): its identity.
    source : pathlib.Path or None
        The raw IDX file rows are read from: ``path`` itself, or the raw
        copy of a ``.gz`` file (None: ``path``, decompressed on each read).
    """

    path: pathlib.Path
    magic: int
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int
    sha256: str = ""
    source: pathlib.Path | None = None

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    @property
    def compressed(self) -> bool:
        return self.path.suffix == ".gz"


def cache_dir() -> pathlib.Path:
    """mnistdist's cache folder: ``$MNISTDIST_CACHE``, else ``~/scikit_learn_data``."""
    return pathlib.Path(os.environ.get(CACHE_ENV) or "~/scikit_learn_data").expanduser()


def raw_copy_dir() -> pathlib.Path:
    """Where ``.gz`` files are decompressed to, each named by its content's SHA-256."""
    return cache_dir() / "mnistdist-raw"


@contextlib.contextmanager
def _open_file(path: pathlib.Path) -> Iterator:
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot open ({exc.strerror or exc})") from None
    with f:
        yield f


@contextlib.contextmanager
def _open(path: pathlib.Path) -> Iterator:
    """Open an IDX file, transparently gunzipping a ``.gz`` one; closed on exit."""
    with _open_file(path) as raw:
        if path.suffix != ".gz":
            yield raw
            return
        if raw.read(2) != _GZIP_MAGIC:
            raise DataError(f"{path}: not a gzip file, though named .gz")
        raw.seek(0)
        with gzip.GzipFile(fileobj=raw, mode="rb") as f:
            yield f


def _corrupt(path: pathlib.Path, exc: Exception) -> DataError:
    return DataError(f"{path}: corrupt or truncated gzip data ({exc})")


def _read_exact(f, n: int, path: pathlib.Path, what: str) -> bytes:
    try:
        data = f.read(n)
    except _GZIP_ERRORS as exc:
        raise _corrupt(path, exc) from None
    if len(data) != n:
        raise DataError(f"{path}: file ends inside the {what} ({len(data)} of {n} bytes)")
    return data


def _read_into(f, buffer: memoryview, path: pathlib.Path) -> None:
    """Fill ``buffer`` from ``f`` in bounded blocks (no temporary the size of the data)."""
    done = 0
    try:
        while done < len(buffer):
            got = f.readinto(buffer[done : done + _READ_BLOCK])
            if not got:
                raise DataError(
                    f"{path}: file ends inside the data ({done} of {len(buffer)} bytes)"
                )
            done += got
    except _GZIP_ERRORS as exc:
        raise _corrupt(path, exc) from None


_CHECKED: dict[tuple, IDXHeader] = {}
_CHECKED_LOCK = threading.Lock()


def read_idx_header(path: str | os.PathLike, *, max_bytes: int | None = None) -> IDXHeader:
    """Read and check an IDX file: its header against the file, then its data, once.

    The header's claims are checked against the file's size and against
    ``max_bytes`` (default: the ``mnistdist.max-idx-bytes`` setting) before
    anything past it is read or allocated, so a forged header cannot make the
    reader ask for huge memory or time. The data is then read once, in
    blocks: its SHA-256 is taken and a ``.gz`` file is decompressed to a raw
    copy (:func:`raw_copy_dir`), checking that it holds exactly the data
    declared. A file checked before, by this process or an earlier one
    (:mod:`._checked`), unchanged since (same inode, size, modification and
    change times), is not read again.
    """
    path = pathlib.Path(path)
    limit = int(config.get("max-idx-bytes") if max_bytes is None else max_bytes)
    with _open_file(path) as raw:
        st = os.fstat(raw.fileno())
        key = [str(path), *stat_key(st), limit]
        with _CHECKED_LOCK:
            if (known := _CHECKED.get(tuple(key))) is not None:
                return known
        header = _from_fields(path, recall(raw_copy_dir(), key))
        if header is None:
            header = _check_file(path, raw, st.st_size, limit)
            remember(raw_copy_dir(), key, st, _fields(header))
    with _CHECKED_LOCK:
        _CHECKED[tuple(key)] = header
    return header


def _fields(header: IDXHeader) -> dict:
    return {
        "magic": header.magic,
        "dtype": header.dtype.str,
        "shape": list(header.shape),
        "offset": header.offset,
        "sha256": header.sha256,
        "source": str(header.source),
    }


def _from_fields(path: pathlib.Path, fields: dict | None) -> IDXHeader | None:
    if fields is None:
        return None
    shape, source = tuple(fields["shape"]), pathlib.Path(fields["source"])
    dtype = np.dtype(fields["dtype"])
    return IDXHeader(
        path, fields["magic"], dtype, shape, fields["offset"], fields["sha256"], source
    )


def _read_head(f, path: pathlib.Path) -> tuple[bytes, tuple[int, ...]]:
    """The header's bytes and its dimensions, its magic number checked."""
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
    if ndim > MAX_DIMENSIONS:
        raise DataError(
            f"{path}: bad magic number 0x{head.hex()} ({ndim} dimensions, "
            f"more than the {MAX_DIMENSIONS} an array may have)"
        )
    dims = _read_exact(f, 4 * ndim, path, "header")
    return head + dims, struct.unpack(f">{ndim}I", dims)


def _check_file(path: pathlib.Path, raw, size: int, limit: int) -> IDXHeader:
    gz = path.suffix == ".gz"
    stream = raw
    if gz:
        if raw.read(2) != _GZIP_MAGIC:
            raise DataError(f"{path}: not a gzip file, though named .gz")
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
    with contextlib.closing(stream):
        head, shape = _read_head(stream, path)
        dtype = IDX_DTYPES[head[2]]
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        _check_declared(path, shape, declared, len(head), size, limit, gz)
        digest = hashlib.sha256(head)
        source = (
            _decompress(path, stream, head, declared, digest)
            if gz
            else _hash_data(path, stream, declared, digest)
        )
    magic = int.from_bytes(head[:4], "big")
    return IDXHeader(path, magic, dtype, tuple(shape), len(head), digest.hexdigest(), source)


def _check_declared(path, shape, declared: int, offset: int, size: int, limit: int, gz: bool):
    """The data the header declares, against the stated maximum and the file's size."""
    need = f"{path}: dimensions {' x '.join(map(str, shape))} need {declared} data bytes"
    most = f"the {limit} that mnistdist reads from one file (the mnistdist.max-idx-bytes setting)"
    if declared > limit:
        raise DataError(f"{need}, more than {most}")
    # An empty array too is refused whose other dimensions NumPy could not even describe.
    if int(np.prod([d for d in shape if d], dtype=object)) > limit:
        raise DataError(f"{path}: dimensions {' x '.join(map(str, shape))} exceed {most}")
    if gz and offset + declared > GZIP_MAX_RATIO * size:
        raise DataError(f"{need}, more than a gzip file of {size} bytes can hold")
    if not gz and offset + declared != size:
        raise DataError(f"{need}, the file has {size - offset}")


def _copy_data(path: pathlib.Path, stream, declared: int, digest, write=None) -> None:
    """Read exactly ``declared`` bytes of data in blocks, hashing (and writing) them; no more."""
    left = declared
    try:
        while left:
            block = stream.read(min(left, _READ_BLOCK))
            if not block:
                raise DataError(
                    f"{path}: file ends inside the data ({declared - left} of {declared} bytes)"
                )
            digest.update(block)
            if write is not None:
                write(block)
            left -= len(block)
        extra = stream.read(1)  # and, for gzip, its end: the CRC and length are checked there
    except _GZIP_ERRORS as exc:
        raise _corrupt(path, exc) from None
    if extra:
        raise DataError(f"{path}: holds more data than its header declares ({declared} bytes)")


def _hash_data(path: pathlib.Path, stream, declared: int, digest) -> pathlib.Path:
    _copy_data(path, stream, declared, digest)
    return path


def _decompress(path: pathlib.Path, stream, head: bytes, declared: int, digest) -> pathlib.Path:
    """Decompress ``stream`` once to the raw copy named by its digest; return the copy."""
    folder = raw_copy_dir()
    tmp = folder / f".{uuid.uuid4().hex[:12]}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            out.write(head)
            _copy_data(path, stream, declared, digest, out.write)
        final = folder / f"{digest.hexdigest()}.idx"
        _publish(tmp, final, digest.hexdigest())
    except OSError as exc:
        raise DataError(
            f"{path}: cannot write its decompressed copy in {folder} ({exc.strerror or exc}); "
            f"set {CACHE_ENV} to a folder of your own"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return final


def _publish(tmp: pathlib.Path, final: pathlib.Path, sha256: str) -> None:
    """Put the raw copy in place; an identical one already there (another user's) will do."""
    try:
        os.replace(tmp, final)
    except PermissionError:  # a shared, sticky cache folder: the copy there is someone else's
        if not final.is_file() or file_sha256(final) != sha256:
            raise


def read_idx_rows(header: IDXHeader, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Rows ``start:stop`` of an IDX file whose header was checked, as native-endian NumPy.

    Read from the raw file (or the raw copy of a ``.gz``) at their offset,
    in bounded blocks straight into the array returned.
    """
    stop = header.shape[0] if stop is None else stop
    n = stop - start
    out = np.empty((n, *header.shape[1:]), dtype=header.dtype)
    source = header.source or header.path
    with _open(source) as f:
        try:
            f.seek(header.offset + start * header.row_bytes)
        except _GZIP_ERRORS as exc:
            raise _corrupt(source, exc) from None
        _read_into(f, memoryview(out.reshape(-1).view(np.uint8)), source)
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
    with atomic_path(path) as tmp:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(tmp, "wb") as f:
            f.write(header)
            f.write(np.ascontiguousarray(array, dtype=big).reshape(-1).view(np.uint8).data)
