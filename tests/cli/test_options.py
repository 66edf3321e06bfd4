"""The parser reads a command line before any job is imported: its choices are the library's,
written out in mnistdist.cli._options, and kept equal here."""

import subprocess
import sys

import pytest

from mnistdist import benchmark, data, model_selection, neighbors, preprocessing
from mnistdist.cli import _options
from mnistdist.cli._registry import JOBS


def test_the_options_offer_the_librarys_choices():
    assert _options.DATA_ENV == data.DATA_ENV
    assert tuple(data.DATASETS) == _options.DATASETS
    assert tuple(model_selection.PRESETS) == _options.PRESETS
    assert tuple(model_selection.STRATEGIES) == _options.STRATEGIES
    assert _options.N_ITER == model_selection.N_ITER
    assert tuple(neighbors.WEIGHTS) == _options.WEIGHTS
    kinds = [*preprocessing.AUGMENTATIONS, *preprocessing.DISTORTIONS]
    assert tuple(k for k in kinds if k != "none") == _options.AUGMENT_KINDS
    assert tuple(benchmark.BENCHMARK_STRATEGIES) == _options.BENCHMARK_STRATEGIES


@pytest.mark.parametrize("job", JOBS, ids=lambda job: job.name)
def test_each_jobs_help_is_its_modules_first_line(job):
    module = sys.modules.get(job.load().__module__)
    assert module.__doc__.strip().splitlines()[0] == job.description


def test_an_option_is_refused_before_any_job_is_imported():
    code = (
        "import sys\n"
        "from mnistdist.cli._parser import build_parser\n"
        "try:\n"
        "    build_parser().parse_args(['search', '--cv', 'abc'])\n"
        "except SystemExit as exc:\n"
        "    print(exc.code, *(m in sys.modules for m in ('numpy', 'dask', 'sklearn')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["2", "False", "False", "False"]
    assert "argument --cv: 'abc' is not an integer" in proc.stderr
