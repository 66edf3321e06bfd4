"""The scaling forecast: work and span on graphs whose answer is known, live and by hand."""

import json
import logging
import re
import time

import pytest
from distributed import Client

from mnistdist.drawing import forecast_figure
from mnistdist.runtime import _forecast as scaling
from mnistdist.runtime._forecast import Records, TaskRecord

from helpers import mnistdist


def diamond(offset: int = 0, submitted: float = 0.0) -> list[TaskRecord]:
    """a -> b, a -> c, (b, c) -> d, with durations 1, 2, 5, 1: work 9, longest chain a-c-d 7."""
    t = submitted

    def task(name, seconds, deps, done):
        return TaskRecord(
            f"{name}-{offset}", seconds, tuple(f"{d}-{offset}" for d in deps), t, done
        )

    return [
        task("a", 1.0, (), t + 1),
        task("b", 2.0, ("a",), t + 3),
        task("c", 5.0, ("a",), t + 6),
        task("d", 1.0, ("b", "c"), t + 7),
    ]


def test_work_and_span_of_a_diamond_and_a_client_segment():
    records = Records(diamond(), {"client": 0.5, "draw": 1.5})
    assert scaling.work(records) == pytest.approx(9 + 2)
    assert scaling.span(records) == pytest.approx(7 + 2)
    assert scaling.critical_path(records) == pytest.approx(
        {"c": 5.0, "draw": 1.5, "a": 1.0, "d": 1.0, "client": 0.5}
    )
    assert "b" not in scaling.critical_path(records)  # off the longest chain


def test_a_graph_after_the_last_one_finished_adds_to_the_span():
    # The second diamond arrives at 10, after the first finished at 7: the client waited.
    records = Records(diamond(0) + diamond(1, submitted=10.0))
    assert scaling.span(records) == pytest.approx(14)
    assert scaling.work(records) == pytest.approx(18)


def test_a_graph_that_arrives_while_another_runs_waits_only_for_its_dependencies():
    # Submitted at 2, while c (done at 6) still runs: like a persisted load, not a phase.
    records = Records(diamond(0) + diamond(1, submitted=2.0))
    assert scaling.span(records) == pytest.approx(7)


def test_a_dependency_from_an_earlier_graph_is_on_the_chain():
    late = TaskRecord("e-0", 4.0, ("d-0",), 3.0, 12.0)  # arrived while the diamond ran
    assert scaling.span(Records([*diamond(), late])) == pytest.approx(11)


def test_no_tasks_leaves_the_client_alone():
    records = Records([], {"client": 2.0})
    assert scaling.work(records) == scaling.span(records) == 2.0


def test_forecast_is_work_over_n_or_the_span_plus_overhead():
    rows = scaling.forecast(work=64.0, span=10.0, overhead=3.0)
    assert [r["workers"] for r in rows] == [1, 2, 4, 8, 16, 32, 64]
    assert [r["seconds"] for r in rows] == [67.0, 35.0, 19.0, 13.0, 13.0, 13.0, 13.0]


def test_summary_and_line():
    # work 10, span 8; 4 s outside the recorded 10 s, of which work and span explain 8 on 2 workers
    summary = scaling.summarize_forecast(
        Records(diamond(), {"client": 1.0}), workers=2, wall_s=14.0, recorded_s=10.0
    )
    assert summary["work_s"] == 10.0 and summary["span_s"] == 8.0 and summary["client_s"] == 1.0
    assert summary["overheads"] == {"outside_s": 4.0, "idle_s": 2.0}
    assert summary["overhead_s"] == 6.0
    assert summary["measured"] == {"workers": 2, "wall_s": 14.0, "forecast_s": 14.0}
    assert [r["seconds"] for r in summary["forecast"]] == [16.0, 14.0, 14.0, 14.0, 14.0, 14.0, 14.0]
    assert summary["span_dominated_by"] == "c"
    assert json.loads(json.dumps(summary)) == summary  # plain JSON
    assert scaling.forecast_line(summary) == (
        "forecast: 16 workers about 14.0 s; the span is 8.0 s: mostly c (5.0 s)"
    )
    long = {**summary, "span_s": 144.0, "forecast": [{"workers": 16, "seconds": 186.0}]}
    assert scaling.forecast_line(long).startswith(
        "forecast: 16 workers about 3.1 min; the span is 2.4 min"
    )


def test_a_run_faster_than_the_model_has_no_idle_time():
    summary = scaling.summarize_forecast(Records(diamond()), workers=1, wall_s=12.0, recorded_s=6.0)
    assert summary["overheads"] == {"outside_s": 6.0, "idle_s": 0.0}
    assert summary["measured"]["forecast_s"] == 9.0 + 6.0


