"""Connecting to a Dask cluster, or starting an embedded one, and preparing it for mnistdist.

``connect()`` follows Dask's conventions: a cluster deployed for the job from
a spec (dask-jobqueue, Kubernetes, dask-gateway: :mod:`._deployers`), or an
explicit address or scheduler file, else ``DASK_SCHEDULER_ADDRESS``
(dask.config's ``scheduler-address``), else a ``LocalCluster`` of one
single-threaded worker per core with its dashboard on port 8787 (or a free
port when 8787 is taken), every port on 127.0.0.1. Its workers are threads
of the job's own process (NumPy and BLAS release the GIL), or processes of
their own for work that holds it (:func:`embedded_processes`).

On a cluster that was started elsewhere, the job waits for a worker,
:func:`prepare` checks that the client, scheduler and workers run the same
versions of the packages that matter and ships mnistdist's own code to
workers that do not have it, and :func:`watch_workers` stops the job, in one
line, if the cluster loses all its workers or stops answering.
TLS certificates come from ``MNISTDIST_TLS_CA_FILE``, ``MNISTDIST_TLS_CERT``
and ``MNISTDIST_TLS_KEY`` (the same variables the cluster scripts read), or
from Dask's own ``distributed.comm.tls`` settings.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import pathlib
import ssl
import stat
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait

import dask
import dask.config
from dask.utils import parse_timedelta
from distributed import Client, LocalCluster, SpecCluster
from distributed.security import Security
from distributed.system import MEMORY_LIMIT
from distributed.utils import format_dashboard_link
from threadpoolctl import threadpool_limits

from .. import config
from ..errors import ClusterError
from ._addresses import TLS_ENV, check_scheduler_address, read_scheduler_file
from ._dashboard import LazyDashboardWorker, connect_on_first_request
from ._deployers import ClusterSpec, deployed, read_cluster_spec
from ._interrupts import children_ignore_interrupts, held_interrupts
from ._versions import prepare
from ._watchdog import wait_for_workers, watch_workers

log = logging.getLogger(__name__)


class _NamedSecurity(Security):
    """Dask's ``Security``, with the scheduler's certificate checked against the name dialled.

    Dask turns hostname checks off (a cluster's own CA, addresses not names); a
    deployment whose certificates name their hosts gets them back (:func:`tls_security`).
    """

    def get_connection_args(self, role):
        args = super().get_connection_args(role)
        if args.get("ssl_context") is not None:
            args["ssl_context"].check_hostname = True  # Tornado passes the host as its name
        return args


def _certificate_names(path: str) -> tuple:
    """The names (subjectAltName) a PEM certificate carries; () where it carries none."""
    try:
        decoded = ssl._ssl._test_decode_cert(path)  # the standard library's own reader
    except (AttributeError, OSError, ssl.SSLError):
        return ()
    return tuple(decoded.get("subjectAltName", ()))


def tls_security() -> Security | None:
    """A TLS ``Security`` from the ``MNISTDIST_TLS_*`` variables, or None when they are unset.

    The key must be readable by its owner only. Where the client's certificate
    names hosts (subjectAltName, as ``cluster/certs.sh`` makes them), the
    scheduler's certificate must name the host dialled: hostname checks are on.
    """
    values = [os.environ.get(name) for name in TLS_ENV]
    if not any(values):
        return None
    if not all(values):
        raise ClusterError(
            f"TLS needs all of {', '.join(TLS_ENV)}; "
            f"set: {', '.join(n for n, v in zip(TLS_ENV, values, strict=False) if v)}"
        )
    for name, value in zip(TLS_ENV, values, strict=False):
        if not pathlib.Path(value).is_file():
            raise ClusterError(f"{name}={value}: file not found")
    ca, cert, key = values
    mode = stat.S_IMODE(os.stat(key).st_mode)
    if mode & 0o077:
        raise ClusterError(
            f"{TLS_ENV[2]}={key} may be read by its group or others (mode {mode:o}): chmod 600 it"
        )
    kind = _NamedSecurity if _certificate_names(cert) else Security
    return kind(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key, require_encryption=True)


def scheduler_address(address: str | None = None) -> str | None:
    """The scheduler to use: ``address``, else ``DASK_SCHEDULER_ADDRESS``, else None (embedded)."""
    return address or dask.config.get("scheduler-address", None) or None


def _remote_client(address: str, timeout: str | float | None) -> Client:
    seconds = parse_timedelta(timeout if timeout is not None else config.get("connect-timeout"))
    try:
        return Client(address, timeout=seconds, set_as_default=True, security=tls_security())
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"could not reach the Dask scheduler at {address} within {seconds:g} s "
            f"({exc.__class__.__name__})"
        ) from None


def embedded_processes(holds_gil: bool = False) -> bool:
    """Whether the embedded cluster's workers are processes of their own (``mnistdist.processes``).

    Unset, they are threads of the job's process, unless its tasks hold the
    GIL (``holds_gil``). Threads run NumPy and BLAS in parallel, as they
    release the GIL, without starting a process per core that imports the
    job's modules again, or copying blocks between processes.
    """
    setting = config.get("processes")
    return holds_gil if setting is None else bool(setting)


@contextlib.contextmanager
def connect(
    address: str | None = None,
    *,
    scheduler_file: str | os.PathLike | None = None,
    cluster: str | ClusterSpec | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool | None = None,
    memory_limit: str | None = "auto",
    dashboard_address: str | None = None,
    timeout: str | float | None = None,
    worker_log: str | os.PathLike | None = None,
    while_starting: Callable[[], object] | None = None,
    prepare_remote: bool = True,
    report: Callable[[str], object] | None = None,
) -> Iterator[Client]:
    """A ``Client`` on the given scheduler, a deployed cluster, or a new ``LocalCluster``.

    Closed on exit (a deployed or embedded cluster with it).

    Parameters
    ----------
    address : str, optional
        Scheduler address (default: ``DASK_SCHEDULER_ADDRESS``; with neither,
        nor ``scheduler_file`` or ``cluster``, an embedded ``LocalCluster``).
    scheduler_file : path, optional
        A Dask scheduler file (``dask scheduler --scheduler-file``) naming the
        scheduler, instead of ``address``.
    cluster : str or ClusterSpec, optional
        A cluster to start for the block and close after it, through one of
        Dask's deployers (:func:`~mnistdist.runtime.read_cluster_spec`).
    n_workers, threads_per_worker, memory_limit
        The embedded cluster's workers (default: one single-threaded worker
        per core, as the neighbor search is BLAS-bound).
    processes : bool, optional
        Whether the embedded cluster's workers are processes of their own
        (default: :func:`embedded_processes`). Workers that are threads share
        the job's memory, so each may use all of it, and its BLAS runs one
        thread a call while the cluster is up, as a worker process's does.
    dashboard_address : str, optional
        The embedded cluster's dashboard (default ``mnistdist.dashboard-address``,
        loopback only: the dashboard shows task names and data sizes to anyone
        who reaches it; a free port if taken). Every other port of the
        embedded cluster listens on 127.0.0.1.
    timeout : str or float, optional
        How long to wait for a remote scheduler (default ``mnistdist.connect-timeout``).
    worker_log : path, optional
        A file for the embedded cluster's processes' stderr (their warnings
        and log lines), instead of the terminal.
    while_starting : callable, optional
        Work of the caller's that needs no cluster, run while an embedded
        cluster starts in a thread of its own (not called for a remote one).
    prepare_remote : bool, default=True
        Whether to make a cluster started elsewhere ready before yielding: wait
        for a worker, :func:`~mnistdist.runtime.prepare` it (its package
        versions, mnistdist's code where missing), and watch that it keeps
        workers (:func:`~mnistdist.runtime.watch_workers`).
    report : callable ``(str)``, optional
        Told, one line each, what was done to a remote cluster (default: logged).

    Yields
    ------
    distributed.Client
        Set as the default client while the block runs.

    Raises
    ------
    OptionError
        For an address, scheduler file or cluster spec no job can use
        (checked before trying).
    ClusterError
        If a remote scheduler does not answer within ``timeout`` or refuses
        the connection (a TLS scheduler asked over plain TCP, for example),
        the TLS settings are incomplete, no worker comes within
        ``mnistdist.no-workers-timeout`` (a spec's ``timeout``), or all leave.
    VersionMismatchError
        If the cluster's package versions differ from the client's.

    Notes
    -----
    The embedded cluster's processes ignore SIGINT (:mod:`mnistdist.runtime._interrupts`):
    Ctrl-C reaches the client, which closes them (workers that are threads
    finish the task in hand first). Its workers import the
    modules of ``mnistdist.worker-preload`` as they start, so the first
    tasks do not wait for them.
    """
    report = report or (lambda line: log.info("cluster: %s", line))
    if cluster is not None:
        spec = cluster if isinstance(cluster, ClusterSpec) else read_cluster_spec(cluster)
        with (
            deployed(spec, report) as deployed_cluster,
            Client(deployed_cluster, set_as_default=True) as client,
            _ready(client, prepare_remote, report, spec.workers_wanted, spec.timeout),
        ):
            yield client
        return
    if scheduler_file is not None:
        address = read_scheduler_file(scheduler_file)
    address = scheduler_address(address)
    if address:
        check_scheduler_address(address)
        with (
            _remote_client(address, timeout) as client,
            _ready(client, prepare_remote, report),
        ):
            yield client
        return
    with _embedded(
        n_workers,
        threads_per_worker,
        embedded_processes() if processes is None else processes,
        memory_limit,
        dashboard_address or config.get("dashboard-address"),
        worker_log,
        while_starting,
    ) as client:
        yield client


@contextlib.contextmanager
def _ready(
    client: Client, prepare_remote: bool, report, n_workers: int = 1, timeout=None
) -> Iterator[None]:
    """A cluster started elsewhere, made ready and watched while the block runs (or as it is)."""
    if not prepare_remote:
        yield
        return
    wait_for_workers(client, n_workers, timeout)
    for line in prepare(client):
        report(line)
    with watch_workers(client):
        yield


@contextlib.contextmanager
def _embedded(
    n_workers, threads_per_worker, processes, memory_limit, dashboard, worker_log, while_starting
) -> Iterator[Client]:
    """A client of a new ``LocalCluster``, as :func:`connect` describes it."""
    options = {
        "n_workers": n_workers or os.cpu_count() or 1,
        "threads_per_worker": threads_per_worker,
        "processes": processes,
        "memory_limit": memory_limit,
        "dashboard_address": dashboard,
        "preload": list(config.get("worker-preload")),
    }
    if not processes:
        # Each worker's memory monitor sees the whole process, so each gets the whole
        # limit; the in-process transport hands data over without serializing it.
        if memory_limit == "auto":
            options["memory_limit"] = MEMORY_LIMIT
        options["protocol"] = "inproc://"
        # In-process workers have no host to bind their HTTP servers (/health, /metrics)
        # to, and Distributed then listens on every interface: loopback, as processes' are.
        options["worker_dashboard_address"] = "127.0.0.1:0"
        options["worker_class"] = LazyDashboardWorker
    if dashboard:  # Bokeh's pages come with the first request for one
        options["scheduler_kwargs"] = {"dashboard": False}
    kind = LocalCluster if processes else _InProcessCluster
    cluster = _local_cluster(kind, options, worker_log, while_starting)
    if dashboard:
        connect_on_first_request(cluster.scheduler)
    with (
        _feeds_closed_quietly(),
        cluster,
        # A worker process's BLAS runs one thread a call (the nanny sees to it);
        # worker threads share this process's BLAS, so it runs one thread a call too.
        contextlib.nullcontext() if processes else threadpool_limits(limits=1),
        Client(cluster, set_as_default=True) as client,
    ):
        yield client


class _CancelledFeed(logging.Filter):
    """Drops the scheduler's record of a feed cancelled by its close: not an error.

    A progress bar's feed (``Scheduler.feed``) sleeps between its updates; a
    scheduler closed within that sleep cancels it, and Distributed logs the
    ``CancelledError`` as an ERROR with a traceback (python/cpython#115842
    reports it): in every log of a job whose cluster closes as its last bar ends.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, asyncio.CancelledError):
            return True
        return not any(frame.name == "feed" for frame in traceback.extract_tb(error.__traceback__))


@contextlib.contextmanager
def _feeds_closed_quietly() -> Iterator[None]:
    """The block, its scheduler's cancelled feeds left out of the log (:class:`_CancelledFeed`)."""
    scheduler_log, quiet = logging.getLogger("distributed.scheduler"), _CancelledFeed()
    scheduler_log.addFilter(quiet)
    try:
        yield
    finally:
        scheduler_log.removeFilter(quiet)


#: How the embedded cluster's scheduler moves tasks between its worker threads. Distributed
#: prices moving a task's inputs at a network's bandwidth (100 MB/s) and keeps a task where
#: its inputs are unless moving them is cheap, and it looks for idle workers to steal tasks
#: for once a second. Between threads of one process nothing is copied: priced so, a task
#: goes to a free thread, and a look every 100 ms lets a search of a few chains, one a
#: thread, even out a start that gave two of them to one thread (docs/benchmark.md).
IN_PROCESS_SCHEDULING = {
    "distributed.scheduler.bandwidth": "1 TB",
    "distributed.scheduler.work-stealing-interval": "100ms",
}


class _InProcessCluster(LocalCluster):
    """A ``LocalCluster`` of worker threads, whose dashboard link names the dashboard's host.

    An in-process scheduler's address names this machine's network
    interface, which Distributed's link would use, whatever interface the
    dashboard listens on (loopback by default).
    """

    def __init__(self, *args, dashboard_address=None, **kwargs):
        with dask.config.set(IN_PROCESS_SCHEDULING):
            super().__init__(*args, dashboard_address=dashboard_address, **kwargs)
        self._dashboard_host = (dashboard_address or "").rpartition(":")[0].strip("[]")

    @property
    def dashboard_link(self) -> str:
        link = super().dashboard_link
        if not link or not self._dashboard_host:
            return link
        port = self.scheduler_info["services"]["dashboard"]
        return format_dashboard_link(self._dashboard_host, port)


#: Seconds a cluster's start is waited for, after an error or a Ctrl-C, to close it: a start
#: that cannot finish (an interrupt's leftovers, see :mod:`._interrupts`) must not hang the job.
START_AFTER_ERROR_TIMEOUT = 30.0


def _local_cluster(kind: type[LocalCluster], options: dict, worker_log, while_starting):
    """A ``kind(**options)`` cluster whose processes ignore SIGINT, started while
    ``while_starting`` runs.

    The start runs in a thread of its own (worker processes spawning and
    importing, the scheduler binding its ports), so the caller's other work
    overlaps it. If that work fails or Ctrl-C arrives, the start is let
    finish (a half-started cluster cannot be closed cleanly) and the cluster
    closed quietly, before the error goes on.
    """
    starting: Future = Future()

    def start() -> None:
        try:
            saturation = config.get("worker-saturation")
            with (
                children_ignore_interrupts(worker_log, hold=False),
                dask.config.set({"distributed.scheduler.worker-saturation": saturation}),
            ):
                starting.set_result(kind(**options))
        except BaseException as exc:
            starting.set_exception(exc)

    try:  # a Ctrl-C inside Thread.start too: the thread may have started
        threading.Thread(target=start, name="mnistdist-cluster-start", daemon=True).start()
        if while_starting is not None:
            while_starting()
        return starting.result()
    except BaseException:
        with held_interrupts(raise_after=False):  # the first Ctrl-C said it all
            done, _ = wait([starting], timeout=START_AFTER_ERROR_TIMEOUT)
            if not done:  # its threads are daemons: the process's exit ends them
                log.warning("the cluster did not finish starting: left to the exit")
            elif starting.exception() is None:
                _close_quietly(starting.result())
        raise


def _close_quietly(cluster: SpecCluster) -> None:
    with contextlib.suppress(BaseException):
        cluster.close(timeout=10)
    SpecCluster._instances.discard(cluster)


@atexit.register  # registered after distributed's own, so it runs first
def _close_clusters_quietly() -> None:
    """Close clusters a Ctrl-C left open, before Distributed's exit hook would (with tracebacks)."""
    for cluster in list(SpecCluster._instances):
        if getattr(cluster, "shutdown_on_close", False):
            _close_quietly(cluster)


def describe(client: Client) -> dict:
    """The scheduler address, dashboard link and workers of a client's cluster, and whether
    they are threads of this process."""
    info = client.scheduler_info(n_workers=-1)
    workers = [
        {
            "address": addr,
            "threads": w.get("nthreads"),
            "memory_limit": w.get("memory_limit"),
            "name": str(w.get("name")),
        }
        for addr, w in sorted(info.get("workers", {}).items())
    ]
    return {
        "scheduler": client.scheduler.address,
        "dashboard": client.dashboard_link,
        # Only an embedded cluster's worker threads share the client's process.
        "in_process": client.scheduler.address.startswith("inproc://"),
        "workers": workers,
    }


def _peak_memory_probe():
    # A closure, so it is pickled by value for workers without mnistdist.
    def probe(dask_worker=None):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB

    return probe


def peak_memory(client: Client) -> dict[str, int]:
    """The peak resident memory so far of each worker's process, in bytes, by address.

    Worker threads (an embedded cluster's, by default) share one process, so they
    report the same number."""
    return client.run(_peak_memory_probe())
