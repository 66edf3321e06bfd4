"""Outputs that survive a crash: atomic files, the journal of finished neighbour searches behind
``--resume``, results folders written as transactions (staging), and the lock that keeps one
run per results folder.

Its modules are imported when a name of theirs is first used: the command asks whether a
results folder is busy (:func:`holder_of`) before it imports NumPy or Dask.
"""

import importlib

#: Each public name, and the module that defines it.
_MODULES = {
    "JOURNAL_FILE": "_journal",
    "FolderLock": "_lock",
    "Journal": "_journal",
    "abandon": "_staging",
    "atomic_path": "_files",
    "begin": "_staging",
    "busy_message": "_lock",
    "check_journal": "_journal",
    "check_out": "_staging",
    "commit": "_staging",
    "describe_holder": "_lock",
    "file_sha256": "_files",
    "holder_of": "_lock",
    "journal_key": "_journal",
    "lock_folder": "_lock",
    "lock_path": "_lock",
    "staging_path": "_staging",
    "sync_tree": "_files",
    "write_bytes": "_files",
    "write_json": "_files",
    "write_text": "_files",
}

__all__ = sorted(_MODULES, key=lambda s: (not s.isupper(), s))


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)
    globals()[name] = value  # once: later uses find it here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
