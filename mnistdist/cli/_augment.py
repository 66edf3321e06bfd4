"""``mnistdist augment``: build an augmented training set on the cluster and save it."""

from __future__ import annotations

import argparse
import time

from ..data import image_side, write_idx
from ..outputs import write_json
from ..preprocessing import AUGMENTATIONS, DISTORTIONS, augment_set, check_augmentation
from ..report import save, shifts_figure, versions_figure
from ..runtime import compute
from ._job_run import JobRun
from ._on_cluster import connect_as_asked, load_data

#: The job's line in ``mnistdist --help``.
HELP = (
    "build the training set plus its copies (default: the four one-pixel shifts, 5x) "
    "and save it as IDX files"
)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{text} is not a seed in [0, 2**63)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--kind`` and ``--seed``: which copies, and the distorted ones' seed."""
    group = parser.add_argument_group("augmentation")
    group.add_argument(
        "--kind",
        choices=[k for k in [*AUGMENTATIONS, *DISTORTIONS] if k != "none"],
        default="shift4",
        help="the copies of each image: shifts, rotations, or elastic/affine distortions "
        "(elastic4: four elastic copies) (default: shift4, the book's)",
    )
    group.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seed of the distorted copies: copy c of image i is a function of (i, c, seed) "
        "(default: 0)",
    )


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
        save(shifts_figure(images[0]), out / "shifts.png")
    else:
        save(versions_figure(images[::n][:8], ["original", *names][:8]), out / "copies.png")
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
