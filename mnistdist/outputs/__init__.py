"""Outputs that survive a crash: atomic files, the journal of finished neighbour searches behind
``--resume``, and results folders written as transactions (staging)."""

from ._files import atomic_path, write_bytes, write_json, write_text
from ._journal import JOURNAL_FILE, Journal, journal_key
from ._staging import abandon, begin, check_out, commit, staging_path

__all__ = [
    "JOURNAL_FILE",
    "Journal",
    "abandon",
    "atomic_path",
    "begin",
    "check_out",
    "commit",
    "journal_key",
    "staging_path",
    "write_bytes",
    "write_json",
    "write_text",
]
