"""``mnistdist augment``: build an augmented training set on the cluster and save it."""

from __future__ import annotations

import time

from ..data import image_side, write_idx
from ..drawing import Request
from ..outputs import write_json
from ..preprocessing import augment_set, check_augmentation
from ..report import shift_panels, write_figures
from ..runtime import compute
from ._job_run import JobRun
from ._on_cluster import connect_as_asked, load_data


def job(run: JobRun) -> int:
    out = run.out_dir()
    with connect_as_asked(run) as client:
        dataset = load_data(run, client)
        image_side(
            dataset.X_train.shape[1]
        )  # shifting needs square images: refuse others before any work
        t = time.perf_counter()
        kind, n = run.args.kind, dataset.X_train.shape[0]
        X_aug, y_aug = augment_set(
            dataset.X_train, dataset.y_train, kind, random_state=run.args.seed
        )
        (images,) = compute(X_aug, label=f"augment ({kind}) {n} images")
        seconds = time.perf_counter() - t
    h, w = dataset.image_shape
    write_idx(out / "train-images-augmented-idx3-ubyte", images.reshape(-1, h, w))
    write_idx(out / "train-labels-augmented-idx1-ubyte", y_aug)
    names = [name for name, _ in check_augmentation(kind)]
    if kind == "shift4":
        figure, panels = "shifts.png", shift_panels(images[0])
    else:
        figure, panels = "copies.png", (images[::n][:8], ["original", *names][:8])
    write_figures(out, {figure: Request("versions_figure", panels)}, run.drawing)
    write_json(
        out / "augment.json",
        {
            "data": dataset.summary(),
            "rows": int(images.shape[0]),
            "kind": kind,
            "seed": run.args.seed,
            "order": ["original", *names],
            "seconds": round(seconds, 3),
        },
    )
    print(
        f"augment: {images.shape[0]} images ({images.nbytes / 2**20:.0f} MiB) in {seconds:.1f} s"
        f" -> {run.result_path()}"
    )
    return 0
