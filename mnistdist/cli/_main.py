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
from typing import TYPE_CHECKING

from ._command import PROG, named_out

if TYPE_CHECKING:
    from ..drawing import DrawingProcess


#: Whether the command's own SIGINT handler ran: a library whose import catches every
#: exception may swallow its KeyboardInterrupt, and SIGINT is ignored from then on.
_interrupted = {"seen": False}


def _interrupt_once(signum, frame) -> None:
    # Later Ctrl-Cs would cut short the shutdown that the first one starts.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _interrupted["seen"] = True
    raise KeyboardInterrupt


def _exit_without_teardown(exit_code: list[int]) -> None:
    """End the process with the job's code, after every other exit hook but before the teardown.

    Registered first, so it runs last (exit hooks run in reverse). Only once
    the job has returned (``exit_code`` then holds its code), and only when
    no thread but daemons is left.
    """
    if not exit_code:
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
    os._exit(exit_code[0])


def _claim(argv: list[str]):
    """Lock the results folder the command line names before the second of imports, so a
    second run is refused at once, whenever it starts. Returns ``(exit code, None)`` where
    another live run holds it, ``(None, lock)`` where taken (the run adopts it), and
    ``(None, None)`` where the command line names no plain ``--out`` or the folder cannot be
    locked yet: the run's own lock, after the imports, then decides and says why."""
    named = named_out(argv)
    if named is None:
        return None, None
    from ..errors import MnistDistError
    from ..outputs import busy_message, holder_of, lock_folder  # the standard library alone

    job, out = named
    folder = os.path.realpath(os.path.abspath(out))
    holder = holder_of(folder)
    if holder is not None:
        print(f"{PROG} {job}: error: {busy_message(folder, holder)}", file=sys.stderr)
        return 1, None
    try:
        return None, lock_folder(folder, command=f"{PROG} {job}")
    except MnistDistError:
        return None, None


def _drawing_process() -> DrawingProcess:
    """The job's drawing process, started before the job's imports: it imports matplotlib on
    another core while this process imports the job."""
    from ..drawing import DrawingProcess

    return DrawingProcess().start()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mnistdist`` with ``argv`` (default: the command line); return its exit code.

    Without ``argv`` this is the process's command: the process ends right
    after its exit hooks (:func:`_exit_without_teardown`). With ``argv`` (from
    Python, a test), the caller's SIGINT handler is restored on return.
    """
    started = time.perf_counter()  # the job's scaling forecast counts the imports as overhead
    exit_code: list[int] = []
    if argv is None:
        atexit.register(_exit_without_teardown, exit_code)
    previous = signal.getsignal(signal.SIGINT)
    _interrupted["seen"] = False
    if previous is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _interrupt_once)
    code, lock = 1, None
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        busy, lock = _claim(args)
        if busy is not None:
            code = busy
        else:
            from ._parser import build_parser

            parsed = build_parser().parse_args(argv)  # the standard library alone: at once
            with _drawing_process() as drawing:
                from ..runtime import ignore_after_job
                from ._run import run

                ignore_after_job()
                parsed.job.load()  # the job's imports, timed as the command's
                if _interrupted["seen"]:  # a Ctrl-C that an import swallowed
                    raise KeyboardInterrupt
                code = run(parsed, started=started, lock=lock, drawing=drawing)
    except KeyboardInterrupt:  # before a job's own handler took over: nothing was started
        print(f"{PROG}: interrupted; nothing was finished", file=sys.stderr)
        code = 130
    finally:
        if lock is not None:  # the run released it; not where the options were refused
            lock.release()
        # As the command, Ctrl-C is ignored while the interpreter exits; called from
        # Python, the caller's own handler is put back.
        signal.signal(signal.SIGINT, signal.SIG_IGN if argv is None else previous)
    if argv is None:
        exit_code.append(code)
    return code
