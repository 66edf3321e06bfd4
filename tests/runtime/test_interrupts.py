"""Ctrl-C inside the job's process: raised once, never lost where Python cannot raise it."""

import os
import pathlib
import textwrap
from multiprocessing import spawn

import pytest

from mnistdist.runtime import _interrupts

from helpers import python_code

# A Ctrl-C delivered while a weakref callback runs: Python calls the handler there, and an
# exception raised there is printed as "Exception ignored" and dropped.
IN_A_CALLBACK = textwrap.dedent(
    """
    import os, signal, time, weakref
    from mnistdist.runtime import interrupt_once

    class Thing:
        pass

    def callback(ref):
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(100_000))  # the handler runs here, inside the callback

    signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's foreground job
    start = time.monotonic()
    try:
        with interrupt_once():
            thing = Thing()
            ref = weakref.ref(thing, callback)
            del thing
            time.sleep(60)  # a job's wait: the interrupt ends it
        print("not interrupted")
    except KeyboardInterrupt:
        print("interrupted", "during the wait" if time.monotonic() - start < 30 else "late")
    """
)


def test_a_ctrl_c_in_a_weakref_callback_is_raised_again_not_lost():
    proc = python_code(IN_A_CALLBACK)
    assert proc.stdout.strip() == "interrupted during the wait", proc.stderr
    assert "Traceback" not in proc.stderr and "ignored" not in proc.stderr, proc.stderr


# The import system's global lock left held by the main thread, as a Ctrl-C landing between
# its taking the lock and its ``try`` leaves it; then another thread imports a new module.
LEAKED_IMPORT_LOCK = textwrap.dedent(
    """
    import _imp, os, pathlib, sys, tempfile, threading
    from mnistdist.runtime import held_interrupts

    folder = tempfile.mkdtemp()
    pathlib.Path(folder, "never_imported_before.py").write_text("x = 1")
    sys.path.insert(0, folder)
    _imp.acquire_lock()
    with held_interrupts(raise_after=False):  # a cleanup after the interrupt
        other = threading.Thread(target=__import__, args=("never_imported_before",), daemon=True)
        other.start()
        other.join(10)
    print("stuck" if other.is_alive() else "imported", flush=True)
    os._exit(0)
    """
)


def test_a_cleanup_releases_the_import_lock_a_ctrl_c_left_held():
    proc = python_code(LEAKED_IMPORT_LOCK)
    assert proc.stdout.strip() == "imported", proc.stderr


@pytest.mark.parametrize("first_out", ["first in", "second in"])
def test_two_starts_at_once_leave_multiprocessing_as_they_found_it(first_out):
    # Two clusters starting in two threads (a test's stuck start and the next test's
    # start did): the second must not wrap the first's script, which the first deletes,
    # nor be left with it as the executable when both are done.
    python = spawn.get_executable()
    a, b = _interrupts._spawn_ignoring_sigint(), _interrupts._spawn_ignoring_sigint()
    try:
        a.__enter__()
        b.__enter__()
        wrapper = pathlib.Path(os.fsdecode(spawn.get_executable()))
        assert os.fsdecode(python) in wrapper.read_text()  # the real Python, not a script
        outer, inner = (a, b) if first_out == "first in" else (b, a)
        outer.__exit__(None, None, None)
        assert pathlib.Path(os.fsdecode(spawn.get_executable())).exists()  # in use, or Python
        inner.__exit__(None, None, None)
        assert spawn.get_executable() == python
    finally:
        spawn.set_executable(python)
