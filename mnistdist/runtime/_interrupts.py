"""Ctrl-C as a terminal sends it: to the job alone, once, never amid a start or a swap.

A terminal sends SIGINT to its whole foreground process group. The embedded
cluster's worker processes are in that group, and each would print its own
traceback. They are started with SIGINT ignored instead, so Ctrl-C reaches
only the job, which shuts them down.

Two moments must not be cut: starting a cluster (a half-started one cannot
be closed cleanly) and swapping a results folder into place. An interrupt
that arrives then is held back and raised as soon as the moment is over.
While the job shuts down after the first Ctrl-C, later ones are ignored: a
second KeyboardInterrupt inside that cleanup would cut it short. A Ctrl-C that
lands where Python cannot raise it (a weakref callback, a ``__del__``, which
print it as a traceback and go on) is raised again at the next step. One that
lands inside the import system, after it took its global lock and before the
``try`` that releases it, leaves the lock held: the cleanup that follows
releases it, or every other thread's next import (the cluster's start, its
close) would wait forever.
"""

from __future__ import annotations

import _imp
import _thread
import contextlib
import os
import pathlib
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing import spawn

_held = {"depth": 0, "pending": False, "after": None, "hook": sys.unraisablehook}


def _on_interrupt(signum, frame) -> None:
    if _held["depth"]:
        _held["pending"] = True
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _on_unraisable(unraisable) -> None:
    """A Ctrl-C that landed where Python cannot raise (a weakref callback, a ``__del__``) is
    raised again in the main thread, rather than printed as a traceback and lost."""
    if unraisable.exc_type is KeyboardInterrupt and _in_main_thread():
        signal.signal(signal.SIGINT, _on_interrupt)
        # From another thread, a moment later: by then the main thread is out of this hook,
        # which cannot raise either (threading.Thread.start would wait here for the thread).
        _thread.start_new_thread(_interrupt_main_soon, ())
        return
    _held["hook"](unraisable)


def _interrupt_main_soon() -> None:
    time.sleep(0.01)
    if hasattr(signal, "pthread_kill"):  # a real signal also ends the main thread's wait
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
    else:
        _thread.interrupt_main()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def interrupt_once() -> Iterator[None]:
    """Within the block, the first SIGINT raises KeyboardInterrupt and later ones are ignored.

    Only in the main thread (where Python runs signal handlers), and not
    where SIGINT is ignored already (a job started in the background).
    """
    if not _in_main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_interrupt)
    _held["hook"], sys.unraisablehook = sys.unraisablehook, _on_unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, _held["after"] or previous)
        sys.unraisablehook = _held["hook"]
        _held["pending"] = False


def ignore_after_job() -> None:
    """Leave SIGINT ignored when :func:`interrupt_once` ends: for a process that exits right after.

    A Ctrl-C while the interpreter tears down would otherwise print a
    traceback from wherever it lands (an exit hook, a weakref callback).
    """
    _held["after"] = signal.SIG_IGN


def release_import_lock() -> None:
    """Release the import system's global lock where a Ctrl-C left this thread holding it.

    The import system holds it only inside its own short critical sections,
    never while a module's code runs, so this thread holds it here only if a
    KeyboardInterrupt cut one of them between taking the lock and the ``try``
    that releases it (Python runs signal handlers between any two bytecodes).
    """
    while True:
        try:
            _imp.release_lock()
        except RuntimeError:  # this thread holds it no more, or never did
            return


@contextlib.contextmanager
def held_interrupts(*, raise_after: bool = True) -> Iterator[None]:
    """Hold back a Ctrl-C (under :func:`interrupt_once`) until the block ends.

    A cleanup after an interrupt runs in this block, so the import system's
    lock, if the interrupt left this thread holding it, is released first
    (:func:`release_import_lock`).

    Parameters
    ----------
    raise_after : bool
        Raise the held interrupt as KeyboardInterrupt when the block ends
        (False: drop it, for a block after which the job has finished anyway).
    """
    _held["depth"] += 1  # first: a Ctrl-C from here on is held, not raised amid the setup
    try:
        release_import_lock()
        yield
    finally:
        _held["depth"] -= 1
        if not _held["depth"] and _held["pending"]:
            _held["pending"] = False
            if raise_after:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                raise KeyboardInterrupt


@contextlib.contextmanager
def _spawn_ignoring_sigint(stderr_path: str | os.PathLike | None = None) -> Iterator[None]:
    """Processes spawned by multiprocessing in the block start with SIGINT ignored.

    They are started through a two-line shell script that ignores SIGINT and
    execs Python: an ignored signal stays ignored through ``exec``, and
    Python then installs no KeyboardInterrupt handler of its own. (Blocking
    the signal instead does not reach them: Distributed starts them from
    threads that do not inherit this thread's signal mask.) The script also
    sends their stderr to ``stderr_path``: this process's own stderr stays
    as it is, whichever thread starts them.
    """
    redirect = "" if stderr_path is None else f" 2>>{shlex.quote(os.fsdecode(stderr_path))}"
    with tempfile.TemporaryDirectory(prefix="mnistdist-") as tmp:
        wrapper = str(pathlib.Path(tmp) / "python")
        with _spawning["lock"]:
            if not _spawning["scripts"]:
                _spawning["python"] = spawn.get_executable()
            python = os.fsdecode(_spawning["python"])
            pathlib.Path(wrapper).write_text(
                f"#!/bin/sh\ntrap '' INT\nexec {shlex.quote(python)} \"$@\"{redirect}\n"
            )
            os.chmod(wrapper, 0o700)
            _spawning["scripts"].append(wrapper)
            spawn.set_executable(wrapper)
        try:
            yield
        finally:
            with _spawning["lock"]:
                _spawning["scripts"].remove(wrapper)
                spawn.set_executable((_spawning["scripts"] or [_spawning["python"]])[-1])


#: The blocks of :func:`_spawn_ignoring_sigint` running at once (clusters starting in several
#: threads): each script execs the Python found before the first, never another's script,
#: which its block deletes; the executable left is a running block's script, or that Python.
_spawning: dict = {"lock": threading.Lock(), "scripts": [], "python": None}


@contextlib.contextmanager
def children_ignore_interrupts(
    stderr_path: str | os.PathLike | None = None, *, hold: bool = True
) -> Iterator[None]:
    """Processes started in the block never see SIGINT (and write their stderr to ``stderr_path``).

    Meant for starting a cluster: a Ctrl-C meanwhile is held back
    (:func:`held_interrupts`) and raised once the cluster is up, so it can be
    closed cleanly. With ``hold=False`` it is not: for a start in a thread
    other than the main one, which Python never interrupts (the main thread
    gets the Ctrl-C, and waits for the start before closing the cluster).
    Off POSIX, only the stderr redirection applies, and it is this process's.
    """
    posix = os.name == "posix"
    with (
        held_interrupts() if hold else contextlib.nullcontext(),
        _spawn_ignoring_sigint(stderr_path) if posix else _stderr_to(stderr_path),
    ):
        yield


@contextlib.contextmanager
def _stderr_to(path: str | os.PathLike | None) -> Iterator[None]:
    """This process's stderr (so its children's) to ``path`` in the block."""
    if path is None:
        yield
        return
    saved_stderr = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
