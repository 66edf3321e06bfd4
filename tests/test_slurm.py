"""`mnistdist --cluster` on a real single-node Slurm (cluster/slurm/up.sh), through
dask-jobqueue's SLURMCluster and the shipped spec: the workers are Slurm jobs, the scores
are the embedded cluster's, and no job is left in the queue, after a Ctrl-C either.

The fixture brings Slurm up with cluster/slurm/up.sh (root, Debian's slurm-wlm and munge);
the tests skip, saying why, only where that cannot be done or dask-jobqueue is missing.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from mnistdist.outputs import staging_path
from mnistdist.runtime import shipped_specs

from helpers import (
    REPO,
    SLOW_TASKS,
    csv_rows,
    embedded_run,
    journal_rows,
    process_env,
    sitecustomize,
    wait_for,
)

UP = REPO / "cluster" / "slurm" / "up.sh"


@pytest.fixture(scope="module")
def slurm():
    """A Slurm that answers, brought up by cluster/slurm/up.sh if need be."""
    pytest.importorskip(
        "dask_jobqueue", reason="dask-jobqueue is not installed: pip install 'mnistdist[slurm]'"
    )
    if os.geteuid() != 0:
        pytest.skip("bringing Slurm up needs root (apt-get, munged, slurmd)")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        pytest.skip("no Slurm and no apt-get to install it (Debian's slurm-wlm)")
    up = subprocess.run(["bash", str(UP)], capture_output=True, text=True, timeout=900)
    if up.returncode != 0:
        last = (up.stderr.strip().splitlines() or ["(no output)"])[-1]
        pytest.skip(f"cluster/slurm/up.sh could not bring Slurm up: {last}")
    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True).stdout
    if int(cpus.split()[0]) < 2:
        pytest.skip(f"the Slurm node has {cpus.strip()} CPU: the tests run two 1-CPU workers")
    return True


@pytest.fixture(scope="module")
def embedded_search(tmp_path_factory):
    out = embedded_run(tmp_path_factory, "search", "--dataset", "digits")
    return csv_rows(out / "cv_results.csv")


def _queue(name: str) -> dict[str, str]:
    """Slurm's jobs of that name: their ids and states."""
    out = subprocess.run(
        ["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True, timeout=30
    ).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def _spec(tmp_path, name: str) -> str:
    """The shipped Slurm spec, as a user edits it for this host: loopback, small jobs."""
    spec = yaml.safe_load(shipped_specs()["slurm"])
    spec["kwargs"].update(
        queue="debug",
        memory="2GiB",
        walltime="00:15:00",
        job_name=name,
        scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
        worker_extra_args=["--host", "127.0.0.1"],
        log_directory=str(tmp_path / "slurm-logs"),
        local_directory=str(tmp_path / "worker-space"),
    )
    spec["timeout"] = "180s"
    path = tmp_path / "slurm.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


class Job:
    """`mnistdist search --cluster SPEC` in a session of its own, its output read as it comes."""

    def __init__(self, tmp_path, spec: str, env: dict | None = None):
        self.out = tmp_path / "out"
        cmd = [sys.executable, "-m", "mnistdist", "search", "--dataset", "digits", "--quiet"]
        self.proc = subprocess.Popen(
            [*cmd, "--cv", "5", "--out", str(self.out), "--cluster", spec, "--resume"],
            env=process_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
            # SIGINT as a terminal's foreground job has it, even where the tests run in the
            # background (which ignores it).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def interrupt(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)  # Ctrl-C, to the whole process group

    def finish(self, timeout: float = 300):
        try:
            stderr = self.proc.stderr.read() if self.proc.wait(timeout=timeout) is not None else ""
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            pytest.fail(f"the job did not end within {timeout} s:\n{''.join(self.lines)}")
        self._reader.join(timeout=10)
        return self.proc.returncode, "".join(self.lines), stderr


def _queue_empties(name: str) -> None:
    wait_for(lambda: not _queue(name), timeout=60)


def test_search_on_slurm_equals_the_embedded_cluster(slurm, tmp_path, embedded_search):
    name = f"mnistdist-test-{os.getpid()}"
    job = Job(tmp_path, _spec(tmp_path, name))
    seen: dict[str, set] = {}
    while job.proc.poll() is None:  # the workers are Slurm jobs while the search runs
        for job_id, state in _queue(name).items():
            seen.setdefault(job_id, set()).add(state)
        time.sleep(0.5)
    code, stdout, stderr = job.finish()
    assert code == 0, stderr
    assert "cluster: started dask_jobqueue.SLURMCluster" in stdout and "with 2 workers" in stdout
    assert len([i for i, states in seen.items() if "RUNNING" in states]) == 2, seen
    assert csv_rows(job.out / "cv_results.csv") == embedded_search
    _queue_empties(name)
    for job_id in seen:  # each was scancelled by the job's close, not left to its walltime
        shown = subprocess.run(
            ["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30
        ).stdout
        assert "JobState=CANCELLED" in shown or "JobState=COMPLETED" in shown, shown


@pytest.mark.parametrize("moment", ["waiting for workers", "mid-search", "during close"])
def test_ctrl_c_leaves_no_job_in_the_queue(slurm, tmp_path, moment):
    name = f"mnistdist-test-{os.getpid()}-{moment.split()[0]}"
    slow = sitecustomize(tmp_path / "slow", SLOW_TASKS)  # the workers inherit the job's env
    job = Job(tmp_path, _spec(tmp_path, name), env={**slow, "MNISTDIST_TEST_TASK_DELAY": "0.2"})
    if moment == "waiting for workers":
        wait_for(lambda: job.said("cluster: started"), timeout=120)
        wait_for(lambda: _queue(name), timeout=60)  # submitted, not all joined yet
        assert not job.said("with 2 workers")
    elif moment == "mid-search":
        wait_for(lambda: journal_rows(staging_path(job.out)) >= 1, timeout=240)
    else:
        wait_for(lambda: job.said("cluster: closing"), timeout=300)
    job.interrupt()
    code, _, stderr = job.finish()
    assert "Traceback" not in stderr, stderr
    if moment == "during close":  # the close is not cut short; the finished job is kept
        assert code in (0, 130), stderr
    else:
        assert code == 130 and "interrupted" in stderr, stderr
    _queue_empties(name)
