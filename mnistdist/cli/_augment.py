"""``mnistdist augment``: build the shift-augmented training set on the cluster and save it."""

from __future__ import annotations

import time

from ..data import image_side, write_idx
from ..outputs import write_json
from ..preprocessing import FOUR_SHIFTS, augment_shifts
from ..report import save, shifts_figure
from ..runtime import compute
from ._job_run import JobRun
from ._on_cluster import connect_as_asked, load_data

#: The job's line in ``mnistdist --help``.
HELP = "build the training set plus its four one-pixel shifts (5x) and save it as IDX files"


def job(run: JobRun) -> int:
    out = run.out_dir()
    with connect_as_asked(run) as client:
        dataset = load_data(run, client)
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
        f" -> {run.result_path()}"
    )
    return 0
