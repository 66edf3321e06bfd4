import logging
import time

import dask
import dask.array as da
import numpy as np
import pytest

from mnistdist.neighbors import compute_journaled, compute_journaled_after, kneighbors_dask
from mnistdist.outputs import Journal
from mnistdist.runtime import Background, compute, compute_each, current_client
from mnistdist.runtime import _compute as compute_module

from helpers import wait_for

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
    out = capsys.readouterr().out  # distributed's bar, drawn on the "terminal", with the time left
    assert "100% | 0:0" in out and "left" in out


def test_work_in_the_background_draws_no_bar_on_the_terminal(client, capsys, caplog, monkeypatch):
    # One line holds one bar: the caller's, not that of work beside it (a report's models).
    caplog.set_level(logging.INFO, logger=PROGRESS)
    monkeypatch.setattr(compute_module, "_on_terminal", lambda: True)
    slow = dask.delayed(time.sleep)(0.5, dask_key_name=f"sleep-{time.time_ns()}")
    with (
        dask.config.set({"mnistdist.progress": True}),
        Background(compute, slow, label="beside") as work,
    ):
        work.result()
    assert capsys.readouterr().out == ""
    assert _progress_lines(caplog)[0] == "beside: started"


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


def _priority_while_running(name: str) -> int:
    """Compute a task that, as it runs, reads the priority the scheduler gave it."""

    def own_priority():
        from distributed import get_client  # on the worker: its client of the scheduler

        return get_client().run_on_scheduler(
            lambda dask_scheduler: -dask_scheduler.tasks[name].priority[0]
        )

    return compute(dask.delayed(own_priority, pure=False)(dask_key_name=name), label=name)[0]


def test_background_work_runs_at_a_lower_priority(client):
    with Background(_priority_while_running, f"background-{time.time_ns()}") as work:
        mine = _priority_while_running(f"main-{time.time_ns()}")
        theirs = work.result()
    assert (mine, theirs) == (0, -1)


def _tasks_named(client, prefix: str) -> list:
    return client.run_on_scheduler(
        lambda dask_scheduler: [k for k in dask_scheduler.tasks if str(k).startswith(prefix)]
    )


def test_background_is_cancelled_when_the_caller_fails(client):
    # 60 s of short tasks, as a job's are: cancelling drops those not yet started.
    name = f"sleep-short-{time.time_ns()}"
    tasks = [dask.delayed(time.sleep)(0.3, dask_key_name=f"{name}-{i}") for i in range(200)]
    t = time.perf_counter()
    with pytest.raises(KeyboardInterrupt), Background(compute, *tasks, label="long") as work:
        while not _tasks_named(client, name):
            time.sleep(0.05)
        raise KeyboardInterrupt  # as Ctrl-C does in the caller
    assert time.perf_counter() - t < 30  # not the 30 s the work would take on 2 workers
    with pytest.raises(Exception):  # noqa: B017 - the work stopped, with some error
        work.result()
    wait_for(lambda: not _tasks_named(client, name), timeout=10, interval=0.1)


def test_compute_journaled_after_equals_computing_the_values_first(tmp_path, client):
    rng = np.random.default_rng(0)
    X = da.from_array(rng.random((60, 4)), chunks=20)
    values = [dask.delayed(float)(s, dask_key_name=f"scale-{s}-{time.time_ns()}") for s in (1, 2)]

    def then(i, scale):
        q = (X[:10] * scale).rechunk({0: 5})
        return kneighbors_dask(q, X * scale, 3, name=f"neighbors-after-{i}")

    expected = compute_journaled([then(i, s) for i, s in enumerate((1.0, 2.0))], None, label="a")
    with Journal(tmp_path / "journal.sqlite") as journal:
        found = compute_journaled_after(values, then, journal, label="after")
        again = compute_journaled_after(values, then, journal, label="again")
        assert len(journal) == 2 and journal.loaded == 2
    for one, two, three in zip(expected, found, again, strict=True):
        np.testing.assert_array_equal(one.ids, two.ids)
        np.testing.assert_array_equal(one.dist, three.dist)
        assert not two.loaded and three.loaded
