"""``report.html``: the run's results, figures and provenance, for a person to read.

Plain HTML with the PNGs beside it and no external assets, so the output
folder can be copied or served anywhere. Its one script, inline, sorts and
filters the table of the search's candidates (:func:`cv_table`); a link can
ask for a sort and a filter in its fragment, ``report.html#sort=<column>&filter=<text>``
(``sort`` twice: descending).
"""

from __future__ import annotations

import datetime
import html
import json
import os
import pathlib

import numpy as np
from scipy.stats import rankdata

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
#cv-results th { cursor: pointer; user-select: none; white-space: nowrap; }
#cv-results th[aria-sort=ascending]::after { content: " \\25B2"; }
#cv-results th[aria-sort=descending]::after { content: " \\25BC"; }
#cv-results td { font-variant-numeric: tabular-nums; white-space: nowrap; }
.tablebox { max-height: 36em; overflow: auto; }
#cv-filter { width: 24em; padding: 0.2em; } .count { color: #555; margin-left: 1em; }
"""

#: Sorts the candidates' table by a clicked header (again: descending) and filters its rows by
#: every word typed (case-insensitive); a link's ``#sort=<column>&filter=<text>`` does the same.
_TABLE_SCRIPT = """
(function () {
  var table = document.getElementById("cv-results"), body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var filter = document.getElementById("cv-filter"), count = document.getElementById("cv-count");
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function value(row, i) {
    var cell = row.cells[i];
    return cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent;
  }
  function sortBy(th) {
    var i = th.cellIndex, ascending = th.getAttribute("aria-sort") !== "ascending";
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var numeric = rows.every(function (r) { var v = value(r, i); return v === "" || !isNaN(v); });
    var sorted = rows.slice().sort(function (a, b) {
      var x = value(a, i), y = value(b, i), d;
      if (x === "" || y === "") { d = (x === "") - (y === ""); return d; }
      d = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return (ascending ? d : -d) || a.getAttribute("data-i") - b.getAttribute("data-i");
    });
    sorted.forEach(function (r) { body.appendChild(r); });
  }
  function applyFilter() {
    var words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean), shown = 0;
    rows.forEach(function (r) {
      var text = r.textContent.toLowerCase();
      r.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
      shown += r.hidden ? 0 : 1;
    });
    count.textContent = shown + " of " + rows.length + " candidates shown";
  }
  heads.forEach(function (th) { th.addEventListener("click", function () { sortBy(th); }); });
  filter.addEventListener("input", applyFilter);
  var asked = new URLSearchParams(location.hash.slice(1));
  asked.getAll("sort").forEach(function (key) {
    heads.forEach(function (th) { if (th.getAttribute("data-key") === key) th.click(); });
  });
  if (asked.has("filter")) { filter.value = asked.get("filter"); }
  filter.dispatchEvent(new Event("input"));
  if (asked.has("sort") || asked.has("filter")) { filter.scrollIntoView(); }
})();
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


def _metric_keys(search: dict) -> list[tuple[str, str]]:
    """``(cv_results key, metric name)`` of each metric the search scored."""
    scoring = search.get("scoring", ["accuracy"])
    if "scores" in search:  # several metrics: each under its own name
        return [(name, name) for name in scoring]
    return [("score", scoring[0])]


def _metric_columns(search: dict) -> dict[str, tuple[list, list]]:
    """Each metric's means and stds by column name: the summary's, per candidate row."""
    keys = _metric_keys(search)
    if "scores" not in search:
        return {keys[0][1]: (search["mean_test_score"], search["std_test_score"])}
    return {
        name: (search["scores"][key]["mean"], search["scores"][key]["std"]) for key, name in keys
    }


