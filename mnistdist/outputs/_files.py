"""Output files, written so that a crash never leaves a half-written one.

Every file goes to a temporary name in the same folder and is renamed into
place once complete: a reader sees the old file or the new one, never a part.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from .errors import OutputError
from .journal import FILENAME as JOURNAL

#: Each job's result files: their presence means a folder already holds that job's
#: results, finished or not. The one list of them; the jobs read their own entry.
JOB_RESULTS: dict[str, tuple[str, ...]] = {
    "report": ("metrics.json", "cv_results.csv", JOURNAL),
    "search": ("search.json", "cv_results.csv", JOURNAL),
    "tour": ("tour.json",),
    "augment": ("augment.json",),
    "benchmark": ("benchmark.json",),
}
#: Every job's result files, the default of :func:`prepare_out_dir`.
RESULT_FILES = tuple(dict.fromkeys(name for names in JOB_RESULTS.values() for name in names))


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


def prepare_out_dir(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    resume: bool = False,
    results: tuple[str, ...] = RESULT_FILES,
) -> pathlib.Path:
    """Create the output folder, refusing one that holds ``results`` unless told what to do.

    A job names its own result files, so jobs can share a folder (the tour
    joins the report's). ``resume`` keeps what is there (the journal of
    finished work, above all); ``overwrite`` starts afresh and deletes the
    old journal.
    """
    if overwrite and resume:
        raise OutputError("--overwrite and --resume exclude each other")
    path = pathlib.Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {path}: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise OutputError(f"output path {path} is not a folder")
    found = [name for name in results if (path / name).exists()]
    if found and not (overwrite or resume):
        raise OutputError(
            f"output folder {path} already holds results ({', '.join(found)}); pass --resume "
            "to finish an interrupted run or --overwrite to replace them"
        )
    if overwrite:
        (path / JOURNAL).unlink(missing_ok=True)
    try:  # os.access says yes to root even on a read-only mount: really try.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OutputError(f"output folder {path} is not writable: {exc.strerror or exc}") from None
    return path
