import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from mnistdist.report import render, write_report


def _metrics(dataset="mnist"):
    params = [{"n_neighbors": 3, "weights": "uniform"}, {"n_neighbors": 4, "weights": "distance"}]
    return {
        "test_accuracy_plain": 0.9714,
        "test_accuracy_augmented": 0.9763,
        "best_params": params[1],
        "search": {
            "params": params,
            "mean_test_score": [0.97, 0.9716],
            "std_test_score": [0.001, 0.002],
            "n_splits": 5,
            "n_candidates": 2,
            "n_neighbor_searches": 5,
            "best_score": 0.9716,
        },
        "most_confused_pair": [3, 5],
        "seconds": {"load": 1.0, "search_neighbors": 30.0},
        "data": {
            "dataset": dataset,
            "source": "idx:/data <mnist>",
            "n_train": 60000,
            "n_test": 10000,
            "n_train_augmented": 300000,
        },
        "versions": {"dask": "1.0"},
        "cluster": {
            "scheduler": "tcp://127.0.0.1:8786",
            "workers": [{"address": "tcp://127.0.0.1:1", "threads": 1, "memory_limit": 100}],
        },
        "generated": "2026-11-23T00:00:00+00:00",
        "figures": {
            "search": {
                "filename": "search_heatmap.png",
                "title": "Grid search",
                "caption": "caption <b>",
            }
        },
    }


def test_report_shows_results_figures_and_provenance(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(_metrics()))
    write_report(tmp_path)
    page = (tmp_path / "report.html").read_text()
    for text in (
        "97.63%",
        "0.9714",
        "0.9763",
        "0.9716",
        "n_neighbors=4",
        "3 and 5",
        'src="search_heatmap.png"',
        "dask-report.html",
        "tcp://127.0.0.1:8786",
        "search neighbors",
    ):
        assert text in page, text
    assert "caption &lt;b&gt;" in page and "&lt;mnist&gt;" in page  # escaped
    assert '<tr class="best" data-i="1"><td data-v="1">★ 1</td>' in page
    assert "Classification tour" not in page


def test_worker_threads_say_their_memory_is_the_process():
    metrics = _metrics()
    assert "threads of the job's process" not in render(metrics)
    metrics["cluster"]["in_process"] = True
    assert "threads of the job's process" in render(metrics)


def test_book_columns_only_for_mnist():
    assert "0.9714</td><td>0.9714" in render(_metrics("mnist"))
    assert "<td>-</td>" in render(_metrics("digits"))


def test_tour_joins_as_its_own_section(tmp_path):
    tour = {
        "never5_cv_accuracy": [0.91125, 0.90855, 0.90915],
        "sgd5_roc_auc": 0.96,
        "ovo_n_estimators": 45,
        "seconds": {"detector": 1.5},
        "data": {"dataset": "mnist", "source": "idx:/data"},
        "versions": {"scikit-learn": "1.9.1"},
        "figures": {
            "tour_roc.png": {"filename": "tour_roc.png", "title": "ROC curves", "caption": "c"}
        },
    }
    (tmp_path / "tour.json").write_text(json.dumps(tour))
    only_tour = (write_report(tmp_path)).read_text()
    assert "Classification tour" in only_tour and "Grid search" not in only_tour
    assert (
        "[0.91125, 0.90855, 0.90915]</td><td>[0.91125, 0.90855, 0.90915]" in only_tour
        and 'src="tour_roc.png"' in only_tour
    )
    assert (
        '<td class="l">ovo_n_estimators</td><td>45</td>' in only_tour
        and "scikit-learn 1.9.1" in only_tour
    )
    (tmp_path / "metrics.json").write_text(json.dumps(_metrics()))
    both = write_report(tmp_path).read_text()
    assert both.index("Grid search") < both.index("Classification tour")


