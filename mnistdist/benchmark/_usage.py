"""What a phase of the benchmark used: each worker's peak memory, and CPU time.

CPU time is this process's and its children's (scikit-learn's worker
processes): with the embedded cluster's worker threads, a search's own. On a
shared machine, whose other jobs lengthen the wall time of everything, it
says what a phase cost where the wall time cannot.

Memory:

Linux keeps a process's peak resident set (``VmHWM`` in ``/proc/self/status``)
and resets it to the current size on ``echo 5 > /proc/self/clear_refs``: reset
on every worker before a phase, read after it, the peak is the phase's own.
Where the reset is refused, the peak is the process's since it started
(``since_start``). Worker threads (the embedded cluster's) share one process,
the job's, and report the same numbers.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import psutil


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise OSError(f"no {field} in /proc/self/status")


def _reset(dask_worker=None) -> dict:
    """On a worker: reset its process's peak; its pid, resident bytes, whether it was reset."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return {"pid": os.getpid(), "rss": _status_bytes("VmRSS"), "reset": True}
    except OSError:
        return {"pid": os.getpid(), "rss": _rss_fallback(), "reset": False}


def _rss_fallback() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak(dask_worker=None) -> int:
    try:
        return _status_bytes("VmHWM")
    except OSError:
        return _rss_fallback()


@contextlib.contextmanager
def peak_memory_during(client) -> Iterator[dict]:
    """Each worker's peak resident bytes during the block, by address, filled in after it.

    Each entry: ``peak_bytes``, ``start_bytes`` (resident when the block began),
    ``pid``, and ``since_start`` (true where the peak could not be reset: the
    process's since it started). Empty without a ``distributed`` client.
    """
    out: dict = {}
    if client is None:
        yield out
        return
    before = client.run(_reset)
    yield out
    for addr, peak in client.run(_peak).items():
        start = before.get(addr, {})
        out[addr] = {
            "peak_bytes": int(peak),
            "start_bytes": int(start.get("rss", 0)),
            "pid": start.get("pid"),
            "since_start": not start.get("reset", False),
        }


def _children_cpu() -> dict[int, float]:
    out = {}
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            out[child.pid] = times.user + times.system
    return out


@contextlib.contextmanager
def cpu_during() -> Iterator[dict]:
    """CPU seconds of this process (``process``), of its children (``children``, those alive
    at the end: scikit-learn's worker processes, an embedded cluster's worker processes) and
    both (``total``) during the block, filled in after it. A remote cluster's are not counted."""
    out: dict = {}
    children, t = _children_cpu(), time.process_time()
    yield out
    out["process"] = time.process_time() - t
    out["children"] = sum(s - children.get(pid, 0.0) for pid, s in _children_cpu().items())
    out["total"] = out["process"] + out["children"]
