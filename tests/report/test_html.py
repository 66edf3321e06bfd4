import json

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
    assert '<tr class="best">' in page
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
