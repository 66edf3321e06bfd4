"""Running on a Dask cluster: connecting (or starting an embedded one), the packages its
processes must agree on, computing graphs with progress, Ctrl-C, CPU time, and each job's
recorded tasks with its wall-time forecast on N workers, and a running search's time left."""

from ._addresses import TLS_ENV, check_scheduler_address
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
    show_progress,
)
from ._cpu_time import CpuUse, measure_cpu
from ._eta import Eta, current_eta, duration, estimating
from ._forecast import client_segment, forecast_line, record_tasks, summarize_forecast
from ._interrupts import (
    children_ignore_interrupts,
    held_interrupts,
    ignore_after_job,
    interrupt_once,
)
from ._versions import package_versions, prepare, ship_code

__all__ = [
    "TLS_ENV",
    "Background",
    "CpuUse",
    "Eta",
    "Known",
    "check_scheduler_address",
    "children_ignore_interrupts",
    "client_segment",
    "compute",
    "compute_each",
    "compute_each_after",
    "connect",
    "current_client",
    "current_eta",
    "describe",
    "duration",
    "embedded_processes",
    "estimating",
    "forecast_line",
    "held_interrupts",
    "ignore_after_job",
    "interrupt_once",
    "measure_cpu",
    "package_versions",
    "peak_memory",
    "prepare",
    "record_tasks",
    "scheduler_address",
    "ship_code",
    "show_progress",
    "summarize_forecast",
    "tls_security",
]
