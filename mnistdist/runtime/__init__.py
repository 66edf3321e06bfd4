"""Running on a Dask cluster: connecting (or starting an embedded one, or deploying one
through dask-jobqueue, Kubernetes or dask-gateway), the packages its processes must agree
on, no silent waits for workers, their memory, computing graphs with progress, Ctrl-C, CPU
time, each job's recorded tasks with its wall-time forecast on N workers, and a running
search's time left."""

from ._addresses import TLS_ENV, check_scheduler_address, read_scheduler_file
from ._cluster import (
    connect,
    describe,
    embedded_processes,
    peak_memory,
    scheduler_address,
    tls_security,
)
from ._compute import (
    Background,
    Known,
    compute,
    compute_each,
    compute_each_after,
    current_client,
    renamed,
    show_progress,
    worker_threads,
)
from ._cpu_time import CpuUse, measure_cpu
from ._deployers import ClusterSpec, deployed, deployer_class, read_cluster_spec, shipped_specs
from ._eta import Eta, current_eta, duration, estimating
from ._forecast import client_segment, forecast_line, record_tasks, summarize_forecast
from ._interrupts import (
    children_ignore_interrupts,
    held_interrupts,
    ignore_after_job,
    interrupt_once,
)
from ._memory import check_worker_memory, estimate_worker_peak, worker_memory_limits
from ._versions import VersionMismatchError, package_versions, prepare, ship_code
from ._watchdog import no_workers_timeout, wait_for_workers, watch_workers

__all__ = [
    "TLS_ENV",
    "Background",
    "ClusterSpec",
    "CpuUse",
    "Eta",
    "Known",
    "VersionMismatchError",
    "check_scheduler_address",
    "check_worker_memory",
    "children_ignore_interrupts",
    "client_segment",
    "compute",
    "compute_each",
    "compute_each_after",
    "connect",
    "current_client",
    "current_eta",
    "deployed",
    "deployer_class",
    "describe",
    "duration",
    "embedded_processes",
    "estimate_worker_peak",
    "estimating",
    "forecast_line",
    "held_interrupts",
    "ignore_after_job",
    "interrupt_once",
    "measure_cpu",
    "no_workers_timeout",
    "package_versions",
    "peak_memory",
    "prepare",
    "read_cluster_spec",
    "read_scheduler_file",
    "record_tasks",
    "renamed",
    "scheduler_address",
    "ship_code",
    "shipped_specs",
    "show_progress",
    "summarize_forecast",
    "tls_security",
    "wait_for_workers",
    "watch_workers",
    "worker_memory_limits",
    "worker_threads",
]