def test_beyond_the_book_says_what_each_preset_searched():
    chosen = {
        "test_accuracy_chosen": 0.99,
        "chosen": {"steps": ["deskew: Deskew()"], "n_train": 60000},
    }
    pages = {
        preset: render({**_metrics(), **chosen, "preset": preset})
        for preset in ("best", "deform", "custom")
    }
    assert "cosine distance" in pages["best"] and "image distortion model" not in pages["best"]
    assert "image distortion model" in pages["deform"] and "cosine" not in pages["deform"]
    assert "cosine" not in pages["custom"] and "image distortion" not in pages["custom"]
    assert all("Deskew()" in page for page in pages.values())


CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install -y chromium)"
)
METRICS = ("accuracy", "balanced_accuracy", "f1_macro")


def _random_search(n: int = 12) -> dict:
    """A random search's summary as a job writes it: three metrics, f1_macro chose."""
    rng = np.random.default_rng(0)
    params = [
        {
            "knn__n_neighbors": int(rng.integers(1, 10)),
            "knn__weights": ["uniform", "distance"][i % 2],
            **({"pca__n_components": 16} if i % 3 else {}),
        }
        for i in range(n)
    ]
    scores = {m: {"mean": list(rng.uniform(0.9, 1, n)), "std": list(rng.uniform(0, 0.02, n))}
              for m in METRICS}  # fmt: skip
    best = int(np.argmax(scores["f1_macro"]["mean"]))
    return {
        **_metrics(),
        "best_params": params[best],
        "search": {
            **_metrics()["search"],
            "strategy": "random",
            "scoring": list(METRICS),
            "refit": "f1_macro",
            "params": params,
            "scores": scores,
            "mean_test_score": scores["f1_macro"]["mean"],
            "std_test_score": scores["f1_macro"]["std"],
            "best_index": best,
            "best_score": scores["f1_macro"]["mean"][best],
            "n_candidates": n,
        },
    }


def _chromium(tmp_path, *args: str) -> str:
    """Headless Chromium, offline, with a profile of its own; its standard output."""
    profile = tmp_path / "profile"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _shown_rows(dom: str) -> list[int]:
    """The candidates' rows in the order the page shows them, hidden ones left out."""
    rows = re.findall(r"<tr([^>]*)data-i=\"(\d+)\"([^>]*)>", dom)
    return [int(i) for before, i, after in rows if "hidden" not in before + after]


def test_the_table_has_every_candidate_and_metric_with_the_chosen_one_marked():
    metrics = _random_search()
    page = render(metrics)
    search = metrics["search"]
    assert len(_shown_rows(page)) == 12
    for metric in METRICS:
        assert f'data-key="mean_test_{metric}"' in page and f'data-key="rank_test_{metric}"' in page
    best = search["best_index"]
    assert f'<tr class="best" data-i="{best}"><td data-v="{best}">★ {best}</td>' in page
    assert page.count('class="best"') == 1 and "Best mean CV f1_macro" in page
    assert "<h2>Random search</h2>" in page
    # Nothing is fetched: no address in a source, a link or a stylesheet.
    assert not re.search(r"(src|href)=\"[a-z]+://|url\(|@import", page)


@needs_chromium
def test_the_table_sorts_and_filters_in_headless_chromium(tmp_path):
    metrics = _random_search()
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    url = write_report(tmp_path).as_uri()
    search = metrics["search"]
    f1 = search["scores"]["f1_macro"]["mean"]
    # Two clicks on the f1_macro header sort by it, descending; typing "distance" filters.
    asked = "#sort=mean_test_f1_macro&sort=mean_test_f1_macro&filter=distance"
    dom = _chromium(tmp_path, "--dump-dom", url + asked)
    distance = [i for i, p in enumerate(search["params"]) if p["knn__weights"] == "distance"]
    assert _shown_rows(dom) == sorted(distance, key=lambda i: -f1[i])
    assert f"{len(distance)} of 12 candidates shown" in dom
    # One click on a text column sorts it ascending, rows without the parameter last.
    dom = _chromium(tmp_path, "--dump-dom", url + "#sort=param_pca__n_components")
    shown = _shown_rows(dom)
    with_pca = [i for i in shown if "pca__n_components" in search["params"][i]]
    assert len(shown) == 12 and shown[: len(with_pca)] == sorted(with_pca)
    shot = tmp_path / "report-table.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", url + asked)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
