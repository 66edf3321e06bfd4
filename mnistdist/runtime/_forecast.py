"""How a job would scale: its work, its span, and its wall time forecast on N workers.

While a job runs, :func:`record_tasks` keeps, from the scheduler, each finished
task's compute time and its dependencies (a :class:`TaskRecorder` plugin), and
from the job's own process the CPU time of its main thread: the job's compute
between graphs. From these records:

* the **work** (:func:`work`) is the sum of every task's compute time and the
  client's time;
* the **span** (:func:`span`) is the longest chain of tasks, each one
  waiting for its dependencies, plus the client's time, which runs between
  graphs and so adds serially. A graph that arrives when none of the job's
  tasks is left in flight is taken to have waited for everything before it
  (the client gathered results, then built the next graph), so phases that
  the job runs one after another add up on the span;
* the **forecast** (:func:`forecast`) on N workers is ``max(work / N, span)``
  plus the measured overheads, which do not shrink with more workers: the
  time around the graphs (imports, starting the cluster, writing outputs)
  and the recorded time that work and span leave unexplained (see
  :func:`summarize_forecast`).

A worker here is one thread that runs tasks, as the embedded cluster runs
them. See ``docs/scaling.md`` for the model's assumptions and limits.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence

from dask.utils import key_split
from distributed.diagnostics.plugin import SchedulerPlugin

log = logging.getLogger(__name__)

#: The cluster sizes every forecast covers.
WORKERS = (1, 2, 4, 8, 16, 32, 64)
#: The name of the client's own time that no :func:`client_segment` claimed.
CLIENT = "client"


@dataclasses.dataclass(frozen=True)
class TaskRecord:
    """One finished task, as the scheduler saw it.

    ``submitted`` and ``done`` are the scheduler's clock when the task's
    graph arrived and when its result was in memory (or it erred).
    """

    key: object
    seconds: float
    dependencies: tuple = ()
    submitted: float = 0.0
    done: float = 0.0

    @property
    def name(self) -> str:
        """The task's name as the dashboard groups it (``neighbors-fold-0``, ...)."""
        return key_split(self.key)


@dataclasses.dataclass
class Records:
    """What a job's run left to forecast from: its tasks and its client's time by name."""

    tasks: list[TaskRecord] = dataclasses.field(default_factory=list)
    client: dict[str, float] = dataclasses.field(default_factory=dict)


class TaskRecorder(SchedulerPlugin):
    """A scheduler plugin that records each finished task's compute time and dependencies.

    It runs on the scheduler, so the scheduler must be able to import
    mnistdist. :func:`take_records` reads (and empties) its records. It
    removes itself when the client that registered it (``client_id``)
    leaves, so a job that ended without reading it back (Ctrl-C, an error)
    leaves no recorder growing on a long-lived scheduler.
    """

    def __init__(self, name: str, client_id: str | None = None):
        self.name = name
        self.client_id = client_id
        self.tasks: list[tuple] = []
        self._submitted: dict = {}

    async def start(self, scheduler) -> None:
        """Keep the scheduler, whose task states hold each task's dependencies."""
        self.scheduler = scheduler

    def update_graph(self, scheduler, *, tasks=(), **kwargs) -> None:
        """Note when each task's graph arrived: a graph that finds the cluster idle waited."""
        now = time.time()
        for key in tasks:
            self._submitted[key] = now

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        """Record a task that finished (or erred): its compute time, dependencies and times."""
        if start != "processing" or finish not in ("memory", "erred"):
            return
        seconds = sum(
            s["stop"] - s["start"]
            for s in kwargs.get("startstops") or ()
            if s.get("action") == "compute"
        )
        ts = self.scheduler.tasks.get(key)
        dependencies = tuple(d.key for d in ts.dependencies) if ts is not None else ()
        now = time.time()
        self.tasks.append((key, seconds, dependencies, self._submitted.get(key, now), now))

    def remove_client(self, scheduler, client: str) -> None:
        """Remove this recorder with the client that registered it."""
        if client == self.client_id and self.name in scheduler.plugins:
            scheduler.remove_plugin(name=self.name)


def take_records(dask_scheduler, name: str) -> list[tuple]:
    """On the scheduler: the records of the :class:`TaskRecorder` called ``name``, emptied."""
    plugin = dask_scheduler.plugins[name]
    tasks, plugin.tasks = plugin.tasks, []
    return tasks


