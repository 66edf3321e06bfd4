"""One run per results folder: a lock file beside it, held for the whole run.

``.<name>.lock`` beside the results folder ``<name>`` is locked with ``flock``
for as long as the run lives; the kernel releases the lock when the process
ends, however it ends (SIGKILL included). The file names its holder (pid,
host, start time, command), so a second run is refused with a line that says
who holds the folder. A run that ends releases its lock and removes the file;
a file that can be locked but still names a holder was left by a run that
died: the next run takes it over and says so.

Removing the file on release is safe because every run, once it holds the
lock, checks that the path still names the file it locked (another run may
have removed it in between) and starts again if not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import json
import logging
import os
import pathlib
import socket
import time

from ..errors import OutputError

log = logging.getLogger(__name__)

#: How long a refused run waits for its holder to have written its name (it locks, then writes).
_HOLDER_WAIT_S = 0.5
_ATTEMPTS = 20


def lock_path(out: str | os.PathLike) -> pathlib.Path:
    """The lock file of the results folder ``out``: ``.<name>.lock`` beside it."""
    out = pathlib.Path(out)
    return out.with_name(f".{out.name}.lock")


@dataclasses.dataclass
class FolderLock:
    """A results folder's lock, held until :meth:`release` (or the process's end).

    Attributes
    ----------
    out : pathlib.Path
        The results folder it guards.
    path : pathlib.Path
        The lock file.
    previous : dict or None
        The holder named by a lock file that a run which died left behind, now taken over.
    """

    out: pathlib.Path
    path: pathlib.Path
    previous: dict | None = None
    _fd: int | None = None
    _made: list[pathlib.Path] = dataclasses.field(default_factory=list)

    def release(self) -> None:
        """Remove the lock file and release the lock; remove the folders made for it, if empty."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if _same_file(self.path, os.fstat(self._fd)):
                os.unlink(self.path)
        os.close(self._fd)  # releases the lock
        self._fd = None
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):
                folder.rmdir()

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def describe_holder(holder: dict | None) -> str:
    """``mnistdist report (pid 1234, started 2025-01-02 14:15:16)``, from a lock file's content."""
    if not holder:
        return "another run (its lock file names no process)"
    where = "" if holder.get("host") == socket.gethostname() else f" on {holder.get('host')}"
    return (
        f"{holder.get('command') or 'another run'} "
        f"(pid {holder.get('pid')}{where}, started {holder.get('started')})"
    )


def busy_message(out: str | os.PathLike, holder: dict | None) -> str:
    """The one line a run gets for a results folder that ``holder`` holds."""
    return (
        f"output folder {out} is in use by {describe_holder(holder)}: wait for it "
        "to finish, or choose another --out"
    )


def holder_of(out: str | os.PathLike) -> dict | None:
    """Who holds the results folder ``out`` (resolved) now: its lock file's holder, ``{}``
    if it names none, or None when no live run holds it. Creates and locks nothing."""
    try:
        fd = os.open(lock_path(out), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _wait_for_holder(fd) or {}
    except OSError:
        return None
    finally:
        os.close(fd)
    return None


def _same_file(path: pathlib.Path, st: os.stat_result) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def _read_holder(fd: int) -> dict | None:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        holder = json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _make_parents(folder: pathlib.Path) -> list[pathlib.Path]:
    """Create ``folder`` and its missing parents; the ones made, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir()
    return list(reversed(missing))


def lock_folder(out: str | os.PathLike, *, command: str) -> FolderLock:
    """Lock the results folder ``out`` (an absolute, resolved path) for this process.

    Parameters
    ----------
    out : path
        The results folder; its parent is created if missing (and removed
        on :meth:`FolderLock.release` if still empty).
    command : str
        What holds it, for the message another run gets (``mnistdist report``).

    Returns
    -------
    FolderLock
        Held; its ``previous`` names the holder of a stale lock taken over.

    Raises
    ------
    OutputError
        When another live process holds the folder (the line names it), or
        the lock file cannot be made.
    """
    out = pathlib.Path(out)
    path = lock_path(out)
    try:
        made = _make_parents(out.parent)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    lock = FolderLock(out, path, _made=made)
    try:
        lock._fd, lock.previous = _acquire(path, out)
    except BaseException:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().isoformat(sep=" ", timespec="seconds"),
        "command": command,
    }
    os.ftruncate(lock._fd, 0)
    os.pwrite(lock._fd, json.dumps(holder).encode(), 0)
    return lock  # its caller says whose lock it took over (``previous``), where it reports


def _acquire(path: pathlib.Path, out: pathlib.Path) -> tuple[int, dict | None]:
    """Lock ``path``; return its descriptor and the holder a dead run left in it, if any."""
    for _ in range(_ATTEMPTS):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OutputError(
                f"output folder {out} cannot be locked ({path}: {exc.strerror or exc})"
            ) from None
        try:
            _flock_soon(fd)
        except BlockingIOError:
            holder = _wait_for_holder(fd)
            os.close(fd)
            raise OutputError(busy_message(out, holder)) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                raise OutputError(f"output folder {out} cannot be locked: {exc.strerror}") from None
            # A file system without locks (some network mounts): run, unguarded, and say so.
            log.warning("%s: the file system cannot lock %s; running without a lock", out, path)
            return fd, None
        if _same_file(path, os.fstat(fd)):
            return fd, _read_holder(fd)
        os.close(fd)  # its holder removed it after we opened it: lock the file there now
    raise OutputError(f"output folder {out}: could not lock {path} (it keeps being replaced)")


def _flock_soon(fd: int) -> None:
    """Lock ``fd`` now, or within a few milliseconds: another command may be looking (a
    shared lock, held for an instant by :func:`holder_of`); BlockingIOError if held."""
    for wait in (0.005, 0.01, 0.02, 0.04, 0):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not wait:
                raise
            time.sleep(wait)


def _wait_for_holder(fd: int) -> dict | None:
    """The holder's name, waiting briefly for a holder that has just locked to write it."""
    end = time.monotonic() + _HOLDER_WAIT_S
    while (holder := _read_holder(fd)) is None and time.monotonic() < end:
        time.sleep(0.02)
    return holder
