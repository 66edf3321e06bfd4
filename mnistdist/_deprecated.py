"""Import shims for the module paths of mnistdist 0.1's flat layout (``mnistdist.knn``, ...).

A ``model.joblib`` saved by mnistdist 0.1 names its classes by those paths
(``mnistdist.pixels.PixelRange``, ``mnistdist.knn.KNNClassifier``): each old
path still imports, as the module that now holds its names, with a
``DeprecationWarning`` that says where they live now. Old paths that are
sub-packages now (``mnistdist.data``, ``mnistdist.neighbors``,
``mnistdist.tour``, ``mnistdist.benchmark``) import as those packages.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys

#: Each old module, under ``mnistdist.``, and the private module that now holds its names.
MOVED = {
    "images": "data._images",
    "pixels": "data._pixels",
    "augment": "preprocessing._augment",
    "transformers": "preprocessing._transformers",
    "knn": "neighbors._classification",
    "fold_pairs": "neighbors._fold_pairs",
    "lower_bound": "neighbors._lower_bound",
    "deformation": "neighbors._idm",
    "rerank": "neighbors._idm_classification",
    "rerank_tasks": "neighbors._idm_tasks",
    "search": "model_selection._search",
    "halving": "model_selection._halving",
    "pipeline_tasks": "model_selection._pipeline_tasks",
    "presets": "model_selection._presets",
    "final": "model_selection._refit",
    "addresses": "runtime._addresses",
    "cluster": "runtime._cluster",
    "compute": "runtime._compute",
    "interrupts": "runtime._interrupts",
    "cpu_time": "runtime._cpu_time",
    "scaling": "runtime._forecast",
    "outputs": "outputs._files",
    "journal": "outputs._journal",
    "staging": "outputs._staging",
    "evaluate": "report._evaluation",
    "results": "report._metrics",
    "figures": "drawing._process",
    "html_report": "report._html",
    "tour_graph": "tour._graph",
    "tour_fits": "tour._fits",
    "gemm": "benchmark._gemm",
}


class _MovedModules:
    """Finds ``mnistdist.<old>`` and loads it as a copy of the module its names moved to.

    A meta path finder and loader by duck typing: importlib.abc would cost the command's
    start the import of importlib.resources.
    """

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.partition(".")
        if package != "mnistdist" or old not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        return None  # a plain module, filled in by exec_module

    def exec_module(self, module) -> None:
        import warnings

        new = "mnistdist." + MOVED[module.__name__.partition(".")[2]]
        public = new.rpartition(".")[0]
        warnings.warn(
            f"{module.__name__} is deprecated since mnistdist 0.2: import from {public}",
            DeprecationWarning,
            stacklevel=2,
        )
        target = importlib.import_module(new)
        module.__dict__.update(
            {name: value for name, value in vars(target).items() if not name.startswith("__")}
        )


def install() -> None:
    """Let the old paths import (once per process)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
