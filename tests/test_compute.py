import logging
import time

import dask
import dask.array as da
import numpy as np
import pytest

from mnistdist import compute as compute_module
from mnistdist.compute import compute, compute_each, compute_journaled, current_client
from mnistdist.journal import Journal
from mnistdist.neighbors import kneighbors_dask

PROGRESS = "mnistdist.progress"


def _progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == PROGRESS]


def test_compute_with_and_without_progress(client, capsys, caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS)
    x = da.arange(100, chunks=10)
    assert compute(x.sum(), label="sum")[0] == 4950
    assert _progress_lines(caplog) == []  # mnistdist.progress is off by default
    with dask.config.set({"mnistdist.progress": True}):
        assert compute(x.sum(), label="summing")[0] == 4950
    lines = _progress_lines(caplog)
    assert len(lines) == 2 and lines[0] == "summing: started"
    assert lines[1].startswith("summing: done in ") and lines[1].endswith(" s")
    # Not a terminal (pytest captures stdout): no bar, and nothing printed at all.
    assert capsys.readouterr().out == ""


def test_progress_bar_only_on_a_terminal(client, capsys, monkeypatch):
    monkeypatch.setattr(compute_module, "_on_terminal", lambda: True)
    slow = dask.delayed(time.sleep)(0.5, dask_key_name=f"sleep-{time.time_ns()}")
    with dask.config.set({"mnistdist.progress": True}):
        compute(slow, label="sleeping")
    assert "Completed" in capsys.readouterr().out  # distributed's bar, drawn on the "terminal"


def test_a_failed_phase_is_reported_as_stopped(client, caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS)

    def fail(_):
        raise RuntimeError("boom")

    bad = dask.delayed(fail)(1, dask_key_name=f"fail-{time.time_ns()}")
    with dask.config.set({"mnistdist.progress": True}), pytest.raises(RuntimeError, match="boom"):
        compute(bad, label="failing")
    lines = _progress_lines(caplog)
    assert lines[0] == "failing: started" and lines[1].startswith("failing: stopped after ")


def test_compute_each_hands_over_each_group(client):
    x = da.arange(10, chunks=5)
    seen = []
    out = compute_each(
        {"a": (x.sum(),), "b": (x.max(), x.min())},
        label="groups",
        on_done=lambda name, result: seen.append((name, result)),
    )
    assert out == {"a": (45,), "b": (9, 0)} and sorted(seen) == [("a", (45,)), ("b", (9, 0))]


def test_without_a_client_runs_on_the_default_scheduler():
    assert current_client() is None
    assert compute(da.arange(10, chunks=5).sum(), label="local") == (45,)


def test_compute_journaled_saves_then_reads_back(tmp_path, client):
    rng = np.random.default_rng(0)
    query = da.from_array(rng.random((20, 4)), chunks=10)
    ref = da.from_array(rng.random((50, 4)), chunks=25)
    lazy = [kneighbors_dask(query, ref, 3, name="neighbors-journal-test")]
    with Journal(tmp_path / "journal.sqlite") as journal:
        (first,) = compute_journaled(lazy, journal, label="first")
        (again,) = compute_journaled(lazy, journal, label="again")
        assert len(journal) == 1 and journal.loaded == 1
    assert not first.loaded and again.loaded
    np.testing.assert_array_equal(first.ids, again.ids)
