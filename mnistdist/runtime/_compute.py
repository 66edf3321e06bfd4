"""Running Dask graphs on the current client, and reporting their progress.

:func:`compute_each` and :func:`compute` run collections on the current
``distributed`` client (or Dask's default scheduler without one), cancel
what is left if anything fails or the user presses Ctrl-C, and turn a lost
scheduler into a :class:`~mnistdist.errors.ClusterError`.

Progress
--------
The library never prints. With the ``mnistdist.progress`` setting on (in
dask.config; the jobs turn it on unless ``--quiet``), each computation is
reported on the ``mnistdist.progress`` logger: one INFO record when it
starts and one when it ends, with its elapsed time. An application shows
them by giving that logger a handler, for example with
:func:`show_progress`. When standard output is a terminal, a progress bar
is drawn there between the two records (in a Jupyter notebook too), with
the time left; when it is redirected to a file, it is not, so a log holds
two lines per phase rather than the bar's ten carriage-return updates a
second, and a record at each quarter of a phase's tasks where the phase has
run for :data:`MILESTONE_AFTER` seconds.

Inside :func:`~mnistdist.runtime.estimating` (a search plans its steps
there), every record and the bar say the work's elapsed time and its
estimated time left (:class:`~mnistdist.runtime.Eta`); elsewhere the bar
says its own phase's time left, from the share of its tasks done.

Work in the background
----------------------
:class:`Background` runs a function in a thread while the caller's own
computations go on. Its graphs go to the scheduler at a lower priority, so
its tasks run where the caller's leave a worker idle (the tail of a graph,
the client's own work between graphs) rather than delaying them. Its
computations report their start and end, but draw no bar: a terminal's
line holds the caller's.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor
from typing import TextIO

import dask
from dask.core import flatten
from dask.highlevelgraph import HighLevelGraph
from distributed import Client, as_completed, get_client
from distributed.comm.core import CommClosedError
from distributed.diagnostics.progressbar import TextProgressBar

from .. import config
from ..errors import ClusterError
from ._eta import Eta, current_eta, duration

log = logging.getLogger(__name__)
#: Where computations report their start and end (see the module docstring).
progress_log = logging.getLogger("mnistdist.progress")


def current_client() -> Client | None:
    """The current ``distributed`` client, or None when there is none."""
    try:
        return get_client()
    except ValueError:
        return None


def worker_threads() -> int:
    """The worker threads of the current client's cluster; without one, this machine's cores
    (the threads Dask's local scheduler runs)."""
    client = current_client()
    if client is None:
        return os.cpu_count() or 1
    return sum(client.nthreads().values()) or 1


def show_progress(stream: TextIO) -> None:
    """Show the ``mnistdist.progress`` records on ``stream``, one plain line each.

    For applications (the jobs call it); calling it again changes the
    stream rather than adding a second handler.

    Parameters
    ----------
    stream : text stream
        Where the lines go, for example ``sys.stdout``.
    """
    for handler in [h for h in progress_log.handlers if getattr(h, "_mnistdist", False)]:
        progress_log.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._mnistdist = True  # type: ignore[attr-defined]
    progress_log.addHandler(handler)
    progress_log.setLevel(logging.INFO)
    progress_log.propagate = False


def _on_terminal() -> bool:
    """Whether a person watches standard output, where distributed draws its bar.

    A terminal, or a Jupyter kernel's output stream (a notebook redraws the
    bar in place); not a file or a pipe.
    """
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty()) or type(sys.stdout).__module__.startswith("ipykernel")


#: A phase that has run this long (seconds) with output redirected gets a record at each
#: quarter of its tasks, with its time left.
MILESTONE_AFTER = 10.0


def _eta_text(eta: Eta | None, fraction: float | None = None) -> str:
    """`` (1:05 elapsed, about 2:40 left)``: the work's times where it is being estimated."""
    if eta is None:
        return ""
    left = eta.remaining(fraction)
    elapsed = duration(eta.elapsed())
    if left is None:
        return f" ({elapsed} elapsed)"
    return f" ({elapsed} elapsed, about {duration(left)} left)"


