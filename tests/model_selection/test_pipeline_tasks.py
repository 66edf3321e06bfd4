import dask.array as da
import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mnistdist.errors import OptionError
from mnistdist.model_selection import _pipeline_tasks
from mnistdist.model_selection._pipeline_tasks import (
    Preprocessing,
    apply_stateless_before,
    fit_preprocessing,
    reference_blocks,
    split_pipeline,
    transform_blocks,
)
from mnistdist.neighbors import KNNClassifier
from mnistdist.preprocessing import Augment, Deskew, shift_images


def test_split_pipeline():
    prep, prefix, knn = split_pipeline(
        Pipeline([("s", StandardScaler()), ("clf", KNNClassifier())])
    )
    assert (
        [n for n, _ in prep.steps] == ["s"] and prefix == "clf__" and isinstance(knn, KNNClassifier)
    )
    assert split_pipeline(KNeighborsClassifier())[:2] == (None, "")
    assert split_pipeline(Pipeline([("clf", KNNClassifier())]))[0] is None
    with pytest.raises(OptionError):
        split_pipeline(Pipeline([("s", StandardScaler())]))


def test_pipeline_split_at_augment():
    steps = [
        ("deskew", Deskew()),
        ("skip", "passthrough"),
        ("augment", Augment("shift8")),
        ("pca", PCA(4)),
        ("knn", KNNClassifier()),
    ]
    prep, _, _ = split_pipeline(Pipeline(steps))
    assert [n for n, _ in prep.before.steps] == ["deskew"] and prep.augment.kind == "shift8"
    assert [n for n, _ in prep.after.steps] == ["pca"] and prep.copies_per_image == 8
    assert [n for n, _ in prep.steps] == ["deskew", "augment", "pca"]
    only = split_pipeline(Pipeline([("augment", Augment("rotate")), ("knn", KNNClassifier())]))[0]
    assert only.before is None and only.after is None and only.copies_per_image == 2
    with pytest.raises(OptionError, match="one Augment step"):
        split_pipeline(Pipeline([("a", Augment()), ("b", Augment()), ("knn", KNNClassifier())]))
    with pytest.raises(OptionError, match="unknown augmentation"):
        split_pipeline(Pipeline([("a", Augment("mirror")), ("knn", KNNClassifier())]))


