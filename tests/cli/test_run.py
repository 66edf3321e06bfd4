"""The one exit path as a user meets it: two runs on one folder, symlinked folders, commits that
fail, results kept on failure, journals that cannot be used, data that changed under --resume.

Real processes, real files, a real cluster; the second run of a pair runs in this process
(``mnistdist.cli.main``), where its time to refusal is measured without the imports.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mnistdist.data import MNIST_FILES, write_idx
from mnistdist.outputs import lock_path, staging_path

from helpers import (
    assert_one_line_error,
    csv_rows,
    in_process,
    journal_rows,
    make_idx_folder,
    mnistdist,
    process_env,
    sitecustomize,
    wait_for,
)

CV = 10  # ten fold searches: time to come in at several moments


def _main(argv) -> tuple[int, str, str, float]:
    """``mnistdist ARGV`` in this process: its code, stdout, stderr and seconds."""
    done = in_process(*argv)
    return done.returncode, done.stdout, done.stderr, done.seconds


def _start(out, cluster, *extra):
    args = ["search", "--dataset", "digits", "--cv", CV, "--out", out, "--quiet", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "mnistdist", *map(str, args), "--scheduler", cluster.address],
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


#: When the second run comes: the first holds the folder but has not reached its cluster
#: yet (reading its data), or is in the middle of its search.
MOMENTS = {
    "starting": lambda out: lock_path(out).exists() and lock_path(out).read_text(),
    "searching": lambda out: journal_rows(staging_path(out)) >= 2,
}
SECOND = {
    "plain": ["search", "--dataset", "digits"],
    "overwrite": ["search", "--dataset", "digits", "--overwrite"],
    "resume": ["search", "--dataset", "digits", "--resume"],
    "tour joining": ["tour", "--dataset", "digits"],
}


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_second_run_on_a_busy_folder_is_refused_at_once(
    tmp_path, slow_cluster, digits_search_10_folds, moment
):
    work = tmp_path / "work"  # apart from the cluster's logs
    out = work / "results"
    first = _start(out, slow_cluster)
    wait_for(lambda: MOMENTS[moment](out), timeout=120, interval=0.01)
    slow_cluster.hold.touch()  # the search waits while the other commands run
    for name, argv in SECOND.items():
        code, stdout, stderr, seconds = _main([*argv, "--out", out, "--workers", "1"])
        assert code == 1, (name, stderr)
        assert seconds < 1.0, (name, seconds)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in stderr, (name, stderr)
        assert f"in use by mnistdist search (pid {first.pid}, started " in lines[0], lines
        assert "cluster:" not in stdout  # refused before any cluster started
    # As a user runs it: refused before the command's imports (about a second).
    t = time.perf_counter()
    proc = mnistdist("report", "--dataset", "digits", "--out", out, "--overwrite", timeout=60)
    assert time.perf_counter() - t < 1.0
    assert_one_line_error(proc, 1, f"in use by mnistdist search (pid {first.pid}, started ")
    # Through a symlink to the same folder: the same lock.
    (work / "link").symlink_to(out)
    code, _, stderr, _ = _main([*SECOND["overwrite"], "--out", work / "link"])
    assert code == 1 and f"pid {first.pid}" in stderr
    slow_cluster.hold.unlink()
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert csv_rows(out / "cv_results.csv") == digits_search_10_folds  # its results, unmixed
    assert sorted(p.name for p in work.iterdir()) == ["link", "results"]  # no staging, no lock
    # Once it has finished, the tour joins its folder.
    code, _, stderr, _ = _main([*SECOND["tour joining"], "--out", out, "--workers", "1"])
    assert code == 0, stderr
    assert {"cv_results.csv", "search.json", "tour.json"} <= set(os.listdir(out))


#: A sitecustomize that stalls the command's imports (its parser), as a slow disk or a busy
#: machine does: the first seconds of a run, before it has imported what it needs.
SLOW_IMPORTS = """
import importlib.abc, sys, time

