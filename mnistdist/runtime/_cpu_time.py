"""Where a job's CPU time goes: its own process, and each worker by the worker's own counters.

A cluster job should leave the computing to the workers. :func:`measure`
reads the CPU seconds of every worker process (``psutil``, through
``client.run``, so each worker reports its own) before and after a block,
and the job's process time (``time.process_time``) at the end. With an
embedded cluster the scheduler runs in the job's process, so its work counts
as the client's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)


def _cpu_probe():
    # A closure, so it is pickled by value for workers without mnistdist.
    def probe(dask_worker=None):
        import psutil

        times = psutil.Process().cpu_times()
        return times.user + times.system

    return probe


def workers_cpu_seconds(client) -> dict[str, float]:
    """Each worker process's CPU seconds so far (user and system), by worker address."""
    return client.run(_cpu_probe())


@dataclasses.dataclass
class CpuUse:
    """CPU seconds of the job's process and of the workers during the measured block."""

    client_s: float = 0.0  #: the job's process: everything it did since it started
    workers_s: float = 0.0  #: all workers together, during the block
    workers: dict = dataclasses.field(default_factory=dict)  #: each worker's, by address

    @property
    def client_share(self) -> float:
        """The job's process's share of all the CPU time counted (0 when none was)."""
        total = self.client_s + self.workers_s
        return self.client_s / total if total else 0.0

    def summary(self) -> dict:
        """A JSON-ready summary, with the shares the jobs quote."""
        return {
            "client_s": round(self.client_s, 3),
            "workers_s": round(self.workers_s, 3),
            "client_share": round(self.client_share, 4),
            "workers": {address: round(s, 3) for address, s in self.workers.items()},
        }

    def line(self) -> str:
        """One line for a job to print."""
        return (
            f"cpu: client {self.client_s:.1f} s, workers {self.workers_s:.1f} s; "
            f"the client's share {100 * self.client_share:.1f}%"
        )


@contextlib.contextmanager
def measure_cpu(client) -> Iterator[CpuUse]:
    """Measure the workers' CPU seconds over the block; the job's process's at its end.

    Only a block that succeeds is measured: after a failure (a lost
    scheduler, Ctrl-C) the workers are not asked again, so the job's own
    error is what the user sees. Workers that left during the block are not
    counted (their counters went with them); workers that joined count from
    zero.

    Parameters
    ----------
    client : distributed.Client
        The job's client.

    Yields
    ------
    CpuUse
        Filled in when the block ends.
    """
    use = CpuUse()
    before = workers_cpu_seconds(client)
    yield use
    use.client_s = time.process_time()
    after = workers_cpu_seconds(client)
    use.workers = {address: after[address] - before.get(address, 0.0) for address in after}
    use.workers_s = sum(use.workers.values())
    log.info("cpu: client %.1f s, workers %.1f s", use.client_s, use.workers_s)