def test_figure_has_a_log2_axis_and_the_measured_point():
    summary = scaling.summarize_forecast(Records(diamond()), workers=2, wall_s=12.0, recorded_s=9.0)
    ax = forecast_figure(summary).axes[0]
    assert ax.get_xscale() == "log"
    assert [list(line.get_xdata()) for line in ax.lines][-1] == [2]  # the measured star
    assert list(ax.lines[-1].get_ydata()) == [12.0]


def nap(seconds, *dependencies):
    time.sleep(seconds)
    return seconds


def test_recorded_on_a_cluster_of_worker_processes(client):
    """A diamond of sleeps (0.3, 0.2, 0.5, 0.1 s), then a 0.4 s task once it has finished."""
    with scaling.record_tasks(client) as recording:
        client.get({"a-0": (nap, 0.3), "b-0": (nap, 0.2, "a-0"), "c-0": (nap, 0.5, "a-0"),
                    "d-0": (nap, 0.1, "b-0", "c-0")}, "d-0")  # fmt: skip
        with scaling.client_segment("wait"):
            time.sleep(0.2)
        client.get({"e-0": (nap, 0.4)}, "e-0")
        name = recording.name
    records = recording.records
    assert sorted(t.key for t in records.tasks) == ["a-0", "b-0", "c-0", "d-0", "e-0"]
    assert dict((t.key, set(t.dependencies)) for t in records.tasks)["d-0"] == {"b-0", "c-0"}
    assert records.client["wait"] == pytest.approx(0.2, abs=0.05)
    client_s = sum(records.client.values())
    assert 1.5 + client_s <= scaling.work(records) <= 1.5 + client_s + 0.25
    # a-c-d, then e: the second graph came after the first had finished
    assert 1.3 + client_s <= scaling.span(records) <= 1.3 + client_s + 0.2
    assert recording.workers == 2
    assert name not in client.run_on_scheduler(_plugins)


def _plugins(dask_scheduler):
    return list(dask_scheduler.plugins)


def test_a_recorder_left_behind_leaves_with_its_client(cluster, client):
    other = Client(cluster)
    with pytest.raises(RuntimeError), scaling.record_tasks(other) as recording:
        raise RuntimeError("the job failed: the records are not read back")
    assert recording.records is None
    assert recording.name in client.run_on_scheduler(_plugins)  # left behind by the failure
    other.close()
    deadline = time.monotonic() + 5
    while recording.name in client.run_on_scheduler(_plugins) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert recording.name not in client.run_on_scheduler(_plugins)


class _NoPlugins:
    """A client whose scheduler refuses the recorder, as one without mnistdist would."""

    def scheduler_info(self, **kwargs):
        return {"workers": {"tcp://w": {"nthreads": 1}}}

    def register_plugin(self, plugin, name=None):
        raise ModuleNotFoundError("No module named 'mnistdist'")


def test_a_scheduler_that_cannot_record_gives_no_forecast_and_a_warning(caplog):
    with (
        caplog.at_level(logging.WARNING, logger="mnistdist.runtime._forecast"),
        scaling.record_tasks(_NoPlugins()) as recording,
    ):
        pass
    assert recording.records is None
    assert "cannot record tasks" in caplog.text


def test_search_job_writes_and_prints_its_forecast(tmp_path, cluster):
    proc = mnistdist(
        "search", "--dataset", "digits", "--n-neighbors", "1", "3", "--weights", "uniform",
        "--cv", "3", "--out", tmp_path, "--scheduler", cluster.scheduler_address, "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "search.json").read_text())["scaling"]
    assert [r["workers"] for r in summary["forecast"]] == list(scaling.WORKERS)
    assert summary["measured"]["workers"] == 2 and summary["tasks"] > 10
    assert 0 < summary["span_s"] <= summary["work_s"]
    assert summary["measured"]["wall_s"] >= summary["overheads"]["outside_s"] > 0
    assert summary["measured"]["forecast_s"] >= summary["measured"]["wall_s"] - 0.01
    assert summary["forecast"][0]["seconds"] == pytest.approx(
        summary["work_s"] + summary["overhead_s"], abs=0.01
    )
    last = proc.stdout.strip().splitlines()[-1]
    assert last == scaling.forecast_line(summary)
    assert re.fullmatch(
        r"forecast: 16 workers about [\d.]+ (s|min); the span is .+: mostly .+", last
    )
    assert (tmp_path / summary["figure"]).read_bytes().startswith(b"\x89PNG")
