"""No silent waits: a job on a scheduler that has no workers, or stops answering, says so.

A scheduler with no workers queues a job's tasks forever, and one whose
link is cut never closes the job's connection (a cut cable sends nothing):
either way the job would wait without a word. :func:`watch_workers` asks
the scheduler for its workers every few seconds while the block runs;
after ``mnistdist.no-workers-timeout`` with none, or without an answer, it
interrupts the job's main thread as Ctrl-C would (so everything the job
has running is cancelled and its finished work kept), and the block ends
with a :class:`~mnistdist.errors.ClusterError` that says which.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from dask.utils import parse_timedelta
from distributed import Client

from .. import config
from ..errors import ClusterError

log = logging.getLogger(__name__)


def no_workers_timeout(timeout: str | float | None = None) -> float:
    """How long a job waits for a worker, or an answer (``mnistdist.no-workers-timeout``)."""
    return parse_timedelta(timeout if timeout is not None else config.get("no-workers-timeout"))


def wait_for_workers(client: Client, n: int = 1, timeout: str | float | None = None) -> None:
    """Wait until the scheduler has ``n`` workers; :class:`ClusterError` after ``timeout``.

    Parameters
    ----------
    client : distributed.Client
    n : int, default=1
    timeout : str or float, optional
        Default ``mnistdist.no-workers-timeout``.
    """
    seconds = no_workers_timeout(timeout)
    try:
        client.wait_for_workers(n, timeout=seconds)
    except TimeoutError:
        have = len(client.nthreads())
        setting = " (mnistdist.no-workers-timeout)" if timeout is None else ""
        raise ClusterError(
            f"the Dask scheduler at {client.scheduler.address} has {have} of the {n} workers "
            f"wanted after {seconds:g} s{setting}: start workers, "
            "or check that they can reach the scheduler"
        ) from None


class _Watch:
    """The polling thread of :func:`watch_workers`; ``reason`` is set when it gave up."""

    def __init__(self, client: Client, seconds: float, interval: float):
        self.client, self.seconds, self.interval = client, seconds, interval
        self.reason: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        answered = with_workers = time.monotonic()
        asking: Future | None = None
        while not self.stop.wait(self.interval):
            if asking is None:  # one question at a time: a cut link may hold one for long
                asking = self._ask()
            try:
                workers = asking.result(timeout=self.interval)
            except FutureTimeout:
                pass
            except Exception:  # the question failed (a cut link): ask again, still unanswered
                asking = None
            else:
                asking = None
                answered = time.monotonic()
                if workers:
                    with_workers = answered
            now = time.monotonic()
            if now - answered > self.seconds:
                return self._give_up(f"has not answered for {now - answered:.0f} s")
            if now - with_workers > self.seconds:
                return self._give_up(f"has had no workers for {now - with_workers:.0f} s")
        return None

    def _give_up(self, what: str) -> None:
        self.reason = (
            f"the Dask scheduler at {self.client.scheduler.address} {what} "
            f"(mnistdist.no-workers-timeout is {self.seconds:g} s)"
        )
        log.error("%s; stopping the job", self.reason)
        _thread.interrupt_main()  # as Ctrl-C: the job cancels its work and keeps what finished

    def _ask(self) -> Future:
        """The scheduler's workers, asked in a daemon thread: one held by a cut link must
        not keep the process from exiting."""
        answer: Future = Future()

        def ask() -> None:
            try:
                answer.set_result(self.client.nthreads())
            except BaseException as exc:  # the job's own error says what went wrong
                answer.set_exception(exc)

        threading.Thread(target=ask, name="mnistdist-watch-ask", daemon=True).start()
        return answer

    def on_interrupt(self, signum, frame) -> None:
        """Where SIGINT was ignored: the watch's own interrupt alone stops the job."""
        if self.reason is not None:
            raise KeyboardInterrupt

    def close(self) -> None:
        self.stop.set()


@contextlib.contextmanager
def watch_workers(
    client: Client, timeout: str | float | None = None, *, interval: float | None = None
) -> Iterator[None]:
    """Within the block, stop the job when its scheduler has no workers or stops answering.

    Parameters
    ----------
    client : distributed.Client
        A client of a scheduler in another process.
    timeout : str or float, optional
        How long without workers, or without an answer, is too long (default
        ``mnistdist.no-workers-timeout``).
    interval : float, optional
        Seconds between questions (default: a tenth of ``timeout``, 0.5 to 5 s).

    Raises
    ------
    ClusterError
        Leaving the block after the watch gave up, saying why. Only where the
        block runs in the main thread, which the watch interrupts; elsewhere
        the watch only logs.
    """
    seconds = no_workers_timeout(timeout)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    watch = _Watch(client, seconds, interval or min(5.0, max(0.5, seconds / 10)))
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIGINT ignored (a job in the background): the watch's alone
        signal.signal(signal.SIGINT, watch.on_interrupt)
    thread = threading.Thread(target=watch.run, name="mnistdist-watch-workers", daemon=True)
    thread.start()
    try:
        yield
    except KeyboardInterrupt:
        if watch.reason is None:
            raise
        raise ClusterError(watch.reason) from None
    finally:
        watch.close()
        if not callable(previous):
            signal.signal(signal.SIGINT, previous)
    if watch.reason is not None:  # it gave up as the block ended: that interrupt is spent
        raise ClusterError(watch.reason)
