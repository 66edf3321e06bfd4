"""``mnistdist search``: the cross-validated KNN grid search alone."""

from __future__ import annotations

import argparse

from jobs import common
from mnistdist.outputs import write_json

NAME = "search"
SCORE_COLUMNS = ("params", "mean_test_score", "std_test_score")
HELP = (
    "cross-validated grid search on the cluster (the book's KNN grid, or --preset best), "
    "exhaustive or by successive halving (--strategy halving)"
)
DEFAULT_OUT = "search-results"
GRID = "presets"


def job(args: argparse.Namespace) -> int:
    out = common.out_dir(args)
    with common.cluster(args) as client, common.journal(out) as journal:
        dataset = common.load(args, client)
        result = common.search(args, dataset, journal, common.preset(args, dataset))
        info = common.cluster_summary(client)
    result.write_csv(out / "cv_results.csv")
    summary = {**result.summary(), "data": dataset.summary(), "cluster": info}
    phases = {k: round(v, 3) for k, v in common.job_phases(args).items()}
    summary["seconds"] = {**phases, **summary["seconds"]}
    write_json(out / "search.json", summary)
    scores = zip(*(result.cv_results[key] for key in SCORE_COLUMNS), strict=True)
    rounds = result.cv_results.get("iter")  # successive halving: a row per candidate and round
    for i, (params, mean, std) in enumerate(scores):
        mark = "*" if i == result.best_index else " "
        where = "" if rounds is None else f"round {rounds[i]}, "
        print(f"{mark} {where}{params}: {mean:.4f} ± {std:.4f}")
    print(f"search: {common.result_path(args, 'cv_results.csv')}")
    return 0