class _Progress(TextProgressBar):
    """distributed's text progress bar with the time left; or, off a terminal, a record at
    each quarter of the tasks (once the phase has run :data:`MILESTONE_AFTER` seconds)."""

    def __init__(self, futures, *, label: str, eta: Eta | None, terminal: bool):
        self.label, self.eta, self.terminal, self.quarter = label, eta, terminal, 0
        super().__init__(futures, complete=True, width=30)

    def _left(self, fraction: float) -> str:
        if self.eta is not None:
            left = self.eta.remaining(fraction)
        else:
            left = self.elapsed * (1 - fraction) / fraction if fraction > 0 else None
        return "" if left is None else f" | about {duration(left)} left"

    def _draw_bar(self, remaining, all, **kwargs):
        fraction = (1 - remaining / all) if all else 1.0
        if self.terminal:
            bar = "#" * int(self.width * fraction)
            line = f"\r[{bar:<{self.width}}] | {int(100 * fraction):3d}% | {duration(self.elapsed)}"
            with contextlib.suppress(ValueError):
                sys.stdout.write(line + self._left(fraction) + "\033[K")
                sys.stdout.flush()
            return
        quarter = int(4 * fraction)
        if 0 < quarter < 4 and quarter > self.quarter and self.elapsed >= MILESTONE_AFTER:
            self.quarter = quarter
            progress_log.info(
                "%s: %d%% of its tasks done%s",
                self.label,
                25 * quarter,
                _eta_text(self.eta, fraction) if self.eta else _phase_left(self.elapsed, fraction),
            )

    def _draw_stop(self, **kwargs):
        if self.terminal:
            super()._draw_stop(**kwargs)


def _phase_left(elapsed: float, fraction: float) -> str:
    left = elapsed * (1 - fraction) / fraction
    return f" ({duration(elapsed)} elapsed, about {duration(left)} left)"


def _watch(futures: list, label: str, eta: Eta | None, terminal: bool) -> None:
    """Draw the bar (or log the quarters) until the futures are done; a lost scheduler only
    ends it, the computation itself reports the error."""
    with contextlib.suppress(Exception):
        _Progress(futures, label=label, eta=eta, terminal=terminal)


@contextlib.contextmanager
def _reported(label: str, futures: list) -> Iterator[None]:
    """Report the block's computation on the progress logger, with a bar on a terminal."""
    if not config.get("progress"):
        yield
        return
    eta = current_eta()
    progress_log.info("%s: started%s", label, _eta_text(eta))
    start = time.perf_counter()
    watcher = None
    if futures:
        # Work in the background draws no bar: a terminal's line holds one, the caller's.
        terminal = _on_terminal() and _background.get() is None
        watcher = threading.Thread(target=_watch, args=(futures, label, eta, terminal), daemon=True)
        watcher.start()
    outcome = "stopped after"
    try:
        yield
        outcome = "done in"
    finally:
        if watcher is not None:
            watcher.join(timeout=2)
        elapsed = time.perf_counter() - start
        progress_log.info(
            "%s: %s %.1f s%s",
            label,
            outcome,
            elapsed,
            _eta_text(eta, 1.0 if outcome == "done in" else None),
        )


def _compute_locally(items: dict[str, tuple], on_done) -> dict[str, tuple]:
    results: dict[str, tuple] = {}
    for name, collections in items.items():
        results[name] = dask.compute(*collections)
        if on_done is not None:
            on_done(name, results[name])
    return results


def _gather_groups(groups: dict[str, list], on_done) -> dict[str, tuple]:
    """Each group's results the moment its last future completes, handed to ``on_done``."""
    owner = {id(f): name for name, futures in groups.items() for f in futures}
    remaining = {name: len(futures) for name, futures in groups.items()}
    results: dict[str, tuple] = {}
    for future in as_completed([f for futures in groups.values() for f in futures]):
        name = owner[id(future)]
        remaining[name] -= 1
        if remaining[name] == 0:
            results[name] = tuple(f.result() for f in groups[name])
            if on_done is not None:
                on_done(name, results[name])
    return results


