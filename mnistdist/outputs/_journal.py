"""A durable record of finished neighbour searches, so an interrupted job can resume.

Each finished piece of work (a fold's neighbours in the search, the test set's
neighbours of a final model) is one row of an SQLite file in the output
folder, committed (and so on disk) the moment it completes. A rerun with
``--resume`` reads the rows back instead of recomputing them.

Rows are keyed by what they were computed from: the Dask names of the query
and reference arrays, which encode the data's content (the SHA-256 of its
files), the fold's rows, the preprocessing and ``k`` (:func:`journal_key`);
the journal adds mnistdist's version to every key, whoever stores the row (the
search keeps its scores here too). A resumed run can therefore only reuse work that
matches exactly, whatever else changed in between. Each row also records the
version and the data it came from (:meth:`Journal.bind`), so a run that finds
rows it cannot reuse says why.

A file that is not such a journal, or is damaged (truncated, corrupt), or
holds rows of the wrong shape or type, is refused with one line
(:data:`DAMAGED`), never read as if it were one.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence

import dask.array as da
import numpy as np

from ..errors import OutputError

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.sqlite"
#: The journal's format, in its ``meta`` table; journals of mnistdist 0.2 have no ``meta``.
FORMAT = "mnistdist-journal 3"
#: What the user is told of a journal that cannot be used.
DAMAGED = "not a mnistdist journal, or damaged: pass --overwrite to start over"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS neighbors (key TEXT PRIMARY KEY, label TEXT, "
    "dist BLOB NOT NULL, ids BLOB NOT NULL, finished REAL NOT NULL, version TEXT, data TEXT)",
    "CREATE TABLE IF NOT EXISTS sources (data TEXT PRIMARY KEY, identity TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
#: The tables of a journal: any other is another program's.
_TABLES = {"neighbors", "sources", "meta"}
_ROW_COLUMNS = {"key", "label", "dist", "ids", "finished"}


@functools.cache
def _version() -> str:
    # Read from the installed metadata (a scan of the path, about a millisecond) once, not
    # at every row a search saves.
    from .. import __version__

    return __version__


def _pack(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _unpack(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


def _damaged(path: str, detail: str = "") -> OutputError:
    return OutputError(f"{path}: {DAMAGED}" + (f" ({detail})" if detail else ""))


def _check_tables(db: sqlite3.Connection, path: str) -> None:
    """The tables a journal has, or an error: ``neighbors`` always, ``meta`` since format 3."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "neighbors" not in tables:
        if tables - _TABLES:
            raise _damaged(path, "it has no table of neighbours")
        return  # made by a run stopped before its first row: an empty journal
    columns = {row[1] for row in db.execute("PRAGMA table_info(neighbors)")}
    if not columns >= _ROW_COLUMNS:
        raise _damaged(path, "its table of neighbours lacks columns")
    if "meta" in tables:
        found = db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
        if found is None or found[0] != FORMAT:
            raise _damaged(path, f"format {found[0] if found else 'unknown'}, not {FORMAT}")


def check_journal(path: str | os.PathLike, *, dataset: str | None = None) -> None:
    """Refuse, in one line, a file that is not a usable journal (of ``dataset``, if given).

    SQLite's own integrity check (``quick_check``) catches truncated and
    corrupt files; the tables catch other programs' databases; the sources
    of its rows, a journal of another dataset.

    Raises
    ------
    OutputError
        ``<path>: not a mnistdist journal, or damaged: pass --overwrite to start over``.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise OutputError(f"{path}: cannot read the journal ({exc.strerror or exc})") from None
    if head and head != b"SQLite format 3\0":
        raise _damaged(path, "not an SQLite file")
    try:
        db = sqlite3.connect(path)
        try:
            result = db.execute("PRAGMA quick_check").fetchone()
            if result is None or result[0] != "ok":
                raise _damaged(path, str(result[0] if result else "no answer"))
            _check_tables(db, path)
            if dataset is not None:
                _check_dataset(db, path, dataset)
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, str(exc)) from None


def _sources(db: sqlite3.Connection) -> dict[str, dict]:
    """The data each row names, by its short name; none in a journal of mnistdist 0.2."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "sources" not in tables:
        return {}
    return {
        data: json.loads(text) for data, text in db.execute("SELECT data, identity FROM sources")
    }


def _check_dataset(db: sqlite3.Connection, path: str, dataset: str) -> dict[str, dict]:
    """The journal's sources, refused if any is of another dataset than ``dataset``."""
    sources = _sources(db)
    others = {str(s.get("dataset")) for s in sources.values()} - {dataset}
    if others:
        raise OutputError(
            f"{path} holds neighbour searches on {', '.join(sorted(others))}, "
            f"not {dataset}: {DAMAGED}"
        )
    return sources