def test_reference_rows_are_originals_then_copies(client, digits_arrays):
    X, y, _, _ = digits_arrays
    Xd = da.from_array(X[:300].astype(np.uint8), chunks=100)
    prep = Preprocessing.from_steps(
        [("deskew", Deskew()), ("augment", Augment("shift4")), ("pca", PCA(6, random_state=0))]
    )
    fitted = fit_preprocessing(prep, Xd, y[:300])
    ref = reference_blocks(fitted, Xd).compute()
    assert ref.shape == (5 * 300, 6)
    straight = Deskew().fit_transform(X[:300])
    pca = PCA(6, random_state=0).fit(straight)  # fitted on the originals only
    np.testing.assert_allclose(ref[:300], pca.transform(straight), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(
        ref[300:600], pca.transform(shift_images(straight, -1, 0)), rtol=1e-4, atol=1e-3
    )  # "left"
    np.testing.assert_allclose(
        transform_blocks(fitted, Xd).compute(), ref[:300], rtol=1e-5, atol=1e-5
    )  # queries: no copies


def test_stateless_steps_are_applied_once(digits):
    prep = Preprocessing.from_steps(
        [("deskew", Deskew()), ("augment", Augment("shift4")), ("pca", PCA(6))]
    )
    rest, X = apply_stateless_before(prep, digits.X_train)
    assert rest.before is None and rest.augment is prep.augment and X.name.startswith("deskew-")
    stateful = Preprocessing.from_steps([("scale", StandardScaler()), ("pca", PCA(6))])
    assert apply_stateless_before(stateful, digits.X_train) == (stateful, digits.X_train)


def test_stateless_steps_transform_the_rows_asked_and_only_those_added(client, digits):
    prep = Preprocessing.from_steps(
        [("deskew", Deskew()), ("augment", Augment("shift4")), ("pca", PCA(6))]
    )
    X = digits.X_train
    first, rows = np.arange(0, 900, 6), np.arange(0, 900, 2)  # a round, then the next
    rest, small = apply_stateless_before(prep, X, first)
    assert [n for n, _ in rest.steps] == ["augment", "pca"] and small.shape == (
        len(first),
        X.shape[1],
    )
    small = small.persist()
    _, big = apply_stateless_before(prep, X, rows, (first, small))
    np.testing.assert_allclose(
        big.compute(), Deskew().fit_transform(X.compute()[rows]), rtol=1e-6, atol=1e-6
    )
    added = apply_stateless_before(prep, X, np.setdiff1d(rows, first))[1]
    assert {n for n in big.dask.layers if n.startswith("deskew-")} == {small.name, added.name}
    # Rows that do not hold the earlier ones are all transformed anew.
    _, other = apply_stateless_before(prep, X, np.arange(1, 900, 2), (first, small))
    assert small.name not in other.dask.layers


def test_fit_on_the_cluster_and_transform_blockwise(client, digits_arrays):
    X, _y, _, _ = digits_arrays
    Xd = da.from_array(X, chunks=300)
    fitted = fit_preprocessing(Pipeline([("pca", PCA(n_components=5, random_state=0))]), Xd)
    out = transform_blocks(fitted, Xd)
    assert out.shape == (len(X), 5) and out.chunks[0] == Xd.chunks[0]
    np.testing.assert_allclose(
        out.compute(), PCA(n_components=5, random_state=0).fit(X).transform(X), atol=1e-8
    )


def test_a_chunk_larger_than_a_transform_is_transformed_in_pieces_the_same(monkeypatch):
    # Pieces of 7 rows: a chunk of 200 takes 29, the last of 4 rows.
    monkeypatch.setattr(_pipeline_tasks, "TRANSFORM_ROWS", 7)
    calls = []
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 30)).astype(np.float32)
    steps = Pipeline([("scale", StandardScaler()), ("pca", PCA(6, random_state=0))]).fit(X)
    transform = steps.transform
    monkeypatch.setattr(steps, "transform", lambda b: calls.append(len(b)) or transform(b))
    out = transform_blocks(Preprocessing(after=steps), da.from_array(X, chunks=200))
    out = out.compute(scheduler="sync")
    assert max(calls) == 7 and (calls.count(7), calls.count(4)) == (2 * 28, 2)
    np.testing.assert_array_equal(out, transform(X))
    with pytest.raises(ValueError, match="NaN or infinite"):  # in the last piece
        X[-1, 0] = np.nan
        transform_blocks(Preprocessing(after=steps), da.from_array(X, chunks=200)).compute()


class _Poison(StandardScaler):
    """A step that makes one value NaN, as a user's own step might."""

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X, poison=False)

    def transform(self, X, poison=True):
        out = np.array(super().transform(X), dtype=np.float64)
        out[0, 0] = np.nan if poison else out[0, 0]
        return out


@pytest.mark.parametrize("where", ["input", "step"])
def test_a_nan_from_the_rows_or_a_step_stops_the_transform(client, digits_arrays, where):
    """The steps' own checks are off inside a transform task: the result's check stands for them."""
    X = digits_arrays[0][:200].astype(np.float64)
    steps = [("scale", StandardScaler()), ("pca", PCA(4, random_state=0))]
    if where == "step":
        steps.insert(1, ("poison", _Poison()))
    else:
        X[5, 3] = np.nan
    fitted = Preprocessing(before=Pipeline(steps).fit(np.nan_to_num(X)))
    with pytest.raises(ValueError, match=r"steps \(scale, .*pca\) gave values that are NaN"):
        transform_blocks(fitted, da.from_array(X, chunks=100)).compute()
