"""``mnistdist search``: the cross-validated search alone (grid, random or successive halving)."""

from __future__ import annotations

from ..outputs import write_json
from ._job_run import JobRun
from ._on_cluster import (
    chosen_preset,
    cluster_summary,
    connect_as_asked,
    load_data,
    open_journal,
    rounded_phases,
    run_search,
)

#: Searches of more candidates than this print only the best this many.
PRINTED = 50


def job(run: JobRun) -> int:
    out = run.out_dir()
    with connect_as_asked(run) as client, open_journal(run) as journal:
        dataset = load_data(run, client)
        result = run_search(run, dataset, journal, chosen_preset(run, dataset))
        info = cluster_summary(client)
    result.write_csv(out / "cv_results.csv")
    summary = {**result.summary(), "data": dataset.summary(), "cluster": info}
    phases = rounded_phases(run)
    summary["seconds"] = {**phases, **summary["seconds"]}
    write_json(out / "search.json", summary)
    for line in candidate_lines(result):
        print(line)
    print(f"search: {run.result_path('cv_results.csv')}")
    return 0


def candidate_lines(result) -> list[str]:
    """A line per candidate (per candidate and round, after halving), the chosen one starred:
    its mean and std by each metric. Of more than :data:`PRINTED`, the best by rank."""
    cv, keys = result.cv_results, result.metrics.keys
    rows = range(len(cv["params"]))
    if len(rows) > PRINTED:
        rank = cv[f"rank_test_{result.metrics.refit}"]
        rows = sorted(sorted(rows, key=lambda i: (rank[i], i))[:PRINTED])
    rounds = cv.get("iter")  # successive halving: a row per candidate and round
    lines = []
    for i in rows:
        mark = "*" if i == result.best_index else " "
        where = "" if rounds is None else f"round {rounds[i]}, "
        scores = ", ".join(
            ("" if key == "score" else f"{key} ")
            + f"{cv[f'mean_test_{key}'][i]:.4f} ± {cv[f'std_test_{key}'][i]:.4f}"
            for key in keys
        )
        lines.append(f"{mark} {where}{cv['params'][i]}: {scores}")
    if len(lines) < len(cv["params"]):
        lines.append(
            f"  ... the best {PRINTED} of {len(cv['params'])} candidates; all are in cv_results.csv"
        )
    return lines
