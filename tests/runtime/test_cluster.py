import contextlib
import json
import logging
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import dask
import dask.array as da
import pytest
from threadpoolctl import threadpool_info

from mnistdist.errors import ClusterError
from mnistdist.runtime import (
    _cluster,
    compute,
    connect,
    describe,
    embedded_processes,
    package_versions,
    scheduler_address,
)

from helpers import SLOW_TASKS, process_env, python_code, sitecustomize, wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_embedded_local_cluster_of_worker_processes():
    with connect(n_workers=2, processes=True, dashboard_address=":0") as client:
        info = describe(client)
        assert len(info["workers"]) == 2 and all(w["threads"] == 1 for w in info["workers"])
        assert info["dashboard"].startswith("http://") and info["scheduler"].startswith("tcp://")
        pids = client.run(lambda: __import__("os").getpid())
        assert len(set(pids.values())) == 2  # real processes, not threads
        # mnistdist.worker-saturation: every ready task goes to a worker, so priorities hold.
        saturation = client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.WORKER_SATURATION
        )
        assert saturation == float("inf")


def test_the_dashboard_is_imported_by_the_first_request_for_a_page():
    code = """
import json, sys, urllib.request
from mnistdist.runtime import connect, describe
with connect(n_workers=1, dashboard_address="127.0.0.1:0") as client:
    link = describe(client)["dashboard"]
    health = urllib.request.urlopen(link.replace("/status", "/health"), timeout=30).read()
    before = "distributed.dashboard.scheduler" in sys.modules
    (worker,) = client.scheduler_info()["workers"].values()
    worker_page = f"http://127.0.0.1:{worker['services']['dashboard']}/status"
    pages = [urllib.request.urlopen(url, timeout=60) for url in (link, link, worker_page)]
    print(json.dumps({
        "health": health.decode(), "before": before,
        "after": "distributed.dashboard.scheduler" in sys.modules,
        "pages": [[p.status, p.url, b"bokeh" in p.read().lower()] for p in pages],
    }))
"""
    proc = python_code(code)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert seen["health"] == "ok" and not seen["before"] and seen["after"]
    # Bokeh's own status pages, at the address asked for, the first time and after.
    for status, url, bokeh in seen["pages"]:
        assert status == 200 and url.endswith("/status") and bokeh


def test_embedded_local_cluster_of_worker_threads_by_default():
    blas_threads = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    with connect(n_workers=2, dashboard_address="127.0.0.1:0") as client:
        info = describe(client)
        assert len(info["workers"]) == 2 and all(w["threads"] == 1 for w in info["workers"])
        assert set(client.run(os.getpid).values()) == {os.getpid()}  # threads of this process
        # The link names the interface the dashboard listens on, not the machine's, and works.
        assert info["dashboard"].startswith("http://127.0.0.1:")
        with urllib.request.urlopen(info["dashboard"], timeout=30) as page:
            assert page.status == 200
        # One BLAS thread a call, as a worker process has: the workers are the cores.
        assert all(p["num_threads"] == 1 for p in threadpool_info())
        assert client.submit(lambda x: x + 1, 1).result() == 2
        saturation = client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.WORKER_SATURATION
        )
        assert saturation == float("inf")
    after = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    assert {path: after[path] for path in blas_threads} == blas_threads  # as they were


@pytest.mark.parametrize(
    "setting, holds_gil, processes",
    [(None, False, False), (None, True, True), (True, False, True), (False, True, False)],
)
def test_embedded_workers_are_threads_unless_the_job_or_the_setting_says(
    setting, holds_gil, processes
):
    with dask.config.set({"mnistdist.processes": setting}):
        assert embedded_processes(holds_gil) is processes


def test_existing_scheduler_by_address_and_by_environment(cluster):
    with connect(cluster.scheduler_address) as client:
        assert describe(client)["scheduler"] == cluster.scheduler_address
    with dask.config.set({"scheduler-address": cluster.scheduler_address}):
        assert scheduler_address() == cluster.scheduler_address
        with connect() as client:
            assert len(describe(client)["workers"]) == 2


def test_unreachable_scheduler_fails_fast_with_a_clear_error():
    address = f"tcp://127.0.0.1:{_free_port()}"
    t = time.perf_counter()
    with (
        pytest.raises(
            ClusterError, match=f"could not reach the Dask scheduler at {address} within 2 s"
        ),
        connect(address, timeout="2s"),
    ):
        pass
    assert time.perf_counter() - t < 15


def test_package_versions():
    versions = package_versions()
    assert {"python", "dask", "distributed", "dask-ml", "scikit-learn", "numpy"} <= set(versions)


