"""Shared fixtures: a real local Dask cluster (worker processes), datasets, IDX folders."""

from __future__ import annotations

import contextlib
import os
import pathlib

import pytest
from distributed import Client, LocalCluster

from mnistdist.data import load_dataset

from helpers import (
    CLUSTER_DIR,
    SLOW_TASKS,
    csv_rows,
    embedded_run,
    free_port,
    make_idx_folder,
    process_env,
    sitecustomize,
)


@pytest.fixture(scope="session", autouse=True)
def raw_copies(tmp_path_factory):
    """The decompressed copies of the tests' ``.gz`` files go to a folder of the session's
    (``$MNISTDIST_CACHE``), as do those of the processes the tests start."""
    folder = tmp_path_factory.mktemp("cache")
    old = os.environ.get("MNISTDIST_CACHE")
    os.environ["MNISTDIST_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("MNISTDIST_CACHE", None)
    else:
        os.environ["MNISTDIST_CACHE"] = old


@pytest.fixture(scope="session")
def cluster():
    """Two single-threaded worker processes, as the embedded cluster runs them."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster


@pytest.fixture
def client(cluster):
    with Client(cluster, set_as_default=True) as client:
        yield client


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's bundled 8x8 digits as a mnistdist Dataset."""
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_arrays(digits):
    """The digits' training and test sets as NumPy arrays."""
    return (
        digits.X_train.compute(scheduler="sync"),
        digits.y_train,
        digits.X_test.compute(scheduler="sync"),
        digits.y_test,
    )


@pytest.fixture
def idx_folder(tmp_path):
    """A fresh folder of small valid IDX files (gzip) and the arrays in it."""
    folder = tmp_path / "mnist"
    return folder, make_idx_folder(folder)


@pytest.fixture(scope="session")
def mnist_dir():
    """The real MNIST folder from MNISTDIST_DATA; the test is skipped without it."""
    path = os.environ.get("MNISTDIST_DATA")
    if not path or not pathlib.Path(path).is_dir():
        pytest.skip("real MNIST not configured: set MNISTDIST_DATA to the IDX folder")
    return pathlib.Path(path)


@pytest.fixture
def start_cluster(tmp_path):
    """Start `cluster/scheduler.sh` and N `cluster/worker.sh` on free ports; stop them after."""
    import subprocess
    import types

    from distributed import Client

    from mnistdist.runtime import tls_security

    procs = []

    def start(
        n_workers: int = 2,
        *,
        env: dict | None = None,
        worker_env: dict | None = None,
        tls: bool = False,
    ):
        port, dash = free_port(), free_port()
        base = process_env(
            {
                "MNISTDIST_SCHEDULER_PORT": str(port),
                "MNISTDIST_DASHBOARD_ADDRESS": f"127.0.0.1:{dash}",
                **(env or {}),
            }
        )
        address = f"{'tls' if tls else 'tcp'}://127.0.0.1:{port}"
        logs = tmp_path / f"cluster-{port}"
        logs.mkdir()

        def spawn(cmd, name, extra=None):
            # The child holds its own copy of the log's descriptor: ours can close.
            with open(logs / f"{name}.log", "w") as log:
                proc = subprocess.Popen(
                    cmd,
                    env={**base, **(extra or {})},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=logs,
                    start_new_session=True,
                )
            procs.append(proc)

        spawn([str(CLUSTER_DIR / "scheduler.sh")], "scheduler")
        for i in range(n_workers):
            spawn(
                [str(CLUSTER_DIR / "worker.sh"), address, "--name", f"worker-{i}"],
                f"worker-{i}",
                worker_env,
            )
        old = {
            k: os.environ.get(k)
            for k in ("MNISTDIST_TLS_CA_FILE", "MNISTDIST_TLS_CERT", "MNISTDIST_TLS_KEY")
        }
        os.environ.update({k: v for k, v in base.items() if k in old})
        try:
            with Client(address, timeout=30, security=tls_security()) as client:
                client.wait_for_workers(n_workers, timeout=60)
        finally:
            for k, v in old.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        return types.SimpleNamespace(
            address=address, dashboard=f"http://127.0.0.1:{dash}", logs=logs, env=base
        )

    yield start
    import signal

    # Each process leads its own session: signal the whole group (nanny and worker).
    for sig, grace in ((signal.SIGTERM, 3), (signal.SIGKILL, 10)):
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)


@pytest.fixture(scope="session")
def digits_search_10_folds(tmp_path_factory):
    """The rows of ``cv_results.csv`` of a 10-fold digits search on the embedded cluster."""
    out = embedded_run(tmp_path_factory, "search", "--dataset", "digits", "--cv", 10)
    return csv_rows(out / "cv_results.csv")


@pytest.fixture
def slow_cluster(start_cluster, tmp_path):
    """Two worker processes whose neighbour tasks take 0.4 s each (a 10-fold digits search's
    45 fold-pair tiles about 9 s: time enough to stop it between its folds) and wait while the
    file ``cluster.hold`` exists (a test holds the search while it runs other commands)."""
    hold = tmp_path / "hold-slow-tasks"
    env = {
        **sitecustomize(tmp_path / "slow", SLOW_TASKS),
        "MNISTDIST_TEST_TASK_DELAY": "0.4",
        "MNISTDIST_TEST_TASK_HOLD": str(hold),
    }
    cluster = start_cluster(2, worker_env=env)
    cluster.hold = hold
    return cluster
