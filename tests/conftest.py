"""Shared fixtures: a real local Dask cluster (worker processes), datasets, IDX folders."""

from __future__ import annotations

import contextlib
import os
import pathlib

import numpy as np
import pytest
from distributed import Client, LocalCluster

from mnistdist.data import MNIST_FILES, load_dataset, write_idx


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


def make_idx_folder(
    folder: pathlib.Path,
    n_train: int = 60,
    n_test: int = 20,
    side: int = 28,
    *,
    gz: bool = True,
    seed: int = 0,
):
    """A folder of four small, valid MNIST-format IDX files of random digits."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    arrays = {
        "train_images": rng.integers(0, 256, size=(n_train, side, side), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, size=(n_test, side, side), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    for role, array in arrays.items():
        write_idx(folder / (MNIST_FILES[role] + suffix), array)
    return arrays


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


REPO = pathlib.Path(__file__).resolve().parents[1]
CLUSTER_DIR = REPO / "cluster"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(extra: dict | None = None) -> dict:
    """The environment for cluster processes: this interpreter's bin first, so `dask` is ours."""
    import sys

    env = {
        **os.environ,
        "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return {**env, **(extra or {})}


def sitecustomize(folder: pathlib.Path, code: str) -> dict:
    """A sitecustomize.py that every Python process started with the returned env runs first."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(code)
    return {"PYTHONPATH": str(folder)}


@pytest.fixture
def start_cluster(tmp_path):
    """Start `cluster/scheduler.sh` and N `cluster/worker.sh` processes on free ports; stop them after."""
    import subprocess
    import types

    from distributed import Client

    from mnistdist.cluster import tls_security

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
            log = open(logs / f"{name}.log", "w")
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


#: A sitecustomize for workers: every neighbour task sleeps first, so a test can
#: interrupt, kill or disconnect in the middle of a job at a moment it chooses.
SLOW_TASKS = """
import os, time
import mnistdist.neighbors as _nb
_real = _nb._chunk_task
def _slow(*args, **kwargs):
    time.sleep(float(os.environ.get("MNISTDIST_TEST_TASK_DELAY", "0.4")))
    return _real(*args, **kwargs)
_nb._chunk_task = _slow
"""


def journal_rows(out: pathlib.Path) -> int:
    """Rows committed to an output folder's journal (0 if none yet)."""
    import sqlite3

    path = out / "journal.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM neighbours").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def wait_for(predicate, timeout: float = 60, interval: float = 0.1):
    """Poll until ``predicate()`` is truthy; fail the test after ``timeout`` seconds."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(
        f"timed out after {timeout} s waiting for {getattr(predicate, '__name__', predicate)}"
    )


def mnistdist(*args, env: dict | None = None, timeout: float = 300):
    """Run the mnistdist command in a fresh process, as a user would."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "jobs", *map(str, args)],
        capture_output=True,
        text=True,
        env=process_env(env),
        timeout=timeout,
    )


def assert_one_line_error(proc, code: int, text: str) -> None:
    """The process failed with ``code`` and exactly one error line containing ``text``, no traceback."""
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "error" in lines[0] and text in lines[0], proc.stderr


def csv_rows(path: pathlib.Path) -> list[dict]:
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


def embedded_run(tmp_path_factory, *args) -> pathlib.Path:
    """Run a job on the embedded cluster (the reference for fault tests); return its output folder."""
    out = tmp_path_factory.mktemp("reference")
    proc = mnistdist(*args, "--out", out, "--workers", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out
