"""Jobs against real `dask scheduler` and `dask worker` processes started by cluster/*.sh."""

import shutil
import subprocess
import threading
import time
import urllib.request

import pytest
from distributed import Client

from mnistdist.errors import ClusterError
from mnistdist.runtime import connect

from helpers import (
    CLUSTER_DIR,
    assert_one_line_error,
    csv_rows,
    embedded_run,
    free_port,
    make_idx_folder,
    mnistdist,
    process_env,
    sitecustomize,
)


@pytest.fixture(scope="module")
def embedded_search(tmp_path_factory):
    """The reference: the same search on the embedded LocalCluster."""
    return csv_rows(
        embedded_run(tmp_path_factory, "search", "--dataset", "digits") / "cv_results.csv"
    )


def test_search_on_process_cluster_equals_embedded(start_cluster, tmp_path, embedded_search):
    cluster = start_cluster(2)
    with Client(cluster.address) as client:
        client.get_task_stream()  # starts the scheduler's task-stream recording
        t0 = time.time()
        statuses, stop = [], threading.Event()

        def poll():
            while not stop.is_set():
                try:
                    statuses.append(
                        urllib.request.urlopen(f"{cluster.dashboard}/status", timeout=5).status
                    )
                except OSError:
                    statuses.append(None)
                time.sleep(0.3)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        proc = mnistdist(
            "search",
            "--dataset",
            "digits",
            "--out",
            tmp_path,
            "--scheduler",
            cluster.address,
            "--quiet",
        )
        stop.set()
        poller.join()
        assert proc.returncode == 0, proc.stderr
        # Ask the scheduler which workers ran the job's tasks.
        workers = {t["worker"] for t in client.get_task_stream(start=t0)}
    assert len(workers) == 2
    assert statuses and all(s == 200 for s in statuses)
    assert (
        f"cluster: {cluster.address} with 2 workers" in proc.stdout
        and "dashboard: http" in proc.stdout
    )
    assert csv_rows(tmp_path / "cv_results.csv") == embedded_search


def test_up_and_down_scripts(tmp_path):
    run = tmp_path / "run"
    port = free_port()
    env = process_env(
        {
            "MNISTDIST_CLUSTER_RUN": str(run),
            "MNISTDIST_SCHEDULER_PORT": str(port),
            "MNISTDIST_DASHBOARD_ADDRESS": f"127.0.0.1:{free_port()}",
        }
    )
    up = subprocess.run(
        [str(CLUSTER_DIR / "up.sh"), "2"], env=env, capture_output=True, text=True, timeout=120
    )
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert f"scheduler: tcp://127.0.0.1:{port}" in up.stdout
        pids = [int(p.read_text()) for p in sorted(run.glob("*.pid"))]
        assert len(pids) == 3 and all(
            (run / f"{n}.log").exists() for n in ("scheduler", "worker-1", "worker-2")
        )
        again = subprocess.run(
            [str(CLUSTER_DIR / "up.sh"), "2"], env=env, capture_output=True, text=True, timeout=60
        )
        assert again.returncode == 1 and "already running" in again.stderr
        proc = mnistdist(
            "search",
            "--dataset",
            "digits",
            "--train-size",
            "400",
            "--cv",
            "3",
            "--out",
            tmp_path / "out",
            "--quiet",
            env={"DASK_SCHEDULER_ADDRESS": f"tcp://127.0.0.1:{port}"},
        )
        assert proc.returncode == 0, proc.stderr
    finally:
        down = subprocess.run(
            [str(CLUSTER_DIR / "down.sh")], env=env, capture_output=True, text=True, timeout=60
        )
    assert down.returncode == 0 and not list(run.glob("*.pid"))
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            __import__("os").kill(pid, 0)


HIDE_MNISTDIST = """
import importlib.abc, importlib.machinery, sys

class HideInstalledMnistdist(importlib.abc.MetaPathFinder):
    # Only code shipped as a zip may be imported: these workers 'lack' mnistdist.
    def find_spec(self, name, path=None, target=None):
        if name != "mnistdist" and not name.startswith("mnistdist."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and ".zip" in (spec.origin or ""):
            return spec
        raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, HideInstalledMnistdist())
"""