class _Stall(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "mnistdist.cli._parser":
            time.sleep(60)
        return None

sys.meta_path.insert(0, _Stall())
"""


def test_a_run_still_importing_already_holds_its_folder(tmp_path):
    out = tmp_path / "results"
    first = subprocess.Popen(
        [sys.executable, "-m", "mnistdist", "search", "--dataset", "digits", "--out", out],
        env=process_env(sitecustomize(tmp_path / "stall", SLOW_IMPORTS)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: lock_path(out).exists() and lock_path(out).read_text(), timeout=30)
        proc = mnistdist("report", "--dataset", "digits", "--out", out, "--overwrite", timeout=60)
        assert_one_line_error(proc, 1, f"in use by mnistdist search (pid {first.pid}, started ")
        assert first.poll() is None  # still in its imports
    finally:
        first.kill()
        first.communicate(timeout=30)


def test_a_killed_run_leaves_the_folder_to_the_next(tmp_path, slow_cluster, digits_search_10_folds):
    out = tmp_path / "results"
    first = _start(out, slow_cluster)
    wait_for(lambda: journal_rows(staging_path(out)) >= 2, timeout=120)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    # The folder is no longer busy, but the killed run's finished work waits for --resume.
    plain = mnistdist("search", "--dataset", "digits", "--cv", CV, "--out", out, timeout=120)
    assert_one_line_error(plain, 1, "an unfinished run is in")
    assert f"pid {first.pid}" in plain.stdout and "which is gone: taking it over" in plain.stdout
    resumed = mnistdist(
        "search", "--dataset", "digits", "--cv", CV, "--out", out, "--resume", "--quiet"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert csv_rows(out / "cv_results.csv") == digits_search_10_folds
    assert not lock_path(out).exists() and not staging_path(out).exists()


def test_a_symlinked_out_gets_the_results_in_its_target_and_stays_a_link(tmp_path):
    target = tmp_path / "disk" / "res"
    target.parent.mkdir()
    link = tmp_path / "results"
    link.symlink_to(target)
    for extra in ([], ["--overwrite"]):
        proc = mnistdist("augment", "--dataset", "digits", "--out", link, "--quiet", *extra)
        assert proc.returncode == 0, proc.stderr
        assert link.is_symlink() and os.readlink(link) == str(target)
        assert json.loads((target / "augment.json").read_text())["rows"] == 5 * 1437
    assert sorted(os.listdir(target.parent)) == ["res"] and sorted(os.listdir(tmp_path)) == [
        "disk",
        "results",
    ]


def test_a_commit_that_fails_keeps_the_finished_results_and_says_where(tmp_path):
    out = tmp_path / "aug"
    out.mkdir()
    (out / "augment.json").write_text('{"previous": true}')
    blocker = tmp_path / ".aug.replaced" / "x"
    argv = ["augment", "--dataset", "digits", "--out", str(out), "--overwrite"]
    job = subprocess.Popen(
        [sys.executable, "-m", "mnistdist", *argv],
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Once the run has started its folder, a folder in the way of the swap's first rename.
    wait_for(lambda: staging_path(out).exists(), timeout=120, interval=0.01)
    blocker.parent.mkdir()
    blocker.write_text("in the way")
    _, stderr = job.communicate(timeout=300)
    assert job.returncode == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "could not move the finished results into" in lines[0], stderr
    assert f"they are kept in {staging_path(out)}" in lines[0]
    assert (staging_path(out) / "augment.json").exists()  # nothing finished was deleted
    assert (out / "augment.json").read_text() == '{"previous": true}'  # nor the previous run
    assert not lock_path(out).exists()
    blocker.unlink()
    # The next run finishes the swap the failed one could not, then does its own work.
    proc = mnistdist("augment", "--dataset", "digits", "--out", out, "--resume", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "previous" not in json.loads((out / "augment.json").read_text())
    assert not staging_path(out).exists()


BENCHMARK_DISAGREES = """
import mnistdist.benchmark as bench
real = bench.run_benchmark

def disagreeing(*args, **kwargs):
    report = real(*args, **kwargs)
    report["scores_agree"] = False
    return report

bench.run_benchmark = disagreeing
"""


def test_a_benchmark_whose_scores_disagree_keeps_its_evidence(tmp_path):
    out = tmp_path / "bench"
    env = sitecustomize(tmp_path / "disagree", BENCHMARK_DISAGREES)
    proc = mnistdist(
        "benchmark", "--dataset", "digits", "--cv", "3", "--no-book", "--out", out, env=env
    )
    assert_one_line_error(proc, 1, f"its checks failed (exit 1); its results are in {out}")
    assert json.loads((out / "benchmark.json").read_text())["scores_agree"] is False
    assert not staging_path(out).exists() and not lock_path(out).exists()


@pytest.mark.parametrize("journal", ["garbage", "truncated", "another dataset"])
def test_a_journal_that_cannot_be_used_is_one_line_never_unexpected(tmp_path, journal):
    out = tmp_path / "results"
    args = ["search", "--dataset", "digits", "--cv", "3", "--workers", "1", "--quiet"]
    if journal == "another dataset":  # a finished search on MNIST-format files, then digits
        make_idx_folder(tmp_path / "mnist", n_train=200, n_test=30)
        first = mnistdist("search", "--data", tmp_path / "mnist", *args[3:], "--out", out)
        assert first.returncode == 0, first.stderr
    else:
        done = mnistdist(*args, "--out", out)
        assert done.returncode == 0, done.stderr
        path = out / "journal.sqlite"
        size = path.stat().st_size
        blob = b"\0garbage" * 1000 if journal == "garbage" else path.read_bytes()[: size // 2]
        path.write_bytes(blob)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = mnistdist(*args, "--out", out, "--resume")
    assert_one_line_error(proc, 1, "not a mnistdist journal, or damaged: pass --overwrite")
    assert "unexpected" not in proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not staging_path(out).exists() and not lock_path(out).exists()  # nothing left
    again = mnistdist(*args, "--out", out, "--overwrite")  # as the line says
    assert again.returncode == 0, again.stderr


def test_resume_after_the_data_changed_recomputes_and_says_so(tmp_path):
    """Raw files rewritten in place with the same size and modification time, other
    content (as raw Fashion-MNIST has MNIST's sizes): nothing is reused."""
    data, out = tmp_path / "mnist", tmp_path / "results"
    make_idx_folder(data, n_train=200, n_test=30, gz=False)
    args = ["search", "--data", data, "--cv", "3", "--workers", "1", "--quiet", "--out", out]
    first = mnistdist(*args)
    assert first.returncode == 0, first.stderr
    same = mnistdist(*args, "--resume")  # unchanged data: everything reused
    assert same.returncode == 0 and "other data" not in same.stdout
    assert json.loads((out / "search.json").read_text())["n_neighbor_searches_computed"] == 0

    images = data / MNIST_FILES["train_images"]
    stat = images.stat()
    rng = np.random.default_rng(7)
    write_idx(images, rng.integers(0, 256, (200, 28, 28), dtype=np.uint8))
    os.utime(images, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert images.stat().st_size == stat.st_size and images.stat().st_mtime_ns == stat.st_mtime_ns
    changed = mnistdist(*args, "--resume")
    assert changed.returncode == 0, changed.stderr
    assert (
        "were computed on other data (train-images-idx3-ubyte changed): recomputing them"
        in changed.stdout
    ), changed.stdout
    summary = json.loads((out / "search.json").read_text())
    assert summary["n_neighbor_searches_loaded"] == 0
    fresh = tmp_path / "fresh"
    assert mnistdist(*args[:-1], fresh).returncode == 0
    assert csv_rows(out / "cv_results.csv") == csv_rows(fresh / "cv_results.csv")


def test_a_job_replacing_its_results_in_a_shared_folder_keeps_the_others(tmp_path):
    out = tmp_path / "results"
    common = ["--dataset", "digits", "--out", out, "--workers", "2", "--quiet"]
    assert mnistdist("search", "--cv", "3", *common).returncode == 0
    searched = {  # its files; the log, which every job appends to, and the owners' list aside
        p.name: p.read_bytes() for p in out.iterdir() if p.name[0] != "." and p.suffix != ".log"
    }
    assert {"cv_results.csv", "search.json", "journal.sqlite"} <= set(searched)
    tour = mnistdist("tour", "--svc-size", "300", "--forest-trees", "5", *common)
    assert tour.returncode == 0, tour.stderr
    first = json.loads((out / "tour.json").read_text())["generated"]
    again = mnistdist("tour", "--svc-size", "300", "--forest-trees", "5", *common, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "tour.json").read_text())["generated"] >= first
    for name, content in searched.items():  # the search's results, whole, after the tour's
        assert (out / name).read_bytes() == content, name
