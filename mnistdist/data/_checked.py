"""IDX files' checks recorded for later processes: an unchanged file is not read again.

Checking an IDX file reads it whole: its SHA-256, and for a ``.gz`` its raw
copy written anew, 0.27 s of every run for MNIST's two image files. A check
is recorded in the raw copies' folder under the file's identity (path,
device, inode, size, modification and change times, and the size limit it
was checked against), and a later process that finds the file and its raw
copy unchanged (the copy's device, inode, size and times as recorded) takes
the record instead of reading them.

No user can set a change time: rewriting a file's content, even with its
size and modification time put back, gives it a new one. A file changed
within :data:`RACY_SECONDS` of its check is not recorded, as git does with
its index, since two changes within one tick of the file system's clock can
leave the same times.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pathlib
import time

from ..outputs import atomic_path

log = logging.getLogger(__name__)

#: Seconds a file's last change must be older than its check for the check to be recorded.
RACY_SECONDS = 2.0


def stat_key(st: os.stat_result) -> list[int]:
    """What identifies a file's state: device, inode, size, modification and change times."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _record_path(folder: pathlib.Path, key: list) -> pathlib.Path:
    name = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]
    return folder / "checked" / f"{name}.json"


def recall(folder: pathlib.Path, key: list) -> dict | None:
    """The fields recorded for ``key`` in ``folder``, if its raw copy is unchanged; else None."""
    try:
        record = json.loads(_record_path(folder, key).read_text())
        if record["key"] != key:
            return None
        source = record["fields"]["source"]
        if record["source_stat"] is not None and stat_key(os.stat(source)) != record["source_stat"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record["fields"]


def remember(folder: pathlib.Path, key: list, st: os.stat_result, fields: dict) -> None:
    """Record ``fields`` (``source``: the raw copy or the file itself) for ``key``, unless the
    file ``st`` describes changed too recently; a cache that cannot be written is let be."""
    if time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 < RACY_SECONDS:
        return
    path = _record_path(folder, key)
    with contextlib.suppress(OSError):
        copy = fields["source"] != key[0]
        record = {
            "key": key,
            "fields": fields,
            "source_stat": stat_key(os.stat(fields["source"])) if copy else None,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(record))
        log.debug("recorded the check of %s", key[0])
