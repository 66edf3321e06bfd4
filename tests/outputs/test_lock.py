"""One run per results folder: its lock, held by real processes, released by the kernel."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mnistdist.errors import OutputError
from mnistdist.outputs import describe_holder, lock_folder, lock_path

from helpers import wait_for

#: A process that locks a folder, says so, and waits to be killed.
HOLDER = """
import sys, time
from mnistdist.outputs import lock_folder
lock = lock_folder(sys.argv[1], command="holder")
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds the lock of ``tmp_path / "results"``; kill it afterwards."""
    procs = []

    def start():
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tmp_path / "results")],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_second_lock_is_refused_naming_the_holder_then_released(tmp_path):
    out = tmp_path / "sub" / "results"
    lock = lock_folder(out, command="mnistdist report")
    assert lock.previous is None and lock_path(out).is_file()
    assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    # Within one process too: each lock is its own open file.
    with pytest.raises(OutputError, match=rf"in use by mnistdist report \(pid {os.getpid()}, "):
        lock_folder(out, command="mnistdist tour")
    lock.release()
    assert not lock_path(out).exists() and not out.parent.exists()  # nothing left behind
    with lock_folder(out, command="again") as again:
        assert again.previous is None
    assert not (tmp_path / "sub").exists()


def test_another_process_holds_it_until_it_dies_then_it_is_taken_over(tmp_path, holder):
    out = tmp_path / "results"
    proc = holder()
    t = time.perf_counter()
    with pytest.raises(OutputError) as info:
        lock_folder(out, command="mnistdist search")
    assert time.perf_counter() - t < 1.0
    message = str(info.value)
    assert f"in use by holder (pid {proc.pid}, started " in message and "\n" not in message
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert lock_path(out).exists()  # a dead run leaves its lock file: the kernel released the lock
    with lock_folder(out, command="mnistdist search") as lock:
        assert lock.previous["pid"] == proc.pid
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    assert not lock_path(out).exists()


def test_a_lock_file_removed_under_a_locking_run_is_locked_afresh(tmp_path, monkeypatch):
    """The holder finishes (removes its file) between another run's open and its flock: that
    run must not keep a lock on the removed file, or a third run would lock a new one too."""
    import fcntl

    from mnistdist.outputs import _lock

    out = tmp_path / "results"
    first = lock_folder(out, command="first")
    real_flock, calls = fcntl.flock, []

    def flock_after_the_holder_left(fd, op):
        if not calls:
            first.release()
        calls.append(fd)
        return real_flock(fd, op)

    monkeypatch.setattr(_lock.fcntl, "flock", flock_after_the_holder_left)
    second = lock_folder(out, command="second")
    assert len(calls) == 2  # the removed file locked, seen to be stale, the new one locked
    monkeypatch.undo()
    with pytest.raises(OutputError, match=r"in use by second"):
        lock_folder(out, command="third")
    second.release()


def test_the_holder_is_described_in_one_line():
    assert describe_holder(None) == "another run (its lock file names no process)"
    text = describe_holder(
        {"pid": 12, "host": "elsewhere", "started": "2025-01-02 03:04:05", "command": "x"}
    )
    assert text == "x (pid 12 on elsewhere, started 2025-01-02 03:04:05)"


def test_a_lock_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot create output folder"):
        lock_folder(tmp_path / "file" / "sub" / "results", command="x")
    assert (tmp_path / "file").read_text() == "x"


def test_a_holder_still_writing_its_name_is_waited_for_briefly(tmp_path):
    out = tmp_path / "results"
    out.parent.mkdir(exist_ok=True)
    import fcntl

    fd = os.open(lock_path(out), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # locked, nothing written yet
    with pytest.raises(OutputError, match=r"in use by another run \(its lock file names no"):
        lock_folder(out, command="x")
    os.close(fd)
    wait_for(lambda: lock_folder(out, command="y").release() is None, timeout=5)


def test_who_holds_a_folder_is_read_without_making_or_locking_anything(tmp_path, holder):
    from mnistdist.outputs import holder_of

    out = tmp_path / "results"
    assert holder_of(out) is None and not lock_path(out).exists()
    proc = holder()
    assert holder_of(out)["pid"] == proc.pid
    proc.kill()
    proc.wait()
    assert holder_of(out) is None  # a dead run's file: no one holds the folder
    with lock_folder(out, command="x") as lock:  # and looking at it never got in the way
        assert lock.previous["pid"] == proc.pid
