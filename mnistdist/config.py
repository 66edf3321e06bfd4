"""mnistdist's settings, kept in dask.config under the ``mnistdist`` key.

Defaults live in ``mnistdist.yaml`` beside this file; the usual Dask ways of
overriding them apply (YAML files, ``DASK_MNISTDIST__*`` variables,
``dask.config.set``).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import dask.config
import yaml

# Read as a package resource: it must work when mnistdist runs from a zip
# shipped to workers, where there is no file path.
_DEFAULTS = yaml.safe_load(files(__package__).joinpath("mnistdist.yaml").read_text())
dask.config.update_defaults(_DEFAULTS)


def get(key: str) -> Any:
    """The setting ``mnistdist.<key>``."""
    return dask.config.get(f"mnistdist.{key}")
