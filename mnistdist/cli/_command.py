"""The command line's own pieces, on the standard library alone: the command's name, a parser
whose errors are one line, and the value types of its options.

:mod:`._main` imports this before it takes Ctrl-C over, so it imports nothing heavy.
"""

from __future__ import annotations

import argparse

#: The command's name, in its usage and error lines.
PROG = "mnistdist"


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
