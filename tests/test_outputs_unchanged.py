"""What mnistdist 0.1 saved still holds: its models load and predict the same labels, and
the jobs write the same numbers (``tests/fixtures/layout-0.1/README.md`` says what each file
is and how it was made)."""

import hashlib
import json
import warnings
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest

from helpers import REPO, mnistdist

SAVED = REPO / "tests" / "fixtures" / "layout-0.1"
#: The tour's numbers that vary from run to run: times, versions, the machine.
TOUR_RUN_KEYS = ("seconds", "cpu", "versions", "cluster", "generated", "scaling")


@pytest.mark.parametrize("name", ["book", "deform", "steps"])
def test_a_model_saved_by_the_old_layout_predicts_the_same_labels(name, digits_arrays):
    *_, X_test, _ = digits_arrays
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the old module paths say so
        model = joblib.load(SAVED / f"model-{name}.joblib")
    expected = np.loadtxt(SAVED / f"model-{name}-predictions.txt", dtype=int)
    np.testing.assert_array_equal(model.predict(X_test), expected)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each job on the digits with its default options, once; three at a time (each is
    mostly one interpreter's serial work)."""

    def run(args):
        out = tmp_path_factory.mktemp(args[0])
        proc = mnistdist(*args, "--dataset", "digits", "--out", out, "--quiet", timeout=600)
        assert proc.returncode == 0, proc.stderr
        return out

    jobs = {
        **{preset: ("report", "--preset", preset) for preset in ("book", "best", "deform")},
        "search": ("search",),
        "tour": ("tour",),
        "augment": ("augment",),
    }
    with ThreadPoolExecutor(3) as pool:
        return dict(zip(jobs, pool.map(run, jobs.values()), strict=True))


@pytest.mark.parametrize("preset", ["book", "best", "deform"])
def test_the_report_writes_the_same_scores_and_predictions(runs, preset):
    for name in ("cv_results.csv", "predictions.csv"):
        saved = (SAVED / f"report-{preset}-{name}").read_text()
        assert (runs[preset] / name).read_text() == saved, name


def test_the_search_writes_the_same_scores(runs):
    saved = (SAVED / "search-cv_results.csv").read_text()
    assert (runs["search"] / "cv_results.csv").read_text() == saved


def test_the_tour_finds_the_same_numbers(runs):
    tour = json.loads((runs["tour"] / "tour.json").read_text())
    for key in TOUR_RUN_KEYS:
        tour.pop(key)
    assert tour == json.loads((SAVED / "tour.json").read_text())


def test_augment_writes_the_same_files(runs):
    saved = json.loads((SAVED / "augment-sha256.json").read_text())
    digests = {
        name: hashlib.sha256((runs["augment"] / name).read_bytes()).hexdigest() for name in saved
    }
    assert digests == saved
