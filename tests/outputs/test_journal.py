"""The journal, and jobs interrupted (SIGINT, SIGKILL) then resumed from it."""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from mnistdist.outputs import Journal, staging_path

from helpers import (
    SLOW_TASKS,
    csv_rows,
    embedded_run,
    journal_rows,
    mnistdist,
    process_env,
    sitecustomize,
    wait_for,
)

CV = 10  # ten fold searches: room to stop in the middle


def test_round_trip_and_durability(tmp_path):
    dist, ids = np.random.default_rng(0).random((5, 3)), np.arange(15).reshape(5, 3)
    with Journal(tmp_path / "j.sqlite") as journal:
        assert journal.get("a") is None and len(journal) == 0
        assert not (tmp_path / "j.sqlite").exists()  # nothing finished, nothing left behind
        journal.put("a", dist, ids, label="fold 0")
    with Journal(tmp_path / "j.sqlite") as again:  # a new process would see the same
        d, i = again.get("a")
        np.testing.assert_array_equal(d, dist)
        np.testing.assert_array_equal(i, ids)
        assert len(again) == 1 and again.loaded == 1


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return csv_rows(
        embedded_run(tmp_path_factory, "search", "--dataset", "digits", "--cv", CV)
        / "cv_results.csv"
    )


@pytest.fixture
def slow_cluster(start_cluster, tmp_path):
    # 1 s per neighbor task: the last eight folds take seconds, time enough to interrupt
    # the job between them.
    return start_cluster(
        2,
        worker_env={
            **sitecustomize(tmp_path / "slow", SLOW_TASKS),
            "MNISTDIST_TEST_TASK_DELAY": "1.0",
        },
    )


def _start_search(out, cluster):
    args = [
        sys.executable,
        "-m",
        "mnistdist",
        "search",
        "--dataset",
        "digits",
        "--cv",
        str(CV),
        "--out",
        str(out),
        "--scheduler",
        cluster.address,
        "--quiet",
    ]
    # A test run started in the background (`cmd &`) ignores SIGINT, and children inherit that:
    # give the job SIGINT's default, as it has in a terminal, so Ctrl-C can be tested.
    return subprocess.Popen(
        args,
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_interrupted_search_resumes_without_recomputing(slow_cluster, tmp_path, reference, sig):
    out = tmp_path / "out"
    job = _start_search(out, slow_cluster)
    wait_for(lambda: journal_rows(staging_path(out)) >= 2)
    job.send_signal(sig)
    _, stderr = job.communicate(timeout=30)
    saved = journal_rows(staging_path(out))
    assert 2 <= saved < CV and not (out / "cv_results.csv").exists() and not out.exists()
    if sig == signal.SIGINT:
        assert job.returncode == 130 and "Traceback" not in stderr
        assert "interrupted; finished work is saved in" in stderr and "--resume" in stderr
    else:
        assert job.returncode == -signal.SIGKILL

    resumed = mnistdist(
        "search",
        "--dataset",
        "digits",
        "--cv",
        CV,
        "--out",
        out,
        "--scheduler",
        slow_cluster.address,
        "--resume",
        "--quiet",
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((out / "search.json").read_text())
    assert summary["n_neighbor_searches_loaded"] == saved
    assert summary["n_neighbor_searches_computed"] == CV - saved
    assert journal_rows(out) == CV
    assert csv_rows(out / "cv_results.csv") == reference
