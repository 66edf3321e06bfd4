"""Outputs that survive a crash: atomic files, the journal of finished neighbour searches behind
``--resume``, results folders written as transactions (staging), and the lock that keeps one
run per results folder."""

from ._files import atomic_path, file_sha256, sync_tree, write_bytes, write_json, write_text
from ._journal import JOURNAL_FILE, Journal, check_journal, journal_key
from ._lock import FolderLock, describe_holder, lock_folder, lock_path
from ._staging import abandon, begin, check_out, commit, staging_path

__all__ = [
    "JOURNAL_FILE",
    "FolderLock",
    "Journal",
    "abandon",
    "atomic_path",
    "begin",
    "check_journal",
    "check_out",
    "commit",
    "describe_holder",
    "file_sha256",
    "journal_key",
    "lock_folder",
    "lock_path",
    "staging_path",
    "sync_tree",
    "write_bytes",
    "write_json",
    "write_text",
]
