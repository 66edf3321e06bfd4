"""The ``mnistdist`` command: one subcommand per job, each a thin layer that parses its
options, connects, calls the library, prints and writes its outputs.

Importing this package is cheap (the standard library alone): :func:`main` takes SIGINT
over before it imports Dask, scikit-learn or the jobs.
"""

from ._command import PROG
from ._main import main

__all__ = ["PROG", "main"]
