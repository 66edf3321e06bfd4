"""``report.html``: the run's results, figures and provenance, for a person to read.

Plain HTML with the PNGs beside it, no scripts and no external assets, so the
output folder can be copied or served anywhere.
"""

from __future__ import annotations

import datetime
import html
import json
import os
import pathlib

from ..outputs import write_text
from ._figures import FigureRef

#: The book's test accuracies for the same models (Hands-On ML, chapter 3).
BOOK_PLAIN, BOOK_AUGMENTED, BOOK_CV = 0.9714, 0.9763, 0.9716


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
tr.best { background: #eaf6ea; font-weight: 600; }
.big { font-size: 1.3em; } figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.92em; } code { background: #f5f5f5; padding: 0 0.2em; }
"""


def _table(
    header: list[str], rows: list[list], *, best_row: int | None = None, left: int = 1
) -> str:
    th = "".join(
        f'<th class="l">{html.escape(h)}</th>' if i < left else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for r, row in enumerate(rows):
        cls = ' class="best"' if r == best_row else ""
        tds = "".join(
            f'<td class="l">{html.escape(str(v))}</td>'
            if i < left
            else f"<td>{html.escape(str(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><tr>{th}</tr>{''.join(body)}</table>"


def _figure(fig: FigureRef) -> str:
    return (
        f'<figure><img src="{html.escape(fig.filename)}" alt="{html.escape(fig.title)}">'
        f"<figcaption><b>{html.escape(fig.title)}.</b> {html.escape(fig.caption)}</figcaption>"
        "</figure>"
    )


#: The book's numbers for the tour, where the issue of this project quotes them.
BOOK_TOUR = {
    "never5_cv_accuracy": [0.91125, 0.90855, 0.90915],
    "sgd5_cv_accuracy": [0.95035, 0.96035, 0.9604],
    "sgd5_confusion_matrix": [[53892, 687], [1891, 3530]],
    "sgd5_precision": 0.837,
    "sgd5_recall": 0.651,
    "sgd5_f1": 0.733,
    "sgd5_roc_auc": 0.9605,
    "forest5_roc_auc": 0.9983,
    "multilabel_f1_macro": 0.976,
    "sgd_cv_accuracy": "about 0.87",
    "sgd_scaled_cv_accuracy": "about 0.90",
}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.5g}"  # the book quotes up to five digits
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _figures(figures: dict, *keys: str) -> str:
    chosen = keys or tuple(figures)
    return "".join(_figure(FigureRef(**figures[k])) for k in chosen if k in figures)


def _accuracy_rows(metrics: dict, mnist: bool) -> list[list]:
    data, chosen = metrics["data"], metrics.get("chosen")
    book_knn = metrics.get("book_params", metrics["best_params"])
    knn_text = ", ".join(f"{k}={v!r}" for k, v in sorted(book_knn.items()))
    rows = [
        [
            f"KNN({knn_text}) on the training set",
            data["n_train"],
            f"{metrics['test_accuracy_plain']:.4f}",
            f"{BOOK_PLAIN:.4f}" if mnist else "-",
        ],
        [
            f"KNN({knn_text}) on the shift-augmented set",
            data["n_train_augmented"],
            f"{metrics['test_accuracy_augmented']:.4f}",
            f"{BOOK_AUGMENTED:.4f}" if mnist else "-",
        ],
    ]
    if chosen:
        rows.append(
            [
                "the pipeline chosen by cross-validation",
                chosen["n_train"],
                f"{metrics['test_accuracy_chosen']:.4f}",
                "-",
            ]
        )
    return rows


#: What each preset's search tried, by preset; any other says only what was chosen.
_BEYOND = {
    "best": (
        "<p>The search tried deskewing, Gaussian blur, augmentation of the training folds (the "
        "book's four one-pixel shifts, eight-way shifts, two-pixel shifts, small rotations, "
        "shifts and rotations together), a cosine distance (rows normalised) and PCA sizes, with "
        "the KNN's parameters. Copies of an image are only ever added to the training side of a "
        "fold, never to the fold that scores them. The chosen pipeline, refit on all training "
        "images:</p>"
    ),
    "deform": (
        "<p>Each image's nearest training images by Euclidean distance, after deskewing, were "
        "re-ranked on the cluster by the image distortion model: a distance that lets every "
        "pixel move a pixel or two, comparing the gradients around it. Cross-validation chose "
        "the warp range and the KNN's parameters. The chosen pipeline, refit on all training "
        "images:</p>"
    ),
    "elastic": (
        "<p>As for the deformation-aware search, each image's nearest training images after "
        "deskewing were re-ranked by the image distortion model; the ten nearest were also "
        "compared with ten elastically distorted copies of themselves, drawn on the workers "
        "from each image's number and a seed, never stored. Cross-validation chose whether to "
        "use the copies and the KNN's parameters. The chosen pipeline, refit on all training "
        "images:</p>"
    ),
}
_CHOSEN = "<p>The chosen pipeline, refit on all training images:</p>"


def _headline(metrics: dict) -> tuple[str, list[str]]:
    """The headline accuracy, and the 'beyond the book' section when a pipeline was chosen."""
    n_test, chosen = metrics["data"]["n_test"], metrics.get("chosen")
    if not chosen:
        best = ", ".join(f"{k}={v!r}" for k, v in sorted(metrics["best_params"].items()))
        return (
            f'<p class="big">Test accuracy <b>{metrics["test_accuracy_augmented"]:.2%}</b> with '
            f"<code>KNeighborsClassifier({html.escape(best)})</code> on the shift-augmented "
            f"training set ({n_test} test images, never seen by the search).</p>"
        ), []
    headline = (
        f'<p class="big">Test accuracy <b>{metrics["test_accuracy_chosen"]:.2%}</b> with the '
        f"pipeline chosen by cross-validation ({n_test} test images, never seen by the search; "
        "the book's two models, whose parameters are fixed in advance, are evaluated on them "
        "beside it).</p>"
    )
    steps = "".join(f"<li><code>{html.escape(step)}</code></li>" for step in chosen["steps"])
    beyond = [
        "<h2>Beyond the book</h2>",
        _BEYOND.get(metrics.get("preset"), _CHOSEN),
        f"<ol>{steps}</ol>",
        _figures(metrics.get("figures", {}), "deskew", "wrong"),
    ]
    return headline, beyond


def _grid_section(metrics: dict, mnist: bool) -> list[str]:
    search = metrics["search"]
    halving = search.get("strategy") == "halving"
    rows = [
        [", ".join(f"{k}={v}" for k, v in sorted(p.items())), f"{m:.4f}", f"{s:.4f}"]
        for p, m, s in zip(
            search["params"], search["mean_test_score"], search["std_test_score"], strict=False
        )
    ]
    header = ["candidate", "mean CV accuracy", "std"]
    if halving:  # a row per candidate and round: say which round, on how many images
        rounds = zip(search["iter"], search["n_resources"], rows, strict=True)
        rows = [[i, n, *row] for i, n, row in rounds]
        header = ["round", "images", *header]
    return [
        "<h2>Grid search</h2>",
        f"<p>{search['n_splits']}-fold cross-validation on the {metrics['data']['n_train']} "
        f"training images, {search['n_candidates']} candidates from "
        f"{search['n_neighbor_searches']} neighbour searches (one per fold and preprocessing "
        "setting: candidates that differ only in the KNN's parameters share them)"
        + (_halving_sentence(search) if halving else "")
        + f". Best mean CV accuracy {search['best_score']:.4f}"
        + (f" (book: {BOOK_CV:.4f})." if mnist and not halving else ".")
        + "</p>",
        _figures(metrics.get("figures", {}), "search"),
        _table(
            header,
            rows,
            best_row=search.get("best_index", search["params"].index(metrics["best_params"])),
            left=3 if halving else 1,
        ),
    ]


def _halving_sentence(search: dict) -> str:
    rounds = search["halving"]
    sizes = ", ".join(
        f"{c} on {n}" for c, n in zip(rounds["n_candidates"], rounds["n_resources"], strict=True)
    )
    return (
        f", by successive halving: {rounds['n_iterations']} rounds of candidates on images "
        f"({sizes}), each keeping the best third (see docs/halving.md)"
    )


def _run_section(metrics: dict) -> list[str]:
    cluster = metrics["cluster"]
    seconds = [[phase.replace("_", " "), f"{s:.1f}"] for phase, s in metrics["seconds"].items()]
    peaks = cluster.get("peak_memory_bytes", {})
    workers = [
        [
            w["address"],
            w["threads"],
            w.get("memory_limit") or "-",
            f"{peaks[w['address']] / 2**20:.0f} MiB" if w["address"] in peaks else "-",
        ]
        for w in cluster["workers"]
    ]
    versions = [[name, v] for name, v in sorted(metrics["versions"].items())]
    return [
        "<h2>Run</h2>",
        _table(["phase", "seconds"], seconds),
        f"<p>Cluster: scheduler <code>{html.escape(cluster['scheduler'])}</code>, "
        f"{len(cluster['workers'])} workers{_in_process(cluster)}. "
        "Dask's task-level profile of this run: "
        '<a href="dask-report.html">dask-report.html</a>.</p>',
        _table(["worker", "threads", "memory limit", "peak memory"], workers),
        _table(["package", "version"], versions),
    ]


def _in_process(cluster: dict) -> str:
    if not cluster.get("in_process"):
        return ""
    return ", threads of the job's process (each row's peak memory is the process's)"


def _scaling_section(scaling: dict | None, job: str) -> list[str]:
    """The job's scaling forecast (``scaling`` in its JSON): a sentence, a table, its figure."""
    if not scaling:
        return []
    measured = scaling["measured"]
    rows = [[row["workers"], f"{row['seconds']:.1f}"] for row in scaling["forecast"]]
    caption = (
        "Forecast wall time max(work / N, span) + overheads against N workers; the star is "
        "this run's measured time. See docs/scaling.md for the model and its limits."
    )
    return [
        f"<h3>Scaling forecast ({html.escape(job)})</h3>",
        f"<p>Work {scaling['work_s']:.1f} s (the job's own process "
        f"{scaling['client_s']:.1f} s of it), span {scaling['span_s']:.1f} s, mostly "
        f"<code>{html.escape(scaling['span_dominated_by'])}</code>, overheads "
        f"{scaling['overhead_s']:.1f} s. Measured: {measured['wall_s']:.1f} s on "
        f"{measured['workers']} workers.</p>",
        _table(["workers", "forecast seconds"], rows),
        _figure(FigureRef(scaling["figure"], "Forecast against workers", caption))
        if scaling.get("figure")
        else "",
    ]


def _search_sections(metrics: dict) -> list[str]:
    figures = metrics.get("figures", {})
    mnist = metrics["data"]["dataset"] == "mnist"
    chosen = metrics.get("chosen")
    pair = metrics["most_confused_pair"]
    headline, beyond = _headline(metrics)
    return [
        "<h2>Result</h2>",
        headline,
        _table(["model", "training rows", "test accuracy", "book"], _accuracy_rows(metrics, mnist)),
        *beyond,
        *_grid_section(metrics, mnist),
        f"<h2>Error analysis ({'chosen' if chosen else 'augmented'} model, test set)</h2>",
        f"<p>The most confused pair is <b>{pair[0]} and {pair[1]}</b>.</p>",
        _figures(
            figures,
            "confusion",
            "errors",
            "pair",
            "precision_recall",
            *([] if chosen else ["wrong"]),
        ),
        "<h2>Data</h2>",
        _figures(figures, "samples", "shifts"),
        *_run_section(metrics),
        *_scaling_section(metrics.get("scaling"), "report"),
    ]


def _tour_sections(tour: dict) -> list[str]:
    source = tour.get("data", {}).get("source", "")
    sklearn = tour.get("versions", {}).get("scikit-learn", "?")
    mnist = tour.get("data", {}).get("dataset") == "mnist"
    rows = [
        [key, _fmt(value), _fmt(BOOK_TOUR[key]) if mnist else "-"]
        for key, value in tour.items()
        if key in BOOK_TOUR
    ]
    other = [
        [key, _fmt(value)]
        for key, value in tour.items()
        if key not in BOOK_TOUR
        and key not in ("seconds", "figures", "data", "versions", "config", "scaling", "cpu")
    ]
    seconds = [[part, f"{s:.1f}"] for part, s in tour["seconds"].items()]
    cpu = tour.get("cpu")
    cpu_line = (
        f"<p>CPU time: the job's process {cpu['client_s']:.1f} s, the workers "
        f"{cpu['workers_s']:.1f} s (the job's process's share "
        f"{100 * cpu['client_share']:.1f}%).</p>"
        if cpu
        else ""
    )
    return [
        '<h2 id="tour">Classification tour</h2>',
        "<p>The chapter's other experiments, with every fit run as tasks on the cluster: "
        "a 5-detector and its precision/recall trade-off, ROC curves, multiclass strategies, "
        "error analysis, multilabel and multioutput classification "
        f"({html.escape(source)}, scikit-learn {html.escape(sklearn)}).</p>",
        _table(["number", "mnistdist", "book"], rows),
        _figures(tour.get("figures", {})),
        _table(["number", "value"], other),
        _table(["part", "seconds"], seconds),
        cpu_line,
        *_scaling_section(tour.get("scaling"), "tour"),
    ]


def render(metrics: dict | None = None, tour: dict | None = None) -> str:
    """The report's HTML from ``metrics.json`` (the main job), ``tour.json`` (the tour) or both."""
    generated = (metrics or tour or {}).get("generated") or datetime.datetime.now(
        datetime.UTC
    ).isoformat(timespec="seconds")
    data = (metrics or tour or {}).get("data", {})
    sections = [
        "<h1>mnistdist report</h1>",
        f'<p class="sub">{html.escape(data.get("dataset", ""))} from '
        f"{html.escape(data.get('source', ''))}, generated {html.escape(generated)}</p>",
    ]
    if metrics:
        sections += _search_sections(metrics)
    if tour:
        sections += _tour_sections(tour)
    body = "\n".join(sections)
    head = f'<meta charset="utf-8"><title>mnistdist report</title><style>{_STYLE}</style>'
    return f'<!doctype html>\n<html lang="en"><head>{head}</head>\n<body>\n{body}\n</body></html>\n'


def write_report(out_dir: str | os.PathLike) -> pathlib.Path:
    """(Re)write ``report.html`` from the results in ``out_dir``, atomically."""
    out = pathlib.Path(out_dir)
    parts = {}
    for name in ("metrics", "tour"):
        path = out / f"{name}.json"
        parts[name] = json.loads(path.read_text()) if path.exists() else None
    write_text(out / "report.html", render(parts["metrics"], parts["tour"]))
    return out / "report.html"
