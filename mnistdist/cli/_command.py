"""The command line's own pieces, on the standard library alone: the command's name, a parser
whose errors are one line, and the value types of its options.

:mod:`._main` imports this before it takes Ctrl-C over, so it imports nothing heavy.
"""

from __future__ import annotations

import argparse

#: The command's name, in its usage and error lines.
PROG = "mnistdist"
#: Each job's ``--out`` when none is given (the tour joins the report's folder).
DEFAULT_OUTS = {
    "report": "results",
    "search": "search-results",
    "tour": "results",
    "augment": "augmented",
    "benchmark": "bench-results",
}


def named_out(argv: list[str]) -> tuple[str, str] | None:
    """The job and the ``--out`` a command line names, read without the parser (which
    needs every job imported); None where it is not plain (``--help``, an abbreviated
    option, no known job): the parser decides those."""
    if not argv or argv[0] not in DEFAULT_OUTS:
        return None
    job, out = argv[0], DEFAULT_OUTS[argv[0]]
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "--out" and i + 1 < len(argv):
            out = argv[i + 1]
        elif arg.startswith("--out="):
            out = arg.removeprefix("--out=")
        elif arg in ("-h", "--help", "--") or (
            arg.startswith("--o") and arg not in ("--out", "--overwrite")
        ):
            return None
    return (job, out) if out.strip() and "\0" not in out else None


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def folds(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"cv must be at least 2, got {value}")
    return value
