"""The ``mnistdist`` console command: one line and exit 130 on Ctrl-C from its first instant.

Importing the jobs takes a second or more (Dask, scikit-learn); a Ctrl-C then
would print a traceback from deep inside an import. So this module imports
nothing heavy before it has taken SIGINT over, and it ignores SIGINT again
once the job has returned, while the interpreter tears down.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Sequence

PROG = "mnistdist"
#: ``time.perf_counter()`` when :func:`main` started, before its imports; None outside it.
STARTED: float | None = None


def _interrupt_once(signum, frame) -> None:
    # Later Ctrl-Cs would cut short the shutdown that the first one starts.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mnistdist`` with ``argv`` (default: the command line); return its exit code."""
    global STARTED
    STARTED = time.perf_counter()  # the job's scaling forecast counts the imports as overhead
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _interrupt_once)
    try:
        from jobs.cli import main as cli_main
        from mnistdist.interrupts import ignore_after_job

        ignore_after_job()
        return cli_main(argv)
    except KeyboardInterrupt:  # before a job's own handler took over: nothing was started
        print(f"{PROG}: interrupted; nothing was finished", file=sys.stderr)
        return 130
    finally:
        STARTED = None
        signal.signal(signal.SIGINT, signal.SIG_IGN)
