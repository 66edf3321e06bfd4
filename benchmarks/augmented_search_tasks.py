"""Measures where an augmented CV search's workers spend their time: its tasks' seconds by kind.

Usage: python benchmarks/augmented_search_tasks.py [--data DIR] [--n N] [--kind KIND]
       [--json FILE]

The last round of ``--preset best`` on its own: the first N MNIST training images (default
60,000) through deskewing, augmentation of the training folds (``--kind``, default
``shift8+rotate``: ten copies of each image), a normaliser and PCA to 50 components fitted on
each fold, and a KNN for 4 and 6 neighbours by distance, searched by 5-fold CV on an embedded
cluster of 2 worker threads, as the jobs run it. Prints the wall seconds, the workers' busy
share, and the seconds their tasks computed by kind (Dask's task prefixes, as the dashboard's
task stream groups them). The tasks' seconds are the steadier measure on a shared machine;
compare two versions of the code by running this script with each on ``PYTHONPATH``, in turn.
MNIST comes from ``--data``, else ``$MNISTDIST_DATA``, else OpenML.
"""

from __future__ import annotations

import argparse
import collections
import json
import time

from dask.utils import key_split
from distributed import get_task_stream
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer

from mnistdist.data import load_dataset
from mnistdist.model_selection import neighbors_search
from mnistdist.neighbors import KNNClassifier
from mnistdist.preprocessing import Augment, Deskew
from mnistdist.runtime import connect

#: Task prefixes that make the augmented copies and put them through the fold's steps.
COPIES = ("augment", "concatenate-preprocess")


def pipeline(kind: str) -> Pipeline:
    return Pipeline(
        [
            ("deskew", Deskew()),
            ("augment", Augment(kind)),
            ("normalize", Normalizer()),
            ("pca", PCA(50, random_state=0)),
            ("knn", KNNClassifier(n_neighbors=4, weights="distance")),
        ]
    )


def task_seconds(stream: list[dict]) -> collections.Counter:
    """Seconds computed by each kind of task in a task stream."""
    seconds = collections.Counter()
    for task in stream:
        for part in task["startstops"]:
            if part["action"] == "compute":
                seconds[key_split(task["key"])] += part["stop"] - part["start"]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the MNIST IDX folder (default: $MNISTDIST_DATA)")
    parser.add_argument("--n", type=int, default=60000)
    parser.add_argument("--kind", default="shift8+rotate")
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args()

    dataset = load_dataset("mnist", data_dir=args.data, train_size=args.n)
    grid = {"knn__n_neighbors": [4, 6]}
    with connect(n_workers=2, processes=False):
        t = time.perf_counter()
        with get_task_stream() as stream:
            search = {"estimator": pipeline(args.kind), "param_grid": grid, "cv": 5}
            result = neighbors_search(dataset.X_train, dataset.y_train, **search)
        wall = time.perf_counter() - t
    seconds = task_seconds(stream.data)
    busy = sum(seconds.values())
    copies = sum(s for name, s in seconds.items() if name.startswith(COPIES))
    print(f"{args.n} images, {args.kind}: {wall:.1f} s wall, workers busy {busy / wall / 2:.0%}")
    print(f"{'seconds':>8}  tasks")
    for name, s in seconds.most_common(8):
        print(f"{s:>8.2f}  {name}")
    print(f"{copies:>8.2f}  (the copies made and put through the fold's steps, all kinds)")
    print(f"best: {result.best_params} ({result.best_score:.4f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "n": args.n,
                    "kind": args.kind,
                    "wall_s": wall,
                    "copies_s": copies,
                    "task_s": dict(seconds),
                    "best_score": result.best_score,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
