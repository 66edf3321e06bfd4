import dask.array as da
import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mnistdist.errors import OptionError
from mnistdist.knn import KNNClassifier
from mnistdist.preprocess import fit_preprocessing, split_pipeline, transform_blocks


def test_split_pipeline():
    prep, prefix, knn = split_pipeline(Pipeline([("s", StandardScaler()), ("clf", KNNClassifier())]))
    assert [n for n, _ in prep.steps] == ["s"] and prefix == "clf__" and isinstance(knn, KNNClassifier)
    assert split_pipeline(KNeighborsClassifier()) [:2] == (None, "")
    assert split_pipeline(Pipeline([("clf", KNNClassifier())]))[0] is None
    with pytest.raises(OptionError):
        split_pipeline(Pipeline([("s", StandardScaler())]))


def test_fit_on_the_cluster_and_transform_blockwise(client, digits_arrays):
    X, y, _, _ = digits_arrays
    Xd = da.from_array(X, chunks=300)
    fitted = fit_preprocessing(Pipeline([("pca", PCA(n_components=5, random_state=0))]), Xd)
    out = transform_blocks(fitted, Xd)
    assert out.shape == (len(X), 5) and out.chunks[0] == Xd.chunks[0]
    np.testing.assert_allclose(out.compute(), PCA(n_components=5, random_state=0).fit(X).transform(X), atol=1e-8)