class Recording:
    """A job's records as it runs: the scheduler's tasks and the client's time.

    Made by :func:`record_tasks`. ``records`` is None until the recording has
    stopped, and stays None when the scheduler could not record (a warning
    is logged; the job goes on without a forecast).
    """

    def __init__(self, client):
        self.client = client
        self.name = f"mnistdist-scaling-{uuid.uuid4().hex[:8]}"
        self.records: Records | None = None
        self.workers = 0
        self.seconds = 0.0
        self._segments: dict[str, list[float]] = {}  # name: [wall seconds, recording-thread CPU]
        self._registered = False

    def start(self) -> None:
        """Register the recorder on the scheduler and start the client's clocks."""
        info = self.client.scheduler_info(n_workers=-1)
        self.workers = sum(w.get("nthreads", 1) for w in info.get("workers", {}).values())
        try:
            self.client.register_plugin(TaskRecorder(self.name, self.client.id), name=self.name)
            self._registered = True
        except Exception as exc:  # an older scheduler, or one without mnistdist installed
            log.warning("scaling: the scheduler cannot record tasks (%s); no forecast", exc)
        # The job's own compute runs in the thread that records (the job's main thread).
        self._thread = threading.get_ident()
        self._t0, self._cpu0 = time.perf_counter(), time.thread_time()

    def stop(self) -> None:
        """Read the records back from the scheduler and stop the clocks."""
        self.seconds = time.perf_counter() - self._t0
        cpu = time.thread_time() - self._cpu0
        if not self._registered:
            return
        try:
            raw = self.client.run_on_scheduler(take_records, name=self.name)
            self.client.unregister_scheduler_plugin(self.name)
        except Exception as exc:  # the scheduler went away at the end: keep the job's results
            log.warning("scaling: could not read the task records back (%s); no forecast", exc)
            return
        claimed = sum(c for _, c in self._segments.values())
        client = {name: wall for name, (wall, _) in self._segments.items()}
        client[CLIENT] = client.get(CLIENT, 0.0) + max(0.0, cpu - claimed)
        self.records = Records([TaskRecord(*row) for row in raw], client)

    def add_segment(self, name: str, wall: float, cpu: float) -> None:
        """Count a block of the client's own work (see :func:`client_segment`)."""
        seg = self._segments.setdefault(name, [0.0, 0.0])
        seg[0] += wall
        if threading.get_ident() == self._thread:
            seg[1] += cpu  # already in the recording thread's CPU time: not to be counted twice


_active: Recording | None = None


@contextlib.contextmanager
def record_tasks(client) -> Iterator[Recording]:
    """Record the tasks that ``client``'s scheduler runs, and the client's time, in the block.

    On leaving the block normally the records are read back into the
    recording's ``records``; after an error they are not (the cluster may
    be gone), and the job's own error is what the user sees.
    """
    global _active
    recording = Recording(client)
    recording.start()
    previous, _active = _active, recording
    try:
        yield recording
    finally:
        _active = previous
    recording.stop()


@contextlib.contextmanager
def client_segment(name: str) -> Iterator[None]:
    """Count the block as the client's own work called ``name``, by the wall clock.

    For work in the job's process that its main thread's CPU time misses
    (processes or threads it starts). The block must not wait on the
    cluster: the wait would count as the client's work. Outside a
    :func:`record_tasks` block this does nothing.
    """
    t, cpu = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        if _active is not None:
            _active.add_segment(name, time.perf_counter() - t, time.thread_time() - cpu)


def work(records: Records) -> float:
    """The job's work: every task's compute time plus the client's own time, in seconds."""
    return sum(t.seconds for t in records.tasks) + sum(records.client.values())


def _quiet_submissions(tasks: Sequence[TaskRecord]) -> set[float]:
    """The times graphs arrived with none of the tasks submitted before them still in flight.

    Such a graph is taken to have waited for everything before it: the
    client gathered results, then built it. A graph that arrives while
    others run (a persisted load, joblib's next batch) waits only for its
    own dependencies.
    """
    quiet, latest_done = set(), float("-inf")
    by_submission = sorted(tasks, key=lambda t: t.submitted)
    for submitted, group in itertools.groupby(by_submission, key=lambda t: t.submitted):
        if latest_done <= submitted:
            quiet.add(submitted)
        latest_done = max(latest_done, *(t.done for t in group))
    return quiet


