"""``mnistdist search`` with grid files: several metrics, a random search, extending a finished
search with ``--resume``, and memory that does not grow with the candidates."""

import ast
import json
import subprocess
import sys

import scipy.stats
from sklearn.model_selection import ParameterSampler

from helpers import csv_rows, mnistdist, process_env, python_code

SMALL = """\
estimator:
  - deskew: Deskew
  - pca: {PCA: {n_components: 16, random_state: 0}}
  - knn: KNNClassifier
param_grid:
  pca__n_components: [8]
  knn__n_neighbors: [1, 3]
  knn__weights: [uniform]
"""
#: SMALL with more candidates: a PCA size (a new neighbour search) and a weight (the same).
LARGE = SMALL.replace("[8]", "[8, 16]").replace("[uniform]", "[uniform, distance]")

RANDOM = """\
description: a random search of a plain KNN
estimator: KNNClassifier
param_grid:
  n_neighbors: {randint: [1, 40]}
  weights: [uniform, distance]
"""

METRICS = "accuracy,balanced_accuracy,f1_macro"


def _search(out, *args, **kwargs):
    proc = mnistdist("search", "--dataset", "digits", "--out", out, "--quiet", *args, **kwargs)
    assert proc.returncode == 0, proc.stderr
    return proc


def _grid(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_several_metrics_name_their_columns_as_scikit_learn(tmp_path):
    grid = _grid(tmp_path, "large.yaml", LARGE)
    proc = _search(tmp_path / "out", "--grid", grid, "--scoring", METRICS, "--refit", "f1_macro")
    rows = csv_rows(tmp_path / "out" / "cv_results.csv")
    assert len(rows) == 8
    for metric in METRICS.split(","):
        assert {f"mean_test_{metric}", f"std_test_{metric}", f"rank_test_{metric}"} <= set(rows[0])
        assert {f"split{f}_test_{metric}" for f in range(5)} <= set(rows[0])
    assert "mean_test_score" not in rows[0]
    summary = json.loads((tmp_path / "out" / "search.json").read_text())
    assert summary["scoring"] == METRICS.split(",") and summary["refit"] == "f1_macro"
    assert rows[summary["best_index"]]["rank_test_f1_macro"] == "1"
    assert "with mean CV f1_macro" in proc.stdout
    starred = [line for line in proc.stdout.splitlines() if line.startswith("* ")]
    assert len(starred) == 1 and "balanced_accuracy" in starred[0]


def _without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if "time" not in k} for row in rows]


def test_resume_extends_a_finished_search_to_equal_a_fresh_one(tmp_path):
    small, large = _grid(tmp_path, "small.yaml", SMALL), _grid(tmp_path, "large.yaml", LARGE)
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    _search(out, "--grid", small, "--scoring", METRICS)
    extended = _search(out, "--grid", large, "--scoring", METRICS, "--resume")
    _search(fresh, "--grid", large, "--scoring", METRICS)
    text = (out / "cv_results.csv").read_text()
    assert text == (fresh / "cv_results.csv").read_text()  # no timing columns: byte for byte
    assert "search: reused the scores of 2 of 8 candidates from the journal" in extended.stdout
    # The PCA size searched before: its neighbours came from the journal too.
    assert "resume: 5 finished neighbor searches read from" in extended.stdout


def test_resume_extends_a_random_search_to_more_draws(tmp_path):
    """With a distribution, the first 10 draws of 30 are the 10 drawn before (scikit-learn's
    ParameterSampler): a search extended to 30 reuses them, and equals a fresh one."""
    grid = _grid(tmp_path, "random.yaml", RANDOM)
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    ten = {"n_neighbors": scipy.stats.randint(1, 40), "weights": ["uniform", "distance"]}
    drawn = [list(ParameterSampler(ten, n, random_state=3)) for n in (10, 30)]
    assert drawn[0] == drawn[1][:10]
    assert max(c["n_neighbors"] for c in drawn[0]) == max(c["n_neighbors"] for c in drawn[1])
    _search(out, "--grid", grid, "--n-iter", "10", "--seed", "3")
    more = _search(out, "--grid", grid, "--n-iter", "30", "--seed", "3", "--resume")
    _search(fresh, "--grid", grid, "--n-iter", "30", "--seed", "3")
    assert (out / "cv_results.csv").read_text() == (fresh / "cv_results.csv").read_text()
    rows = csv_rows(out / "cv_results.csv")
    assert [ast.literal_eval(row["params"]) for row in rows] == drawn[1]
    reused = sum(c in drawn[0] for c in drawn[1])  # repeated draws are reused as well
    assert f"search: reused the scores of {reused} of 30 candidates" in more.stdout


def test_more_neighbours_than_the_journal_kept_are_found_and_said(tmp_path):
    out = tmp_path / "out"
    _search(out, "--n-neighbors", "3", "4")
    grown = _search(out, "--n-neighbors", "3", "4", "6", "--resume")
    assert (
        "search: the new candidates need 6 neighbours per image where the journal kept 4: "
        "their neighbour searches ran again" in grown.stdout
    )
    fresh = _search(tmp_path / "fresh", "--n-neighbors", "3", "4", "6")
    assert fresh.returncode == 0
    assert (out / "cv_results.csv").read_text() == (
        tmp_path / "fresh" / "cv_results.csv"
    ).read_text()


#: Runs a command and prints the peak resident memory of the largest process it waited for:
#: the job's own, whose embedded cluster (scheduler and worker threads) lives in it.
PEAK = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if proc.returncode:
    sys.exit(proc.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _peak_kib(tmp_path, n_iter: int) -> int:
    grid = _grid(tmp_path, "random.yaml", RANDOM)
    command = [sys.executable, "-m", "mnistdist", "search", "--dataset", "digits", "--quiet"]
    command += ["--grid", str(grid), "--n-iter", str(n_iter), "--out", str(tmp_path / f"{n_iter}")]
    proc = python_code(PEAK, *command, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.strip())


def test_memory_does_not_grow_with_the_candidates(tmp_path):
    """A random search of 5,000 KNN candidates peaks within 20% of one of 50 (the whole job's
    process: client, scheduler and worker threads)."""
    small, large = _peak_kib(tmp_path, 50), _peak_kib(tmp_path, 5000)
    assert len(csv_rows(tmp_path / "5000" / "cv_results.csv")) == 5000
    assert large <= 1.2 * small, (small, large)


def _on_a_terminal(*args: str, timeout: float = 300) -> str:
    """Run the command with a pseudo-terminal as its standard output; what it wrote there."""
    import os
    import pty
    import select
    import time

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistdist", *args],
        stdout=follower, stderr=subprocess.PIPE, env=process_env(),
    )  # fmt: skip
    os.close(follower)
    out, end = b"", time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([leader], [], [], 1)
        try:
            chunk = os.read(leader, 65536) if ready else b""
        except OSError:  # the command closed the terminal: it has ended
            break
        out += chunk
        if not chunk and proc.poll() is not None:
            break
    os.close(leader)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    return out.decode("utf-8", "replace")


def test_on_a_terminal_the_bar_says_the_time_left(tmp_path):
    text = _on_a_terminal("search", "--dataset", "digits", "--out", str(tmp_path / "out"))
    bars = [part for part in text.split("\r") if part.startswith("[") and "%" in part]
    assert bars and any(" left" in bar for bar in bars), text[-2000:]
    assert "neighbors of 5 folds: started (0:00 elapsed)" in text
