"""The time left: planned steps priced by the rate their kind ran at, and the progress lines and
bar that say it."""

import logging
import threading
import time

import dask
import pytest

from mnistdist.model_selection import neighbors_search
from mnistdist.runtime import Eta, compute, current_eta, duration, estimating
from mnistdist.runtime import _compute as compute_module

PROGRESS = "mnistdist.progress"


def _run(eta: Eta, name: str, seconds: float) -> None:
    with eta.step(name):
        time.sleep(seconds)


def test_nothing_is_known_before_a_step_has_run():
    eta = Eta()
    eta.plan("a", "neighbors", 10)
    assert eta.remaining() is None
    assert eta.remaining(fraction=0.5) is None  # no step is running


def test_planned_steps_are_priced_at_their_kinds_rate():
    eta = Eta()
    for name, units in (("a", 10), ("b", 20), ("c", 1)):
        eta.plan(name, "neighbors" if name != "c" else "scores", units)
    _run(eta, "a", 0.1)
    left = eta.remaining()
    # b is twice a's units; c's kind is not measured yet: the measured average rate.
    assert left == pytest.approx(0.2 + 0.01, rel=0.5)
    eta.skip("b")
    assert eta.remaining() == pytest.approx(0.01, rel=0.5)


def test_a_kinds_time_is_a_line_through_its_steps():
    """A fixed cost a step and a cost a unit, fitted on the finished steps."""
    eta = Eta()
    for name, units in (("a", 10), ("b", 30), ("c", 50)):
        eta.plan(name, "neighbors", units)
    _run(eta, "a", 0.2)  # 0.1 fixed + 10 x 0.01
    _run(eta, "b", 0.4)  # 0.1 fixed + 30 x 0.01
    assert eta.remaining() == pytest.approx(0.6, abs=0.08)  # not 50 x (0.6 / 40) = 0.75


def test_a_line_prices_no_step_far_larger_than_those_it_was_fitted_on():
    """Halving's first round says nothing of its last, 729 times larger: no estimate, until a
    step within a hundred times the last one's size has run."""
    eta = Eta()
    for name, units in (("round-0", 10), ("round-1", 90), ("round-3", 7290)):
        eta.plan(name, "neighbors", units)
    _run(eta, "round-0", 0.05)
    assert eta.remaining() is None
    _run(eta, "round-1", 0.1)
    assert eta.remaining() == pytest.approx(0.05 + 7290 * 0.05 / 80, rel=0.5)


def test_within_a_step_the_share_of_tasks_done_gives_its_remainder():
    eta = Eta()
    eta.plan("a", "neighbors", 10)
    eta.plan("b", "neighbors", 10)
    seen = []
    with eta.step("a"):
        time.sleep(0.2)
        seen.append(eta.remaining(fraction=0.5))
    # a: as long again as it ran; b: as long as a would take in all.
    assert seen[0] == pytest.approx(0.2 + 0.4, rel=0.3)


def test_a_step_whose_tasks_run_ahead_has_at_least_what_its_kinds_line_leaves():
    """Many quick tasks first, the heavy ones last: 90% of the tasks done says little."""
    eta = Eta()
    eta.plan("a", "neighbors", 10)
    eta.plan("b", "neighbors", 10)
    _run(eta, "a", 0.2)
    seen = []
    with eta.step("b"):
        time.sleep(0.02)
        seen.append(eta.remaining(fraction=0.9))
        seen.append(eta.remaining(fraction=1.0))
    assert seen[0] == pytest.approx(0.2 - 0.02, abs=0.05)  # not 0.02 x 0.1 / 0.9
    assert seen[1] == 0.0  # its tasks all done: nothing left


def test_a_step_whose_tasks_are_done_prices_the_next_as_a_finished_step():
    """The line that says a step is done says what the next line will."""
    eta = Eta()
    for name, units in (("a", 10), ("b", 10), ("c", 10)):
        eta.plan(name, "neighbors", units)
    _run(eta, "a", 0.3)
    with eta.step("b"):
        time.sleep(0.05)
        at_done = eta.remaining(fraction=1.0)
    after = eta.remaining()
    assert at_done == pytest.approx(after, rel=0.05)  # c priced from a and b's times
    assert at_done < 0.3  # not from a's alone


def test_drop_replaces_an_estimate_but_keeps_what_ran():
    eta = Eta()
    eta.plan("round-0-a", "neighbors", 10)
    eta.plan("round-1-estimate", "neighbors", 1000)
    _run(eta, "round-0-a", 0.05)
    eta.drop("round-1-")
    assert eta.remaining() == 0.0
    eta.drop("round-0-")  # finished steps stay: they price what comes
    eta.plan("round-1-a", "neighbors", 20)
    assert eta.remaining() == pytest.approx(0.1, rel=0.5)


def test_estimating_nests_and_stays_in_its_thread():
    with estimating() as outer:
        with estimating() as inner:
            assert inner is outer and current_eta() is outer
        seen = []
        thread = threading.Thread(target=lambda: seen.append(current_eta()))
        thread.start()
        thread.join()
        assert seen == [None]
    assert current_eta() is None


def test_durations_read_as_clocks():
    assert [duration(s) for s in (0.4, 65, 3599.6, 3725)] == ["0:00", "1:05", "1:00:00", "1:02:05"]


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == PROGRESS]


def test_a_searchs_lines_say_its_elapsed_and_remaining_time(client, digits, caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS)
    with dask.config.set({"mnistdist.progress": True}):
        neighbors_search(digits.X_train, digits.y_train, cv=3)
    lines = _lines(caplog)
    assert lines[0] == "neighbors of 3 folds: started (0:00 elapsed)"
    assert lines[1].startswith("neighbors of 3 folds: done in ") and lines[1].endswith(" left)")
    assert lines[2].startswith("scores of 3 folds: started (0:0") and "elapsed, about" in lines[2]


def test_a_long_phase_off_a_terminal_says_each_quarter(client, caplog, monkeypatch):
    monkeypatch.setattr(compute_module, "MILESTONE_AFTER", 0.0)
    caplog.set_level(logging.INFO, logger=PROGRESS)
    naps = [dask.delayed(time.sleep)(0.15, dask_key_name=f"nap-{i}-{time.time_ns()}")
            for i in range(16)]  # fmt: skip
    with dask.config.set({"mnistdist.progress": True}):
        compute(*naps, label="napping")
    quarters = [line for line in _lines(caplog) if "of its tasks done" in line]
    assert quarters and all(line.startswith("napping: ") for line in quarters)
    assert all("elapsed, about" in line and line.endswith(" left)") for line in quarters)
    assert len(quarters) == len(set(quarters)) <= 3
