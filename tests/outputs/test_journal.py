"""The journal, and jobs interrupted (SIGINT, SIGKILL) then resumed from it."""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from mnistdist import __version__
from mnistdist.errors import OutputError
from mnistdist.outputs import Journal, staging_path

from helpers import (
    csv_rows,
    journal_rows,
    mnistdist,
    process_env,
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


#: A process that saves one row and is then SIGKILLed: no close, no exit hook.
KILLED_WRITER = """
import os, signal, sys
import numpy as np
from mnistdist.outputs import Journal
journal = Journal(sys.argv[1])
journal.put("a", np.arange(6.0).reshape(2, 3), np.arange(6).reshape(2, 3))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_row_survives_its_process_being_killed(tmp_path):
    path = tmp_path / "j.sqlite"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], env=process_env())
    assert proc.returncode == -signal.SIGKILL
    with Journal(path) as journal:
        dist, ids = journal.get("a")
    np.testing.assert_array_equal(dist, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(ids, np.arange(6).reshape(2, 3))


MNIST = {"dataset": "mnist", "files": {"train-images-idx3-ubyte.gz": "aa", "t10k": "bb"}}


def _rows(path, identity, n=2):
    with Journal(path) as journal:
        assert journal.bind(identity) is None
        for i in range(n):
            journal.put(f"k{i}", np.zeros((4, 2)), np.zeros((4, 2), dtype=np.int64))


def test_rows_of_other_data_or_another_version_are_named_not_reused(tmp_path, monkeypatch):
    path = tmp_path / "j.sqlite"
    _rows(path, MNIST)
    with Journal(path) as journal:
        assert journal.bind(MNIST) is None  # the same data: nothing to say
    changed = {**MNIST, "files": {**MNIST["files"], "t10k": "cc"}}
    with Journal(path) as journal:
        line = journal.bind(changed)
    assert line == (
        f"2 finished neighbour searches in {path} were computed on other data "
        "(t10k changed): recomputing them"
    )
    from mnistdist.outputs import _journal

    monkeypatch.setattr(_journal, "_version", lambda: "99.0")
    with Journal(path) as journal:
        line = journal.bind(MNIST)
        assert f"computed by mnistdist {__version__}, this is 99.0: recomputing" in line
        assert len(journal) == 2  # kept: a run of the old version may want them


def test_a_journal_of_another_dataset_is_refused(tmp_path):
    path = tmp_path / "j.sqlite"
    _rows(path, {"dataset": "digits", "files": {"sklearn:load_digits": "dd"}})
    with Journal(path) as journal, pytest.raises(OutputError) as info:
        journal.bind(MNIST)
    assert "neighbour searches on digits, not mnist: not a mnistdist journal, or damaged" in str(
        info.value
    )


def test_every_key_holds_the_version(tmp_path, monkeypatch):
    """Whoever stores a row (a neighbour search, the search's scores), another version of
    mnistdist does not read it back."""
    from mnistdist.outputs import _journal

    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        journal.put("scores-accuracy-abc", np.zeros(2), np.array(["k=1", "x"]))
        assert journal.get("scores-accuracy-abc") is not None
    monkeypatch.setattr(_journal, "_version", lambda: "99.0")
    with Journal(path) as journal:
        assert journal.get("scores-accuracy-abc") is None and len(journal) == 1


def test_rows_of_the_wrong_shape_or_type_are_damage(tmp_path):
    path = tmp_path / "j.sqlite"
    _rows(path, MNIST, n=1)
    like = (np.zeros((4, 2)), np.zeros((4, 2), dtype=np.int64))
    with Journal(path) as journal:
        assert journal.get("k0", like=like) is not None
        for wrong in [
            (np.zeros((5, 2)), like[1]),
            (np.zeros((4, 2), dtype=np.float32), like[1]),
            (like[0], np.zeros((4, 2), dtype=np.int32)),
        ]:
            with pytest.raises(OutputError, match="not a mnistdist journal, or damaged"):
                journal.get("k0", like=wrong)
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("UPDATE neighbors SET dist = ? WHERE key LIKE 'k0@%'", (b"\x93NUMPY junk",))
    with Journal(path) as journal, pytest.raises(OutputError, match="row k0"):
        journal.get("k0")


def test_a_journal_of_mnistdist_0_2_is_read_and_its_rows_named(tmp_path):
    import sqlite3

    path = tmp_path / "j.sqlite"
    with sqlite3.connect(path) as db:  # the schema mnistdist 0.2 wrote
        db.execute(
            "CREATE TABLE neighbors (key TEXT PRIMARY KEY, label TEXT, "
            "dist BLOB NOT NULL, ids BLOB NOT NULL, finished REAL NOT NULL)"
        )
        db.execute("INSERT INTO neighbors VALUES ('old', '', x'00', x'00', 0)")
    with Journal(path) as journal:
        assert "computed by mnistdist 0.2 or older" in journal.bind(MNIST)
        journal.put("new", np.zeros((1, 1)), np.zeros((1, 1), dtype=np.int64))
        assert len(journal) == 2


def _neighbour_rows(out) -> int:
    """The journal's neighbour searches (the search keeps its scores there too)."""
    import sqlite3

    with sqlite3.connect(out / "journal.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM neighbors WHERE key LIKE 'neighbors-%'").fetchone()[
            0
        ]


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
def test_interrupted_search_resumes_without_recomputing(
    slow_cluster, tmp_path, digits_search_10_folds, sig
):
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
    # A killed run's lock is released by the kernel: the next run takes the folder over.
    took_over = f"was held by mnistdist search (pid {job.pid}, started "
    assert (took_over in resumed.stdout) == (sig == signal.SIGKILL), resumed.stdout
    summary = json.loads((out / "search.json").read_text())
    assert summary["n_neighbor_searches_loaded"] == saved
    assert summary["n_neighbor_searches_computed"] == CV - saved
    assert _neighbour_rows(out) == CV
    assert csv_rows(out / "cv_results.csv") == digits_search_10_folds