def _cancel_and_explain(client: Client, futures: list, exc: BaseException) -> None:
    """Cancel what is still running; raise :class:`ClusterError` if the scheduler was lost."""
    if client.status == "running":
        with contextlib.suppress(Exception):
            client.cancel(futures)
    if isinstance(exc, (CancelledError, CommClosedError)) or (
        isinstance(exc, OSError) and client.status != "running"
    ):
        raise ClusterError(
            f"lost the connection to the Dask scheduler at {client.scheduler.address} "
            f"({type(exc).__name__})"
        ) from None


def compute_each(
    items: dict[str, tuple], *, label: str, on_done: Callable[[str, tuple], None] | None = None
) -> dict[str, tuple]:
    """Compute named groups of collections, handing each group to ``on_done`` as it finishes.

    On a distributed client every group runs at once as futures, and a
    group's results are passed on the moment its last future completes (so
    the caller can save them before the rest is done). Progress is reported
    as the module docstring says.

    Parameters
    ----------
    items : dict of str to tuple of Dask collections
        The groups, by name.
    label : str
        What the computation is, for the progress lines and the log.
    on_done : callable ``(name, results)``, optional
        Called with each group's computed results as soon as they are all in.

    Returns
    -------
    dict of str to tuple
        Each group's computed results, by name.

    Raises
    ------
    ClusterError
        If the connection to the scheduler is lost; every future still
        running is cancelled first, as it is on any failure or Ctrl-C.
    """
    log.info("%s: computing %d groups", label, len(items))
    client = current_client()
    if client is None:
        with _reported(label, []):
            return _compute_locally(items, on_done)
    groups = {name: _submit(client, list(collections)) for name, collections in items.items()}
    everything = [f for futures in groups.values() for f in futures]
    try:
        with _reported(label, everything):
            return _gather_groups(groups, on_done)
    except BaseException as exc:
        _cancel_and_explain(client, everything, exc)
        raise


def _submit(client: Client, collections: list) -> list:
    """``client.compute``, at the priority of the thread's :class:`Background` (if any)."""
    background = _background.get()
    futures = client.compute(collections, priority=0 if background is None else background.priority)
    if background is not None:
        background.track(client, futures)
    return futures


@dataclasses.dataclass(frozen=True)
class Known:
    """Results already at hand: what a ``then`` of :func:`compute_each_after` returns in place
    of collections to compute (a result read from a journal, say)."""

    values: tuple


def compute_each_after(
    first: list,
    then: Callable[[int, object], tuple | Known],
    *,
    label: str,
    on_done: Callable[[int, tuple], None] | None = None,
) -> list[tuple]:
    """Computations that each need a value computed first, each started once its value is.

    ``first[i]`` (a lazy value: a fold's fitted steps, say) is computed on
    the cluster; the moment it is, ``then(i, value)`` gives computation
    ``i`` as a tuple of lazy collections, submitted at once while the rest
    of ``first`` is still computing, so that no worker waits for the
    slowest value; or as :class:`Known` results, which are used as they are.
    ``on_done(i, results)`` is called as each submitted computation
    finishes. Failures, Ctrl-C and progress are handled as by
    :func:`compute_each`.

    Returns
    -------
    list of tuple
        Each computation's results, in the order of ``first``.
    """
    client = current_client()
    if client is None:
        steps = [then(i, value) for i, value in enumerate(dask.compute(*first))]
        todo = {i: step for i, step in enumerate(steps) if not isinstance(step, Known)}
        with _reported(label, []):
            computed = _compute_locally(todo, on_done)
        return [
            step.values if isinstance(step, Known) else computed[i] for i, step in enumerate(steps)
        ]
    everything = _submit(client, list(first))
    try:
        with _reported(label, everything):
            return _each_as_values_finish(client, everything, then, on_done)
    except BaseException as exc:
        _cancel_and_explain(client, everything, exc)
        raise


