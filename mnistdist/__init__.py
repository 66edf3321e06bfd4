"""mnistdist: the classification chapter of Hands-On Machine Learning, on a Dask cluster.

Sub-packages, one domain each, from the lowest floor up (a package imports only from
those listed before it, and only their public names):

- ``errors``           the typed, one-line errors
- ``config``           settings in dask.config (``mnistdist.yaml``, ``mnistdist-schema.yaml``)
- ``drawing``          figures from plain arrays (numpy, matplotlib) and the process drawing them
- ``runtime``          connecting to a cluster, computing graphs, Ctrl-C, CPU time, the forecast
- ``outputs``          atomic files, the journal behind ``--resume``, staged results folders
- ``data``             MNIST (an IDX folder or OpenML) and 8x8 digits as chunked Dask arrays
- ``preprocessing``    augmented copies, deskewing and blur, as scikit-learn transformers
- ``neighbors``        the exact neighbour search, the KNN classifier, IDM and its re-ranking
- ``model_selection``  the cross-validated search, successive halving, presets, refitting
- ``report``           what the predictions say, the figures, ``metrics.json``, ``report.html``
- ``tour``             the chapter's other experiments, every fit a task on the cluster
- ``benchmark``        the book's search against mnistdist's, timed, and the GEMM limit
- ``cli``              the ``mnistdist`` command: one thin job per subcommand

Importing ``mnistdist`` alone imports none of them (the command takes Ctrl-C over
first); each registers mnistdist's settings with dask.config as it is imported, but
``drawing``, which imports nothing of Dask so that its process starts at once.
"""

from ._deprecated import install as _install_deprecated_paths

_install_deprecated_paths()


def __getattr__(name: str):
    # The version is read from the installed metadata only when asked for: importing
    # importlib.metadata would delay the command's first instant, before it takes Ctrl-C over.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("mnistdist")
        except PackageNotFoundError:  # running from a source tree that is not installed
            return "0+unknown"
    raise AttributeError(f"module 'mnistdist' has no attribute {name!r}")
