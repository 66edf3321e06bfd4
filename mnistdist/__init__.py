"""mnistdist: the classification chapter of Hands-On Machine Learning, on a Dask cluster.

Modules, one idea each:

- ``data``        MNIST (IDX folder or OpenML) and 8x8 digits, checked, as chunked Dask arrays
- ``augment``     one-pixel shifts of images, and the lazy 5x augmented training set
- ``neighbors``   exact k-nearest-neighbour search in row blocks, in NumPy and on Dask
- ``knn``         the scikit-learn KNN classifier built on it, and its vote
- ``preprocess``  a pipeline's preprocessing, fitted and applied on the cluster
- ``search``      cross-validated grid search, one neighbour search per fold, scored by dask-ml
- ``final``       the chosen model refit and evaluated on the test set
- ``figures``     the error-analysis figures
- ``report``      the HTML report
- ``benchmark``   the book's way against mnistdist's, timed on the same folds
- ``cluster``     connecting to a Dask cluster, or starting a LocalCluster
- ``outputs``     atomic output files
- ``config``      settings in dask.config
- ``errors``      the typed, one-line errors
"""

from importlib.metadata import PackageNotFoundError, version

from . import config  # noqa: F401  (registers mnistdist's dask.config defaults)

try:
    __version__ = version("mnistdist")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
