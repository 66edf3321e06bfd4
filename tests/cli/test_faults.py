"""Faults on a real process cluster: workers SIGKILLed mid-job, the scheduler lost mid-job."""

import os
import signal
import subprocess
import sys

import pytest
from distributed import Client

from mnistdist.outputs import staging_path

from helpers import (
    SLOW_TASKS,
    assert_one_line_error,
    csv_rows,
    embedded_run,
    journal_rows,
    mnistdist,
    process_env,
    sitecustomize,
    wait_for,
)


@pytest.fixture(scope="module")
def reference_report(tmp_path_factory):
    return embedded_run(tmp_path_factory, "report", "--dataset", "digits")


def _start(args, out):
    cmd = [sys.executable, "-m", "mnistdist", *map(str, args), "--out", str(out), "--quiet"]
    return subprocess.Popen(
        cmd, env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _running(client, prefix):
    """Whether the scheduler has tasks whose key starts with ``prefix`` being processed."""

    def probe(dask_scheduler):
        return any(
            str(ts.key).startswith(f"('{prefix}") and ts.state == "processing"
            for ts in dask_scheduler.tasks.values()
        )

    return client.run_on_scheduler(probe)


def _kill_one_worker(client):
    """SIGKILL the worker process (not its nanny) of one of the workers; return its pid."""
    pids = client.run(os.getpid)
    pid = pids[sorted(pids)[0]]
    os.kill(pid, signal.SIGKILL)
    return pid


@pytest.mark.parametrize("phase", ["distances-folds", "neighbors-augmented"])
def test_worker_killed_mid_job_changes_nothing(start_cluster, tmp_path, reference_report, phase):
    # Neighbour tasks of 0.2 s: each phase lasts long enough to be caught running.
    slow = {**sitecustomize(tmp_path / "slow", SLOW_TASKS), "MNISTDIST_TEST_TASK_DELAY": "0.2"}
    cluster = start_cluster(2, worker_env=slow)
    out = tmp_path / "out"
    with Client(cluster.address) as client:
        job = _start(["report", "--dataset", "digits", "--scheduler", cluster.address], out)
        wait_for(lambda: _running(client, phase), timeout=120)
        killed = _kill_one_worker(client)
        _stdout, stderr = job.communicate(timeout=300)
        assert job.returncode == 0, stderr
        client.wait_for_workers(2, timeout=60)
        assert (
            killed not in client.run(os.getpid).values()
        )  # the nanny started a new worker process
    assert csv_rows(out / "cv_results.csv") == csv_rows(reference_report / "cv_results.csv")
    assert csv_rows(out / "predictions.csv") == csv_rows(reference_report / "predictions.csv")


def test_scheduler_lost_mid_job_keeps_finished_work(start_cluster, tmp_path, reference_report):
    slow = sitecustomize(tmp_path / "slow", SLOW_TASKS)
    first = start_cluster(2, worker_env=slow)
    out = tmp_path / "out"
    job = _start(
        ["search", "--dataset", "digits", "--cv", "10", "--scheduler", first.address, "--resume"],
        out,
    )
    wait_for(lambda: journal_rows(staging_path(out)) >= 2, timeout=120)
    with Client(first.address) as client:
        scheduler_pid = client.run_on_scheduler(os.getpid)
    os.kill(scheduler_pid, signal.SIGKILL)
    stdout, stderr = job.communicate(timeout=120)
    assert_one_line_error(
        subprocess.CompletedProcess(job.args, job.returncode, stdout, stderr),
        1,
        "lost the connection to the Dask scheduler",
    )
    assert "--resume" in stderr
    saved = journal_rows(staging_path(out))
    assert saved >= 2

    second = start_cluster(2)  # the cluster is back (at a new address)
    resumed = mnistdist(
        "search",
        "--dataset",
        "digits",
        "--cv",
        "10",
        "--out",
        out,
        "--scheduler",
        second.address,
        "--resume",
        "--quiet",
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resume: {saved} finished neighbor searches read from" in resumed.stdout
