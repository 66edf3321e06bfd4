"""Output files, written so that a crash never leaves a half-written one.

Every file goes to a temporary name in the same folder and is renamed into
place once complete: a reader sees the old file or the new one, never a part.
:func:`sync_tree` flushes a whole folder to disk (a results folder, before it
is swapped into place).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Yield a temporary path beside ``path``; rename it into place on success."""
    path = pathlib.Path(path)
    # Not mkstemp: the writer creates the file, so it gets the umask's usual mode.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield pathlib.Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _sync(path: str | os.PathLike, flags: int) -> None:
    fd = os.open(path, flags | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(folder: str | os.PathLike, *, files: bool = True, recursive: bool = True) -> None:
    """Flush ``folder`` to disk: its files' data (``files``), its sub-folders (``recursive``),
    and the folder itself (its entries: names renamed into place survive a crash)."""
    folder = pathlib.Path(folder)
    if recursive or files:
        for entry in os.scandir(folder):
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if recursive:
                    sync_tree(entry.path, files=files)
            elif files and entry.is_file():
                _sync(entry.path, os.O_RDONLY)
    _sync(folder, os.O_RDONLY | os.O_DIRECTORY)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (pathlib.Path,)):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, NumPy scalars and arrays included."""
    write_text(path, json.dumps(data, indent=2, default=_to_jsonable) + "\n")
