"""The ``mnistdist`` console command: one line and exit 130 on Ctrl-C from its first instant.

Importing the jobs takes a second or more (Dask, scikit-learn); a Ctrl-C then
would print a traceback from deep inside an import. So this module imports
nothing heavy before it has taken SIGINT over, and it ignores SIGINT again
once the job has returned, while the interpreter tears down.

As a command, it also skips the interpreter's teardown: once every exit hook
has run, the process ends. Tearing down the thousands of objects that Dask,
scikit-learn and matplotlib leave behind took 0.6 to 0.9 s of a 8 s report.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import time
from collections.abc import Sequence

PROG = "mnistdist"
#: ``time.perf_counter()`` when :func:`main` started, before its imports; None outside it.
STARTED: float | None = None
#: The job's exit code once :func:`main` has returned as the command; None before.
_EXIT_CODE: int | None = None


def _interrupt_once(signum, frame) -> None:
    # Later Ctrl-Cs would cut short the shutdown that the first one starts.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _exit_without_teardown() -> None:
    """End the process with the job's code, after every other exit hook but before the teardown.

    Registered first, so it runs last (exit hooks run in reverse). Only once
    the job has returned, and only when no thread but daemons is left.
    """
    if _EXIT_CODE is None:
        return
    import threading

    main = threading.main_thread()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not main):
        return
    if "logging" in sys.modules:  # its own exit hook may have been registered before this one
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os._exit(_EXIT_CODE)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mnistdist`` with ``argv`` (default: the command line); return its exit code.

    Without ``argv`` this is the process's command: the process ends right
    after its exit hooks (:func:`_exit_without_teardown`).
    """
    global STARTED, _EXIT_CODE
    STARTED = time.perf_counter()  # the job's scaling forecast counts the imports as overhead
    if argv is None:
        atexit.register(_exit_without_teardown)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _interrupt_once)
    code = 1
    try:
        from jobs.cli import main as cli_main
        from mnistdist.interrupts import ignore_after_job

        ignore_after_job()
        code = cli_main(argv)
    except KeyboardInterrupt:  # before a job's own handler took over: nothing was started
        print(f"{PROG}: interrupted; nothing was finished", file=sys.stderr)
        code = 130
    finally:
        STARTED = None
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if argv is None:
        _EXIT_CODE = code
    return code
