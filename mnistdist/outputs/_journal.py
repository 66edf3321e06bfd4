"""A durable record of finished neighbour searches, so an interrupted job can resume.

Each finished piece of work (a fold's neighbours in the search, the test set's
neighbours of a final model) is one row of an SQLite file in the output
folder, committed (and so on disk) the moment it completes. A rerun with
``--resume`` reads the rows back instead of recomputing them.

Rows are keyed by what they were computed from: the Dask names of the query
and reference arrays, which encode the data files' identity, the fold's rows,
the preprocessing and ``k``. A resumed run can therefore only reuse work that
matches exactly, whatever else changed in between.
"""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import threading
import time

import dask.array as da
import numpy as np

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.sqlite"


def _pack(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _unpack(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


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
        self.loaded = 0

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._db is None and (create or os.path.exists(self.path)):
            # One connection for every thread, each use under the lock.
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            # FULL: a committed row survives a crash of this process or the machine.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS neighbors (key TEXT PRIMARY KEY, label TEXT, "
                "dist BLOB NOT NULL, ids BLOB NOT NULL, finished REAL NOT NULL)"
            )
            self._db.commit()
        return self._db

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The stored result for ``key``, or None."""
        with self._lock:
            db = self._connect(create=False)
            row = (
                None
                if db is None
                else db.execute("SELECT dist, ids FROM neighbors WHERE key = ?", (key,)).fetchone()
            )
            if row is None:
                return None
            self.loaded += 1
        return _unpack(row[0]), _unpack(row[1])

    def put(self, key: str, dist: np.ndarray, ids: np.ndarray, *, label: str = "") -> None:
        """Store a finished result and commit it before returning."""
        row = (key, label, _pack(np.asarray(dist)), _pack(np.asarray(ids)), time.time())
        with self._lock:
            db = self._connect(create=True)
            with db:
                db.execute("INSERT OR REPLACE INTO neighbors VALUES (?, ?, ?, ?, ?)", row)
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
    """The journal key of a lazy neighbour search: its Dask name, which encodes its inputs."""
    return dist.name
