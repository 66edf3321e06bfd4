"""Jobs on clusters started elsewhere: scheduler files, clusters deployed from a spec,
schedulers without workers, package versions that differ, memory that cannot fit.

Every cluster here is real `dask scheduler` and `dask worker` processes on loopback.
"""

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import yaml

from mnistdist.outputs import staging_path

from helpers import (
    SLOW_TASKS,
    assert_one_line_error,
    csv_rows,
    embedded_run,
    journal_rows,
    make_idx_folder,
    mnistdist,
    process_env,
    sitecustomize,
    wait_for,
)


@pytest.fixture(scope="module")
def embedded_search(tmp_path_factory):
    """The reference: the same search on the embedded cluster."""
    out = embedded_run(tmp_path_factory, "search", "--dataset", "digits")
    return csv_rows(out / "cv_results.csv")


class DaskProcesses:
    """`dask scheduler` and `dask worker` processes on loopback, each in a session of its own."""

    def __init__(self, folder: pathlib.Path):
        self.folder, self.procs = folder, []
        self.scheduler_file = folder / "scheduler.json"

    def _spawn(self, args: list, name: str, env: dict | None = None, python=None):
        dask = [str(python or sys.executable), "-m", "distributed.cli." + args[0]]
        with open(self.folder / f"{name}.log", "w") as log:
            proc = subprocess.Popen(
                [*dask, *args[1:]],
                env=process_env(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def scheduler(self) -> str:
        self._spawn(
            [
                "dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(self.scheduler_file),
            ],
            "scheduler",
        )
        wait_for(lambda: self.scheduler_file.exists() and self.scheduler_file.stat().st_size)
        wait_for(lambda: "address" in self.scheduler_file.read_text(), timeout=10)
        return json.loads(self.scheduler_file.read_text())["address"]

    def worker(self, name: str, *extra: str, env: dict | None = None, python=None):
        return self._spawn(
            [
                "dask_worker",
                "--scheduler-file",
                str(self.scheduler_file),
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--name",
                name,
                *extra,
            ],
            name,
            env,
            python,
        )

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(scheduler_file=str(self.scheduler_file), timeout=30) as client:
            client.wait_for_workers(n, timeout=120)

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
            for proc in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            for proc in self.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=grace)


@pytest.fixture
def dask_processes(tmp_path):
    folder = tmp_path / "dask"
    folder.mkdir()
    processes = DaskProcesses(folder)
    yield processes
    processes.stop()


def _search(out, *args, env=None, timeout=300):
    return mnistdist(
        "search", "--dataset", "digits", "--out", out, "--quiet", *args, env=env, timeout=timeout
    )


def test_a_scheduler_file_written_by_dask_scheduler(dask_processes, tmp_path, embedded_search):
    dask_processes.scheduler()
    dask_processes.worker("w1")
    dask_processes.worker("w2")
    dask_processes.wait_for_workers(2)
    proc = _search(tmp_path / "out", "--scheduler-file", dask_processes.scheduler_file)
    assert proc.returncode == 0, proc.stderr
    address = json.loads(dask_processes.scheduler_file.read_text())["address"]
    assert f"cluster: {address} with 2 workers" in proc.stdout
    assert csv_rows(tmp_path / "out" / "cv_results.csv") == embedded_search
    summary = json.loads((tmp_path / "out" / "search.json").read_text())["cluster"]
    # Each worker's measured peak memory beside the estimate the run was checked with.
    estimates, peaks = summary["peak_memory_estimate_bytes"], summary["peak_memory_bytes"]
    assert set(estimates) == set(peaks) and len(peaks) == 2
    assert all(estimates[w] > 0 and peaks[w] > 0 for w in peaks)


@pytest.mark.parametrize(
    "args, text",
    [
        (["--scheduler-file", "no-such-file.json"], "does not exist"),
        (["--scheduler-file", "."], "is a folder"),
        (["--scheduler", "tcp://127.0.0.1:1", "--scheduler-file", "x"], "not allowed with"),
        (["--cluster", "no-such-spec"], "no such file, dask.config key or shipped spec"),
        (["--cluster", "no-such-spec.yaml"], "no such file"),
    ],
)
def test_where_to_run_is_checked_before_anything_starts(tmp_path, args, text):
    t = time.monotonic()
    proc = _search(tmp_path / "out", *args, timeout=60)
    assert_one_line_error(proc, 2, text)
    assert not (tmp_path / "out").exists() and time.monotonic() - t < 30


def test_a_scheduler_without_workers_ends_in_one_line(dask_processes, tmp_path):
    address = dask_processes.scheduler()
    t = time.monotonic()
    proc = _search(
        tmp_path / "out",
        "--scheduler",
        address,
        env={"DASK_MNISTDIST__NO_WORKERS_TIMEOUT": "3s"},
        timeout=120,
    )
    assert_one_line_error(proc, 1, f"the Dask scheduler at {address} has 0 of the 1 workers")
    assert "mnistdist.no-workers-timeout" in proc.stderr
    assert time.monotonic() - t < 60


def test_losing_every_worker_ends_in_one_line_keeping_the_work(dask_processes, tmp_path):
    address = dask_processes.scheduler()
    slow = {**sitecustomize(tmp_path / "slow", SLOW_TASKS), "MNISTDIST_TEST_TASK_DELAY": "0.2"}
    worker = dask_processes.worker("only", "--no-nanny", env=slow)
    dask_processes.wait_for_workers(1)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mnistdist", "search", "--dataset", "digits", "--cv", "10"]
    job = subprocess.Popen(
        [*cmd, "--scheduler", address, "--out", str(out), "--quiet", "--resume"],
        env=process_env({"DASK_MNISTDIST__NO_WORKERS_TIMEOUT": "4s"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: journal_rows(staging_path(out)) >= 1, timeout=120)
    os.killpg(worker.pid, signal.SIGKILL)
    t = time.monotonic()
    stdout, stderr = job.communicate(timeout=120)
    proc = subprocess.CompletedProcess(job.args, job.returncode, stdout, stderr)
    assert_one_line_error(proc, 1, f"the Dask scheduler at {address} has had no workers for")
    assert "--resume" in stderr and time.monotonic() - t < 60
    assert journal_rows(staging_path(out)) >= 1  # the finished work is kept


def _spec(tmp_path, **spec) -> pathlib.Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_cluster_from_a_spec_is_started_used_and_closed(tmp_path, embedded_search):
    """A spec naming Distributed's own LocalCluster: the same path as a Slurm or Kubernetes
    one (start, scale, wait for the workers, check them, close), on any machine."""
    spec = _spec(
        tmp_path,
        **{
            "class": "distributed.LocalCluster",
            "kwargs": {
                "n_workers": 0,
                "threads_per_worker": 1,
                "dashboard_address": "127.0.0.1:0",
                "host": "127.0.0.1",
            },
            "scale": 2,
            "timeout": "60s",
        },
    )
    proc = _search(tmp_path / "out", "--cluster", spec)
    assert proc.returncode == 0, proc.stderr
    assert f"cluster: started distributed.LocalCluster from {spec} (scale 2)" in proc.stdout
    assert "with 2 workers" in proc.stdout
    assert csv_rows(tmp_path / "out" / "cv_results.csv") == embedded_search


#: A deployer whose workers never come (a batch queue that never starts the jobs), which
#: says when it is closed.
NO_WORKERS = """
import os, pathlib
from distributed import LocalCluster

class NoWorkers(LocalCluster):
    def scale(self, n=0, **kwargs):  # close() scales to 0 too
        with open(pathlib.Path(os.environ["MNISTDIST_TEST_MARKS"], "scaled"), "a") as f:
            f.write(f"{n}\\n")

    def close(self, *args, **kwargs):
        pathlib.Path(os.environ["MNISTDIST_TEST_MARKS"], "closed").write_text("")
        return super().close(*args, **kwargs)
"""


@pytest.fixture
def no_workers(tmp_path):
    """A spec of NoWorkers, and the folder of its marks."""
    (tmp_path / "deployer").mkdir()
    (tmp_path / "deployer" / "testdeployer.py").write_text(NO_WORKERS)
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = _spec(
        tmp_path,
        **{
            "class": "testdeployer.NoWorkers",
            "kwargs": {"n_workers": 0, "dashboard_address": "127.0.0.1:0", "host": "127.0.0.1"},
            "scale": 2,
            "timeout": "3s",
        },
    )
    env = {"PYTHONPATH": str(tmp_path / "deployer"), "MNISTDIST_TEST_MARKS": str(marks)}
    return spec, marks, env


def test_a_cluster_whose_workers_do_not_come_ends_in_one_line(tmp_path, no_workers):
    spec, marks, env = no_workers
    proc = _search(tmp_path / "out", "--cluster", spec, env=env, timeout=120)
    assert_one_line_error(proc, 1, "has 0 of the 2 workers wanted after 3 s")
    assert (marks / "scaled").read_text().split()[0] == "2" and (marks / "closed").exists()


def test_ctrl_c_while_waiting_for_the_workers_closes_the_cluster(tmp_path, no_workers):
    spec, marks, env = no_workers
    spec.write_text(spec.read_text().replace("timeout: 3s", "timeout: 120s"))  # Ctrl-C first
    cmd = [sys.executable, "-m", "mnistdist", "search", "--dataset", "digits", "--quiet"]
    job = subprocess.Popen(
        [*cmd, "--out", str(tmp_path / "out"), "--cluster", str(spec)],
        env=process_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # As a terminal's foreground job has it, even where the tests run in the background.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_for(lambda: (marks / "scaled").exists(), timeout=120)
    time.sleep(0.5)
    os.killpg(job.pid, signal.SIGINT)  # as a terminal sends it
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert (marks / "closed").exists()


def test_a_spec_whose_deployer_is_missing_names_the_extra(tmp_path):
    try:
        import dask_gateway  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("dask-gateway is installed here: the missing-deployer line cannot show")
    proc = _search(tmp_path / "out", "--cluster", "gateway", timeout=60)
    assert_one_line_error(proc, 2, "pip install 'mnistdist[gateway]'")
    assert "dask_gateway" in proc.stderr


def test_a_run_that_cannot_fit_a_worker_is_refused_with_the_numbers(dask_processes, tmp_path):
    make_idx_folder(tmp_path / "mnist", n_train=20000, n_test=10)
    dask_processes.scheduler()
    dask_processes.worker("small", "--memory-limit", "400MiB")
    dask_processes.wait_for_workers(1)
    proc = mnistdist(
        "search",
        "--data",
        tmp_path / "mnist",
        "--out",
        tmp_path / "out",
        "--scheduler-file",
        dask_processes.scheduler_file,
        "--quiet",
        timeout=120,
    )
    assert_one_line_error(proc, 2, "the run needs about")
    assert "20000 training rows x 784 features" in proc.stderr
    assert "has a memory limit of 400.00 MiB" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def other_sklearn(tmp_path_factory):
    """A folder holding another scikit-learn than this one, for a worker's PYTHONPATH."""
    from importlib.metadata import version

    mine = version("scikit-learn")
    folder = tmp_path_factory.mktemp("other-sklearn")
    for other in ("1.8.0", "1.9.0", "1.7.2"):
        if other == mine:
            continue
        install = ["install", "--quiet", "--no-deps", "--target", str(folder)]
        pip = subprocess.run(
            [sys.executable, "-m", "pip", *install, f"scikit-learn=={other}"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if pip.returncode == 0:
            return folder, mine, other
    pytest.skip(f"no scikit-learn other than {mine} could be installed: {pip.stderr[-300:]}")


def test_a_worker_with_another_scikit_learn_stops_the_job_before_work(
    dask_processes, tmp_path, other_sklearn
):
    from distributed import Client

    folder, mine, other = other_sklearn
    dask_processes.scheduler()
    dask_processes.worker("same")
    dask_processes.worker("other", env={"PYTHONPATH": str(folder)})
    dask_processes.wait_for_workers(2)
    with Client(scheduler_file=str(dask_processes.scheduler_file)) as client:
        seen = client.run(lambda: __import__("sklearn").__version__)
        assert sorted(seen.values()) == sorted([mine, other])  # it really runs the other one
        (odd,) = [addr for addr, v in seen.items() if v == other]
        proc = _search(tmp_path / "out", "--scheduler-file", dask_processes.scheduler_file)
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert_one_line_error(proc, 2, "package versions differ between the client and the cluster")
    assert f"scikit-learn (client {mine}; worker {odd} {other})" in proc.stderr
    assert set(executed.values()) == {0}  # before any work
    assert not (tmp_path / "out").exists()
