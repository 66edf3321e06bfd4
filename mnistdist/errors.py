"""The typed exceptions of mnistdist.

Every error a user can cause (a bad file, a bad option, an unreachable
cluster) is one of these, with a one-line message that names what is wrong.
The command line prints that line and exits non-zero; library callers catch
the type.
"""


class MnistDistError(Exception):
    """Base class: an error whose message is meant for the user as is."""

    exit_code = 1


class DataError(MnistDistError, ValueError):
    """A data source is missing, malformed or inconsistent."""


class OptionError(MnistDistError, ValueError):
    """An option or parameter value cannot work (empty grid, cv < 2, ...)."""

    exit_code = 2


class ClusterError(MnistDistError, RuntimeError):
    """The Dask cluster cannot be reached or is not usable."""


class OutputError(MnistDistError, OSError):
    """The output folder cannot be used."""