def test_embedded_cluster_starts_while_the_caller_works_and_workers_preload():
    import threading

    seen = {}

    def meanwhile():
        # The start runs in a thread of its own, so the caller's work overlaps it.
        seen["threads"] = {t.name for t in threading.enumerate()}

    with connect(n_workers=2, dashboard_address=":0", while_starting=meanwhile) as client:
        assert "mnistdist-cluster-start" in seen["threads"]
        assert len(describe(client)["workers"]) == 2
        # Imported as the workers started (Distributed's preloads), not by a first task.
        preloaded = client.run(
            lambda dask_worker: [p.module.__name__ for p in dask_worker.preloads]
        )
        wanted = dask.config.get("mnistdist.worker-preload")
        assert wanted and all(names == wanted for names in preloaded.values()), preloaded
    assert not any(t.name == "mnistdist-cluster-start" for t in threading.enumerate())


@pytest.mark.parametrize("processes", [True, False], ids=["processes", "threads"])
def test_an_error_while_the_cluster_starts_closes_it(monkeypatch, processes):
    import mnistdist.runtime._cluster as cluster_module

    started = []
    kind = "LocalCluster" if processes else "_InProcessCluster"

    class Recorded(getattr(cluster_module, kind)):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    def fails():
        raise ValueError("the caller's work failed")

    monkeypatch.setattr(cluster_module, kind, Recorded)
    with (
        pytest.raises(ValueError, match="the caller's work failed"),
        connect(n_workers=1, processes=processes, dashboard_address=":0", while_starting=fails),
    ):
        pass
    assert len(started) == 1 and started[0].status.name == "closed"


def _descendants(pid: int) -> set[int]:
    """``pid`` and every process below it, from /proc."""
    parents = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rpartition(")")[2].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, todo = {pid}, [pid]
    while todo:
        parent = todo.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in found]
        found.update(children)
        todo.extend(children)
    return found


def _listening(pids: set[int]) -> list[str]:
    """The local addresses of the TCP sockets these processes listen on (``ss -ltnp``)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=30).stdout
    return [
        line.split()[3] for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids)
    ]


@pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) lists the sockets")
@pytest.mark.parametrize("processes", ["false", "true"], ids=["threads", "processes"])
def test_every_listening_socket_of_the_embedded_cluster_is_on_loopback(tmp_path, processes):
    out = tmp_path / "out"
    slow = sitecustomize(tmp_path / "slow", SLOW_TASKS)  # the search lasts while we look
    env = {**slow, "DASK_MNISTDIST__PROCESSES": processes, "MNISTDIST_TEST_TASK_DELAY": "0.2"}
    cmd = [sys.executable, "-m", "mnistdist", "search", "--dataset", "digits", "--workers", "2"]
    job = subprocess.Popen(
        [*cmd, "--out", str(out), "--quiet"],
        env=process_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The dashboard and each worker's HTTP server; with processes, the scheduler's, nannies'
    # and workers' TCP ports too. Looked at until all are seen: once the search's first
    # results are in, a fast search may already be closing its cluster.
    expected = 8 if processes == "true" else 3
    addresses: set[str] = set()

    def all_seen_or_ended() -> bool:
        addresses.update(_listening(_descendants(job.pid)))
        return len(addresses) >= expected or job.poll() is not None

    try:
        wait_for(all_seen_or_ended, timeout=180, interval=0.05)
    finally:
        _, stderr = job.communicate(timeout=300)
    assert job.returncode == 0, stderr
    assert len(addresses) >= expected, addresses
    assert all(a.startswith("127.0.0.1:") for a in addresses), addresses


def test_an_interrupted_start_that_cannot_finish_does_not_hang_the_job(monkeypatch):
    """After a Ctrl-C the start is waited for, to close the cluster, but not for ever."""
    monkeypatch.setattr(_cluster, "START_AFTER_ERROR_TIMEOUT", 0.5)
    release = threading.Event()

    class StuckStart:
        def __init__(self, **options):
            release.wait(60)

    def interrupted():
        raise KeyboardInterrupt

    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _cluster._local_cluster(StuckStart, {}, None, interrupted)
    assert time.monotonic() - began < 10
    release.set()


@pytest.mark.parametrize("processes", [False, True])
def test_a_cluster_closed_right_after_a_progress_bar_logs_no_error(caplog, processes):
    # Distributed's scheduler sleeps between a progress bar's updates and, closed within
    # that sleep, logged the cancelled feed as an ERROR with a traceback: in every
    # `mnistdist search` log, whose cluster closes as its last bar ends.
    with dask.config.set({"mnistdist.progress": True}), caplog.at_level(logging.INFO):
        for _ in range(3):
            with connect(n_workers=1, processes=processes, dashboard_address=":0"):
                compute(da.ones(100, chunks=10).sum(), label="a sum")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [(r.name, r.getMessage(), r.exc_info) for r in errors]