def _each_as_values_finish(client, values: list, then, on_done) -> list[tuple]:
    """:func:`compute_each_after`'s loop; every future it submits joins ``values``."""
    owner = {f.key: i for i, f in enumerate(values)}  # value futures, then their steps' futures
    parts: dict[int, list] = {}
    results: dict[int, tuple] = {}
    pending = as_completed(list(values))
    for future in pending:
        i = owner[future.key]
        if i not in parts:  # a value: its computation starts now
            step = then(i, future.result())
            if isinstance(step, Known):
                parts[i], results[i] = [], step.values
                continue
            parts[i] = _submit(client, list(step))
            values.extend(parts[i])
            for part in parts[i]:
                owner[part.key] = i
                pending.add(part)
        elif i not in results and all(p.done() for p in parts[i]):
            results[i] = tuple(p.result() for p in parts[i])
            if on_done is not None:
                on_done(i, results[i])
    return [results[i] for i in range(len(parts))]


def renamed(x, name: str):
    """The Dask array ``x`` under another name: a layer of aliases, computing nothing."""
    layer = {(name, *key[1:]): key for key in flatten(x.__dask_keys__())}
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[x])
    return type(x)(graph, name, chunks=x.chunks, meta=x._meta)


def compute(*collections, label: str = "compute") -> tuple:
    """``dask.compute`` on the current client, reported as :func:`compute_each` reports.

    Parameters
    ----------
    *collections : Dask collections
        What to compute.
    label : str, default="compute"
        What the computation is, for the progress lines.

    Returns
    -------
    tuple
        The computed results, in order.

    Raises
    ------
    ClusterError
        If the connection to the scheduler is lost.
    """
    return compute_each({label: collections}, label=label)[label]


#: The :class:`Background` whose thread this is, if any.
_background: contextvars.ContextVar[Background | None] = contextvars.ContextVar(
    "mnistdist_background", default=None
)


class Background:
    """``fn(*args, **kwargs)`` run in a thread beside the caller, its graphs at a lower priority.

    Its :func:`compute_each` calls submit at ``priority`` (distributed's:
    higher runs first, the caller's are at 0), so its tasks fill the workers
    the caller's leave idle. Use it as a context manager: leaving the block
    on an error (Ctrl-C included) cancels its computations and waits for
    its thread, so nothing runs on after the caller has stopped.

    Parameters
    ----------
    fn : callable
        The work; it computes through this module.
    *args, **kwargs
        Its arguments.
    priority : int, default=-1
        The scheduler priority of its tasks.
    """

    def __init__(self, fn: Callable, *args, priority: int = -1, **kwargs):
        self.priority = priority
        self._lock = threading.Lock()
        self._futures: list = []
        self._client: Client | None = None
        self._cancelled = False
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mnistdist-background")
        self._result = self._pool.submit(self._run, fn, args, kwargs)

    def _run(self, fn: Callable, args: tuple, kwargs: dict):
        _background.set(self)
        return fn(*args, **kwargs)

    def track(self, client: Client, futures: list) -> None:
        """Note futures to cancel with the work; cancel them at once if it already was."""
        with self._lock:
            self._client = client
            self._futures.extend(futures)
            cancelled = self._cancelled
        if cancelled:
            client.cancel(futures)

    def result(self):
        """What ``fn`` returned, once it has; its exception if it raised one."""
        return self._result.result()

    def cancel(self) -> None:
        """Cancel the work's computations on the cluster (it then stops with an error)."""
        with self._lock:
            self._cancelled = True
            futures, client = list(self._futures), self._client
        if futures and client is not None and client.status == "running":
            with contextlib.suppress(Exception):
                client.cancel(futures)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            self.cancel()
        self._pool.shutdown(wait=True)
