"""mnistdist: the classification chapter of Hands-On Machine Learning, on a Dask cluster.

Modules, one idea each:

- ``data``            MNIST (IDX folder or OpenML) and 8x8 digits, checked, as chunked Dask arrays
- ``images``          image geometry: the side of rows of flat square images
- ``augment``         shifted and rotated copies of images, and the ``Augment`` pipeline step
- ``transformers``    deskewing and Gaussian blur as scikit-learn transformers
- ``neighbors``       exact k-nearest-neighbors search in row blocks, in NumPy and on Dask
- ``knn``             the scikit-learn KNN classifier built on it, and its vote
- ``lower_bound``     exact search screened by a principal-component lower bound (test sets)
- ``fold_pairs``      the CV search's neighbours, each fold pair's distances computed once
- ``deformation``     the image distortion model's distance between images
- ``rerank``          a KNN classifier that re-ranks Euclidean candidates by that distance
- ``rerank_tasks``    that re-ranking as tasks on the cluster
- ``pipeline_tasks``  a pipeline's preprocessing as Dask tasks, fitted and applied on the cluster
- ``search``          cross-validated grid search, one neighbors search per fold, dask-ml scoring
- ``halving``         successive halving over the same grid, round by round on the cluster
- ``presets``         the named searches: the book's grid and the ones beyond it
- ``final``           the chosen model refit and evaluated on the test set
- ``results``         the report's records: predictions table and metrics
- ``evaluate``        accuracy, confusion, per-class precision and recall of predictions
- ``figures``         the report's and the tour's figures (matplotlib, no pyplot)
- ``html_report``     report.html from the results in an output folder
- ``tour``            the chapter's other experiments, part by part
- ``tour_graph``      the tour as Dask tasks, every group in flight at once
- ``tour_fits``       the tour's fits split by fold, class, pair, tree chunk, block of images
- ``cpu_time``        CPU seconds of the job's process and of the workers
- ``benchmark``       the book's way against mnistdist's, timed on the same folds
- ``gemm``            the GEMM limit: the cluster's float32 matrix-product rate
- ``scaling``         each job's tasks recorded, and its wall time forecast on N workers
- ``cluster``         connecting to a Dask cluster, or starting a LocalCluster
- ``addresses``       scheduler addresses, checked before connecting
- ``interrupts``      Ctrl-C to the job alone, once; the cluster's processes ignore it
- ``staging``         results folders as transactions: a staging folder swapped into place
- ``pixels``          the saved model's check of its input pixels (0-255)
- ``compute``         running graphs on the current client, and reporting their progress
- ``journal``         finished neighbors searches on disk, so an interrupted job can resume
- ``outputs``         atomic output files, and each job's result files
- ``config``          settings in dask.config
- ``errors``          the typed, one-line errors
"""

from importlib.metadata import PackageNotFoundError, version

from . import config  # noqa: F401  (registers mnistdist's dask.config defaults)

try:
    __version__ = version("mnistdist")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
