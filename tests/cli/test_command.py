"""The command line read before the imports: the job and ``--out``, or None where the parser
must decide."""

import pytest

from mnistdist.cli._command import DEFAULT_OUTS, named_out
from mnistdist.cli._registry import JOBS


def test_every_job_has_its_default_out_here():
    assert {job.name: job.default_out for job in JOBS} == DEFAULT_OUTS


@pytest.mark.parametrize(
    "argv, named",
    [
        (["report"], ("report", "results")),
        (["tour", "--dataset", "digits"], ("tour", "results")),
        (["search", "--out", "x", "--resume"], ("search", "x")),
        (["search", "--out=x", "--overwrite"], ("search", "x")),
        (["search", "--out", "x", "--out", "y"], ("search", "y")),  # the last one, as argparse
        (["report", "--ou", "x"], None),  # an abbreviation: the parser's to read
        (["report", "--ov"], None),
        (["report", "--help"], None),
        (["report", "--", "x"], None),
        (["report", "--out", ""], None),
        (["nojob"], None),
        (["--version"], None),
        ([], None),
    ],
)
def test_named_out(argv, named):
    assert named_out(argv) == named
