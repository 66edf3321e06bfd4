"""The ``mnistdist`` command's parser: a subcommand per job of the registry, with its options."""

from __future__ import annotations

from . import _options
from ._command import PROG, Parser
from ._registry import JOBS


def build_parser() -> Parser:
    """The command's parser; each subcommand's ``job`` default is its :class:`Job`."""
    parser = Parser(
        prog=PROG,
        description="Hands-On ML's MNIST classification chapter as jobs on a Dask cluster.",
        epilog="Run 'mnistdist JOB --help' for a job's options.",
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="JOB", required=True, parser_class=Parser
    )
    for job in JOBS:
        sub = subparsers.add_parser(job.name, help=job.help, description=job.description)
        _options.add_common_arguments(sub, default_out=job.default_out)
        if job.grid:
            _options.add_grid_arguments(sub, presets=job.grid == "presets")
        if job.add_arguments is not None:
            job.add_arguments(sub)
        sub.set_defaults(job=job)
    return parser
