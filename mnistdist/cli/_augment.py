"""``mnistdist augment``: build the shift-augmented training set on the cluster and save it."""

from __future__ import annotations

import argparse
import time

from jobs import common
from mnistdist.augment import FOUR_SHIFTS, augment_shifts
from mnistdist.compute import compute
from mnistdist.data import write_idx
from mnistdist.figures import save, shifts_figure
from mnistdist.images import image_side
from mnistdist.outputs import write_json

NAME = "augment"
HELP = "build the training set plus its four one-pixel shifts (5x) and save it as IDX files"
DEFAULT_OUT = "augmented"
GRID = None


def job(args: argparse.Namespace) -> int:
    out = common.out_dir(args)
    with common.cluster(args) as client:
        dataset = common.load(args, client)
        image_side(
            dataset.X_train.shape[1]
        )  # shifting needs square images: refuse others before any work
        t = time.perf_counter()
        X_aug, y_aug = augment_shifts(dataset.X_train, dataset.y_train)
        (images,) = compute(X_aug, label=f"shift-augment {dataset.X_train.shape[0]} images")
        seconds = time.perf_counter() - t
    h, w = dataset.image_shape
    write_idx(out / "train-images-augmented-idx3-ubyte", images.reshape(-1, h, w))
    write_idx(out / "train-labels-augmented-idx1-ubyte", y_aug)
    save(shifts_figure(images[0]), out / "shifts.png")
    write_json(
        out / "augment.json",
        {
            "data": dataset.summary(),
            "rows": int(images.shape[0]),
            "shifts": FOUR_SHIFTS,
            "order": ["original", *FOUR_SHIFTS],
            "seconds": round(seconds, 3),
        },
    )
    print(
        f"augment: {images.shape[0]} images ({images.nbytes / 2**20:.0f} MiB) in {seconds:.1f} s"
        f" -> {common.result_path(args)}"
    )
    return 0
