"""cluster/*.sh as processes: workers' HTTP servers on loopback, down.sh signalling only what
up.sh started."""

import os
import signal
import subprocess

import psutil
from distributed import Client

from helpers import CLUSTER_DIR, free_port, process_env


def _listening(pid: int) -> set[str]:
    return {
        c.laddr.ip
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }


def test_every_socket_of_a_worker_listens_on_loopback(start_cluster):
    cluster = start_cluster(1)
    with Client(cluster.address) as client:
        (pid,) = client.run(os.getpid).values()
        (port,) = client.run(lambda dask_worker: dask_worker.http_server.port).values()
    nanny = psutil.Process(pid).parent().pid
    assert port > 0  # the worker's HTTP server runs, on a free port
    for process in (pid, nanny):
        addresses = _listening(process)
        assert addresses and addresses <= {"127.0.0.1"}, (process, addresses)


def test_down_leaves_alone_a_pid_that_is_no_longer_the_process_up_started(tmp_path):
    run = tmp_path / "run"
    env = process_env(
        {
            "MNISTDIST_CLUSTER_RUN": str(run),
            "MNISTDIST_SCHEDULER_PORT": str(free_port()),
            "MNISTDIST_DASHBOARD_ADDRESS": f"127.0.0.1:{free_port()}",
        }
    )
    up = subprocess.run(
        [str(CLUSTER_DIR / "up.sh"), "1"], env=env, capture_output=True, text=True, timeout=120
    )
    worker = int((run / "worker-1.pid").read_text())
    scheduler = int((run / "scheduler.pid").read_text())
    # The worker's pid, now another process's: as after a reboot or a crash, pids are reused.
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        assert up.returncode == 0, up.stderr
        assert (run / "worker-1.start").read_text().strip()
        (run / "worker-1.pid").write_text(f"{bystander.pid}\n")
        down = subprocess.run(
            [str(CLUSTER_DIR / "down.sh")], env=env, capture_output=True, text=True, timeout=60
        )
        assert down.returncode == 0, down.stderr
        assert f"worker-1 (pid {bystander.pid}) is gone or is no longer the process" in down.stderr
        assert bystander.poll() is None  # not signalled
        assert not psutil.pid_exists(scheduler) or psutil.Process(scheduler).status() == "zombie"
        assert not list(run.glob("*.pid")) and not list(run.glob("*.start"))
    finally:
        bystander.kill()
        bystander.wait()
        if psutil.pid_exists(worker):
            os.kill(worker, signal.SIGTERM)
            psutil.Process(worker).wait(timeout=30)