def data_id(identity: dict) -> str:
    """A short name of a run's data (its dataset and its files' digests), for the journal's rows."""
    text = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Journal:
    """Finished ``(dist, ids)`` neighbour results by key, in an SQLite file.

    The file is created with the first result, so a run that stops before
    finishing anything leaves no journal behind. Threads may share one: a
    job's work in the background saves into the same journal.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._identity: dict | None = None
        self.loaded = 0

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._db is None and (create or os.path.exists(self.path)):
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                self._db = None
                raise _damaged(self.path, str(exc)) from None
        return self._db

    def _open(self) -> sqlite3.Connection:
        # One connection for every thread, each use under the lock.
        db = sqlite3.connect(self.path, check_same_thread=False)
        try:
            # FULL: a committed row survives a crash of this process or the machine.
            db.execute("PRAGMA synchronous=FULL")
            _check_tables(db, self.path)
            # One transaction: a run stopped in the middle leaves all the tables or none.
            db.execute("BEGIN IMMEDIATE")
            columns = {row[1] for row in db.execute("PRAGMA table_info(neighbors)")}
            for name in ("version", "data"):  # a journal of mnistdist 0.2: rows kept, unused
                if columns and name not in columns:
                    db.execute(f"ALTER TABLE neighbors ADD COLUMN {name} TEXT")
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (FORMAT,))
            db.commit()
        except BaseException:
            db.close()
            raise
        return db

    def bind(self, identity: dict) -> str | None:
        """Tie the rows saved from now on to the run's data; say why older rows are not reused.

        Parameters
        ----------
        identity : dict
            ``{"dataset": name, "files": {file name: SHA-256}}`` of the run's data.

        Returns
        -------
        str or None
            A line saying how many finished searches in the journal were
            computed by another mnistdist version or on other data, and so
            are recomputed; None when every row matches (or there are none).

        Raises
        ------
        OutputError
            When the journal holds searches on another dataset, or is damaged.
        """
        with self._lock:
            self._identity = identity
            db = self._connect(create=False)
            if db is None:
                return None
            try:
                return self._stale_rows(db, identity)
            except sqlite3.DatabaseError as exc:
                raise _damaged(self.path, str(exc)) from None

    def _stale_rows(self, db: sqlite3.Connection, identity: dict) -> str | None:
        sources = _check_dataset(db, self.path, identity["dataset"])
        version, data = _version(), data_id(identity)
        rows = db.execute(
            "SELECT version, data, COUNT(*) FROM neighbors "
            "WHERE version IS NOT ? OR data IS NOT ? GROUP BY version, data",
            (version, data),
        ).fetchall()
        if not rows:
            return None
        n = sum(count for *_, count in rows)
        old = sorted({v or "0.2 or older" for v, _, _ in rows if v != version})
        if old:
            why = f"by mnistdist {', '.join(old)}, this is {version}"
        else:
            changed = set()
            for _, other, _ in rows:
                before = sources.get(other, {}).get("files", {})
                changed |= {
                    name
                    for name in {*before, *identity["files"]}
                    if before.get(name) != identity["files"].get(name)
                }
            why = f"on other data ({', '.join(sorted(changed)) or 'files unknown'} changed)"
        return (
            f"{n} finished neighbour searches in {self.path} were computed {why}: recomputing them"
        )

    def get(
        self, key: str, *, like: Sequence | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The stored result for ``key``, or None.

        ``like``: the ``(dist, ids)`` arrays (lazy ones will do) whose shape
        and dtype the stored ones must have; a row that differs is damage.
        """
        with self._lock:
            db = self._connect(create=False)
            try:
                row = (
                    None
                    if db is None
                    else db.execute(
                        "SELECT dist, ids FROM neighbors WHERE key = ?", (_versioned(key),)
                    ).fetchone()
                )
                if row is None:
                    return None
                arrays = _unpack(row[0]), _unpack(row[1])
            except (sqlite3.DatabaseError, ValueError, OSError) as exc:
                raise _damaged(self.path, f"row {key}: {exc}") from None
            self._check_row(key, arrays, like)
            self.loaded += 1
        return arrays

    def _check_row(self, key: str, arrays: tuple, like: Sequence | None) -> None:
        if like is None:
            return
        for name, stored, expected in zip(("dist", "ids"), arrays, like, strict=True):
            if stored.shape != tuple(expected.shape) or stored.dtype != expected.dtype:
                raise _damaged(
                    self.path,
                    f"row {key}: {name} is {stored.dtype}{list(stored.shape)}, "
                    f"not {np.dtype(expected.dtype)}{list(expected.shape)}",
                )

    def put(self, key: str, dist: np.ndarray, ids: np.ndarray, *, label: str = "") -> None:
        """Store a finished result and commit it before returning."""
        identity = self._identity
        data = None if identity is None else data_id(identity)
        row = (_versioned(key), label, _pack(np.asarray(dist)), _pack(np.asarray(ids)), time.time())
        with self._lock:
            db = self._connect(create=True)
            try:
                with db:
                    if identity is not None:
                        db.execute(
                            "INSERT OR REPLACE INTO sources VALUES (?, ?)",
                            (data, json.dumps(identity, sort_keys=True)),
                        )
                    db.execute(
                        "INSERT OR REPLACE INTO neighbors VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (*row, _version(), data),
                    )
            except sqlite3.DatabaseError as exc:
                raise _damaged(self.path, str(exc)) from None
        log.info("journal: saved %s", label or key)

    def __len__(self) -> int:
        with self._lock:
            db = self._connect(create=False)
            return 0 if db is None else db.execute("SELECT COUNT(*) FROM neighbors").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def journal_key(dist: da.Array) -> str:
    """The journal key of a lazy neighbour search: its Dask name, which encodes its inputs
    (the data's digests among them). The journal adds mnistdist's version."""
    return dist.name


def _versioned(key: str) -> str:
    """A row's key as stored: with the version of mnistdist that computed it."""
    return f"{key}@{_version()}"
