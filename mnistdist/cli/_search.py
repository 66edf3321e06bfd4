"""``mnistdist search``: the cross-validated KNN grid search alone."""

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

#: The columns of the printed table of candidates.
SCORE_COLUMNS = ("params", "mean_test_score", "std_test_score")

#: The job's line in ``mnistdist --help``.
HELP = (
    "cross-validated grid search on the cluster (the book's KNN grid, or --preset best), "
    "exhaustive or by successive halving (--strategy halving)"
)


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
    scores = zip(*(result.cv_results[key] for key in SCORE_COLUMNS), strict=True)
    rounds = result.cv_results.get("iter")  # successive halving: a row per candidate and round
    for i, (params, mean, std) in enumerate(scores):
        mark = "*" if i == result.best_index else " "
        where = "" if rounds is None else f"round {rounds[i]}, "
        print(f"{mark} {where}{params}: {mean:.4f} ± {std:.4f}")
    print(f"search: {run.result_path('cv_results.csv')}")
    return 0