def test_workers_without_mnistdist_get_its_code_shipped(start_cluster, tmp_path, embedded_search):
    env = sitecustomize(tmp_path / "site", HIDE_MNISTDIST)
    cluster = start_cluster(2, worker_env=env)
    with Client(cluster.address) as client:

        def importable():
            import importlib.util

            try:
                return importlib.util.find_spec("mnistdist") is not None
            except ImportError:
                return False

        assert not any(client.run(importable).values())
    proc = mnistdist(
        "search",
        "--dataset",
        "digits",
        "--out",
        tmp_path / "out",
        "--scheduler",
        cluster.address,
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert "shipped mnistdist's code to 2 workers that do not have it installed" in proc.stdout
    assert csv_rows(tmp_path / "out" / "cv_results.csv") == embedded_search


def test_mismatched_versions_are_refused(start_cluster, tmp_path):
    env = sitecustomize(
        tmp_path / "site",
        "import importlib.metadata as md\n"
        "_real = md.version\n"
        "md.version = lambda name: '0.0.1' if name == 'scikit-learn' else _real(name)\n",
    )
    cluster = start_cluster(1, worker_env=env)
    proc = mnistdist(
        "search", "--dataset", "digits", "--out", tmp_path / "out", "--scheduler", cluster.address
    )
    assert_one_line_error(
        proc, 2, "package versions differ between the client and the cluster: scikit-learn (client "
    )
    assert "0.0.1" in proc.stderr and "worker tcp://127.0.0.1:" in proc.stderr


def test_data_is_sent_once_when_workers_cannot_read_it(start_cluster, tmp_path):
    folder = tmp_path / "mnist"
    make_idx_folder(folder, n_train=200, n_test=30)
    hide = f"""
import builtins, os
HIDDEN = {str(folder.resolve())!r}
def _check(path):
    if str(path).startswith(HIDDEN):
        raise FileNotFoundError(2, "not mounted on this worker", str(path))
for name in ("stat", "open"):
    real = getattr(os, name)
    setattr(os, name, lambda p, *a, _real=real, **k: (_check(p), _real(p, *a, **k))[1])
_open = builtins.open
builtins.open = lambda p, *a, **k: (_check(p), _open(p, *a, **k))[1]
"""
    cluster = start_cluster(2, worker_env=sitecustomize(tmp_path / "site", hide))
    proc = mnistdist(
        "search",
        "--data",
        folder,
        "--cv",
        "3",
        "--n-neighbors",
        "1",
        "3",
        "--out",
        tmp_path / "out",
        "--scheduler",
        cluster.address,
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "2 workers cannot read" in proc.stdout
        and "sending the images from the client once" in proc.stdout
    )
    reference = mnistdist(
        "search",
        "--data",
        folder,
        "--cv",
        "3",
        "--n-neighbors",
        "1",
        "3",
        "--out",
        tmp_path / "ref",
        "--workers",
        "2",
        "--quiet",
    )
    assert reference.returncode == 0
    assert csv_rows(tmp_path / "out" / "cv_results.csv") == csv_rows(
        tmp_path / "ref" / "cv_results.csv"
    )


def _make_certs(folder):
    folder.mkdir()

    def ssl(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=mnistdist test CA",
    )
    ssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (folder / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    ssl(
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    )
    return {
        "MNISTDIST_TLS_CA_FILE": str(folder / "ca.pem"),
        "MNISTDIST_TLS_CERT": str(folder / "cert.pem"),
        "MNISTDIST_TLS_KEY": str(folder / "key.pem"),
    }


@pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl is needed to make throwaway certificates"
)
def test_tls_cluster_runs_jobs_and_refuses_plain_tcp(start_cluster, tmp_path, monkeypatch):
    tls_env = _make_certs(tmp_path / "certs")
    cluster = start_cluster(2, env=tls_env, tls=True)
    assert cluster.address.startswith("tls://")
    proc = mnistdist(
        "search",
        "--dataset",
        "digits",
        "--train-size",
        "400",
        "--cv",
        "3",
        "--out",
        tmp_path / "out",
        "--scheduler",
        cluster.address,
        "--quiet",
        env=tls_env,
    )
    assert proc.returncode == 0, proc.stderr
    # A plain TCP client is refused.
    plain = cluster.address.replace("tls://", "tcp://")
    for name in tls_env:
        monkeypatch.delenv(name, raising=False)
    with (
        pytest.raises(ClusterError, match="could not reach the Dask scheduler"),
        connect(plain, timeout="3s"),
    ):
        pass
    proc = mnistdist(
        "search",
        "--dataset",
        "digits",
        "--out",
        tmp_path / "out2",
        "--scheduler",
        plain,
        env={"DASK_MNISTDIST__CONNECT_TIMEOUT": "3s"},
        timeout=60,
    )
    assert_one_line_error(proc, 1, "could not reach the Dask scheduler")


def test_cluster_workers_get_one_blas_thread_and_the_yamls_saturation(start_cluster, monkeypatch):
    """Distributed's nanny gives each worker process one BLAS thread (its
    distributed.nanny.pre-spawn-environ, not repeated in cluster/dask.yaml); the scheduler
    takes cluster/dask.yaml's worker-saturation."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)  # a variable in the environment would win
    cluster = start_cluster(1)

    def blas(dask_worker=None):
        import os

        from threadpoolctl import threadpool_info

        return os.environ["OPENBLAS_NUM_THREADS"], [p["num_threads"] for p in threadpool_info()]

    with Client(cluster.address) as client:
        ((variable, threads),) = client.run(blas).values()
        saturation = client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.WORKER_SATURATION
        )
    assert variable == "1" and threads and set(threads) == {1}
    assert saturation == float("inf")  # cluster/dask.yaml's distributed.scheduler.worker-saturation