def _finish_times(tasks: Sequence[TaskRecord]) -> tuple[list[float], list[int | None]]:
    """Each task's earliest finish on unlimited workers, and the task it waited for last.

    Tasks are visited in the order they finished, so a task's dependencies,
    and every task before a quiet graph, are visited before it.
    """
    quiet = _quiet_submissions(tasks)
    finish: list[float] = [0.0] * len(tasks)
    before: list[int | None] = [None] * len(tasks)
    latest: dict = {}  # key: index of its latest visited record (a key may be recomputed)
    dones: list[float] = []  # visited tasks' done times, ascending
    best: list[tuple[float, int]] = []  # the latest finish among the first i visited, and whose
    for i in sorted(range(len(tasks)), key=lambda i: tasks[i].done):
        task, start, wait = tasks[i], 0.0, None
        for dep in task.dependencies:
            j = latest.get(dep)
            if j is not None and finish[j] > start:
                start, wait = finish[j], j
        k = bisect.bisect_right(dones, task.submitted) - 1
        if task.submitted in quiet and k >= 0 and best[k][0] > start:
            start, wait = best[k]
        finish[i], before[i], latest[task.key] = start + task.seconds, wait, i
        dones.append(task.done)
        best.append(max(best[-1], (finish[i], i)) if best else (finish[i], i))
    return finish, before


def critical_path(records: Records) -> dict[str, float]:
    """The seconds each task name and each client segment takes on the span, longest first."""
    finish, before = _finish_times(records.tasks)
    parts: dict[str, float] = dict(records.client)
    i = max(range(len(finish)), key=finish.__getitem__, default=None)
    while i is not None:
        name = records.tasks[i].name
        parts[name] = parts.get(name, 0.0) + records.tasks[i].seconds
        i = before[i]
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))


def work_parts(records: Records) -> dict[str, float]:
    """The seconds of work each task name (and the client) takes, longest first."""
    parts: dict[str, float] = {}
    for task in records.tasks:
        parts[task.name] = parts.get(task.name, 0.0) + task.seconds
    parts[CLIENT] = parts.get(CLIENT, 0.0) + sum(records.client.values())
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))


def span(records: Records) -> float:
    """The job's span: its longest chain of tasks plus the client's own time, in seconds."""
    return sum(critical_path(records).values())


def forecast(
    work: float, span: float, overhead: float, workers: Sequence[int] = WORKERS
) -> list[dict]:
    """The forecast wall time on each number of workers: ``max(work / N, span) + overhead``."""
    return [{"workers": n, "seconds": max(work / n, span) + overhead} for n in workers]


def summarize_forecast(records: Records, *, workers: int, wall_s: float, recorded_s: float) -> dict:
    """The forecast of a recorded run, as a plain dict for a job's JSON.

    The overhead added to every forecast has two measured parts: the wall
    time outside the recorded block (imports, cluster start, writing
    outputs), and the recorded block's time that neither the work nor the
    span explains on today's workers (the scheduler's latency, results
    travelling to the client). Neither is taken to shrink with more workers.

    Parameters
    ----------
    records : Records
        The run's tasks and client time (:attr:`Recording.records`).
    workers : int
        The workers (threads) the run had.
    wall_s : float
        The run's measured wall time, overheads included.
    recorded_s : float
        The part of ``wall_s`` spent in the recorded block.
    """
    parts = critical_path(records)
    total_work, total_span = work(records), sum(parts.values())
    outside = max(0.0, wall_s - recorded_s)
    idle = max(0.0, recorded_s - max(total_work / max(workers, 1), total_span))
    overhead = outside + idle
    rows = forecast(total_work, total_span, overhead)
    at_measured = forecast(total_work, total_span, overhead, [max(workers, 1)])[0]["seconds"]
    return {
        "work_s": round(total_work, 3),
        "span_s": round(total_span, 3),
        "overhead_s": round(overhead, 3),
        "overheads": {"outside_s": round(outside, 3), "idle_s": round(idle, 3)},
        "client_s": round(sum(records.client.values()), 3),
        "tasks": len(records.tasks),
        "measured": {
            "workers": workers,
            "wall_s": round(wall_s, 3),
            "forecast_s": round(at_measured, 3),
        },
        "forecast": [{**row, "seconds": round(row["seconds"], 3)} for row in rows],
        "span_dominated_by": next(iter(parts), CLIENT),
        "span_parts": {name: round(s, 3) for name, s in list(parts.items())[:5]},
        "work_parts": {name: round(s, 3) for name, s in list(work_parts(records).items())[:10]},
    }


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def forecast_line(scaling: dict, workers: int = 16) -> str:
    """One line for the end of a job: the forecast on ``workers`` workers and what bounds it."""
    seconds = next(r["seconds"] for r in scaling["forecast"] if r["workers"] == workers)
    name = scaling["span_dominated_by"]
    share = scaling.get("span_parts", {}).get(name)
    what = f"{name} ({_duration(share)})" if share is not None else name
    return (
        f"forecast: {workers} workers about {_duration(seconds)}; "
        f"the span is {_duration(scaling['span_s'])}: mostly {what}"
    )
