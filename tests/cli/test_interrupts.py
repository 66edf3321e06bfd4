"""Ctrl-C as a terminal sends it (SIGINT to the whole process group) at every moment of a job.

Each time: one line on stderr, exit 130, no traceback from any process, the
previous results untouched, and ``--resume`` finishing the run.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from mnistdist.outputs import lock_path, staging_path

from helpers import process_env, sitecustomize, wait_for

# Neighbour tasks slowed down, so the search lasts long enough to be interrupted in the
# middle: patched as mnistdist.neighbors._chain is first imported, wherever the tasks run (the job's
# own worker threads, or worker processes), so the job starts as it does for a user.
SLOW = """
import importlib.abc, importlib.machinery, sys, time

class _SlowNeighbors(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "mnistdist.neighbors._chain":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            step = module.search_step

            def search_step(*args, **kwargs):
                time.sleep(0.3)
                return step(*args, **kwargs)

            module.search_step = search_step

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _SlowNeighbors())
"""

ARGS = ["report", "--dataset", "digits", "--cv", "5", "--workers", "2", "--quiet"]


class Job:
    """The job in a session of its own, as a terminal's foreground group; its stdout followed."""

    def __init__(self, out, env, *extra):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mnistdist", *ARGS, "--out", str(out), *extra],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            # A test run in the background ignores SIGINT, and children inherit that;
            # a terminal's job has the default.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines, self.errors = [], []
        self.readers = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((self.proc.stdout, self.lines), (self.proc.stderr, self.errors))
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, into):
        for line in stream:
            into.append(line)

    def printed(self, text):
        return any(text in line for line in self.lines)

    def ctrl_c(self, whole_group=True):
        """Send the Ctrl-C; return the job's stderr once it has exited (killed after 60 s)."""
        if whole_group:
            os.killpg(self.proc.pid, signal.SIGINT)
        else:
            os.kill(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            raise AssertionError("no exit 60 s after the Ctrl-C: " + "".join(self.errors)) from None
        for reader in self.readers:
            reader.join(timeout=10)
        return "".join(self.errors)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def env(tmp_path):
    return process_env(sitecustomize(tmp_path / "slow", SLOW))


MOMENTS = {
    "import": lambda job, out: time.sleep(0.2) or True,
    "cluster-start": lambda job, out: staging_path(out).exists() and not job.printed("cluster:"),
    "search": lambda job, out: (
        (staging_path(out) / "journal.sqlite").exists() and not job.printed("search: best")
    ),
    "refit": lambda job, out: job.printed("search: best") and not job.printed("plain:"),
    "writing": lambda job, out: job.printed("augmented: test accuracy"),
}


@pytest.mark.parametrize(
    "moment, whole_group, preset",
    [(moment, True, []) for moment in MOMENTS]
    + [("search", False, [])]
    # The book's models fitted in the background while the search runs in the foreground.
    + [("search", True, ["--preset", "best"])],
    ids=[*MOMENTS, "search-job-pid-only", "search-beside-background-models"],
)
def test_ctrl_c_at_any_moment(tmp_path, env, moment, whole_group, preset):
    out = tmp_path / "results"
    out.mkdir()
    (out / "metrics.json").write_text('{"previous": true}')
    before = _snapshot(out)
    job = Job(out, env, "--overwrite", *preset)
    wait_for(lambda: MOMENTS[moment](job, out), timeout=120, interval=0.01)
    stderr = job.ctrl_c(whole_group)
    assert job.proc.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0], stderr
    assert "Traceback" not in stderr
    assert _snapshot(out) == before  # the previous results, whole
    assert not lock_path(out).exists()  # the folder's lock released with the run
    kept = staging_path(out).exists()
    assert kept == ("--resume" in lines[0])  # a staging folder only where work was saved

    resumed = subprocess.run(
        [sys.executable, "-m", "mnistdist", *ARGS, *preset, "--out", str(out), "--resume"],
        env=process_env(),  # at full speed: the interrupt is over
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr == ""
    assert "previous" not in json.loads((out / "metrics.json").read_text())
    assert (out / "model.joblib").exists() and not staging_path(out).exists()