def cv_table(search: dict, best: int | None = None) -> str:
    """The candidates of a search's summary as a table to sort and filter: each parameter, each
    metric's mean, std and rank (as ``cv_results``' ranks: ties share the best), halving's
    round and images; the chosen candidate (``best_index``, else ``best``) starred and its
    row marked ``best``."""
    params = search["params"]
    names = sorted({name for p in params for name in p})
    metrics = _metric_columns(search)
    halving = search.get("strategy") == "halving"
    header = [("#", "index"), *((n, f"param_{n}") for n in names)]
    if halving:
        header += [("round", "iter"), ("images", "n_resources")]
    for name in metrics:
        header += [(f"mean {name}", f"mean_test_{name}"), (f"std {name}", f"std_test_{name}"),
                   (f"rank {name}", f"rank_test_{name}")]  # fmt: skip
    ranks = {
        name: rankdata(-np.asarray(m, dtype=float), method="min")
        for name, (m, _) in metrics.items()
    }
    best = search.get("best_index", best)
    body = []
    for i, p in enumerate(params):
        cells = [_cell(f"{'★ ' if i == best else ''}{i}", i)]
        cells += [_cell("" if n not in p else _shown(p[n]), p.get(n), left=True) for n in names]
        if halving:
            cells += [_cell(search["iter"][i], search["iter"][i]),
                      _cell(search["n_resources"][i], search["n_resources"][i])]  # fmt: skip
        for name, (mean, std) in metrics.items():
            cells += [_cell(f"{mean[i]:.4f}", mean[i]), _cell(f"{std[i]:.4f}", std[i]),
                      _cell(int(ranks[name][i]), int(ranks[name][i]))]  # fmt: skip
        mark = ' class="best"' if i == best else ""
        body.append(f'<tr{mark} data-i="{i}">{"".join(cells)}</tr>')
    heads = "".join(
        f'<th data-key="{html.escape(key)}" title="sort">{html.escape(text)}</th>'
        for text, key in header
    )
    return (
        '<p><input id="cv-filter" type="search" placeholder="filter: words every row shown holds" '
        'aria-label="filter the candidates"><span id="cv-count" class="count"></span></p>'
        f'<div class="tablebox"><table id="cv-results"><thead><tr>{heads}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div><script>{_TABLE_SCRIPT}</script>"
    )


def _shown(value) -> str:
    return value if isinstance(value, str) else repr(value)


def _cell(text, value, *, left: bool = False) -> str:
    """A cell showing ``text`` that sorts by ``value`` (numbers as numbers)."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    sort = f' data-v="{value!r}"' if numeric else ""
    cls = ' class="l"' if left else ""
    return f"<td{cls}{sort}>{html.escape(str(text))}</td>"


def _grid_section(metrics: dict, mnist: bool) -> list[str]:
    search = metrics["search"]
    halving = search.get("strategy") == "halving"
    refit = dict(_metric_keys(search)).get(search.get("refit", "score"), "accuracy")
    names = [name for _, name in _metric_keys(search)]
    title = "Random search" if search.get("strategy") == "random" else "Grid search"
    reused = search.get("n_candidates_reused", 0)
    return [
        f"<h2>{title}</h2>",
        f"<p>{search['n_splits']}-fold cross-validation on the {metrics['data']['n_train']} "
        f"training images, {search['n_candidates']} candidates from "
        f"{search['n_neighbor_searches']} neighbour searches (one per fold and preprocessing "
        "setting: candidates that differ only in the KNN's parameters share them)"
        + (_halving_sentence(search) if halving else "")
        + (f", {reused} of them read back from an earlier search's journal" if reused else "")
        + (f", scored by {', '.join(names)}" if len(names) > 1 else "")
        + f". Best mean CV {html.escape(refit)} {search['best_score']:.4f}"
        + (f" (book: {BOOK_CV:.4f})." if mnist and not halving and refit == "accuracy" else ".")
        + " Click a column's header to sort by it; type words to show only the rows holding "
        "them. Every fold's scores are in <code>cv_results.csv</code>.</p>",
        _figures(metrics.get("figures", {}), "search"),
        cv_table(search, search["params"].index(metrics["best_params"])),
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
