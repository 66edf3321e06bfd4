"""The ``mnistdist`` command: one subcommand per job.

A job is a module with ``NAME``, ``HELP``, ``DEFAULT_OUT`` (its ``--out``), ``GRID``
(its grid-search options: ``"presets"``, ``"book"`` for the book's grid alone, or None),
optionally ``add_arguments(parser)`` for options of its own, and ``job(args)``, which
returns the exit code.
"""

from __future__ import annotations

from collections.abc import Sequence

from jobs import augment, benchmark, options, report, runner, search, tour

JOBS = (report, search, tour, augment, benchmark)


def build_parser() -> options.Parser:
    parser = options.Parser(
        prog=options.PROG,
        description="Hands-On ML's MNIST classification chapter as jobs on a Dask cluster.",
        epilog="Run 'mnistdist JOB --help' for a job's options.",
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="JOB", required=True, parser_class=options.Parser
    )
    for job in JOBS:
        sub = subparsers.add_parser(
            job.NAME, help=job.HELP, description=job.__doc__.strip().splitlines()[0]
        )
        options.add_common_arguments(sub, default_out=job.DEFAULT_OUT)
        if job.GRID:
            options.add_grid_arguments(sub, presets=job.GRID == "presets")
        if hasattr(job, "add_arguments"):
            job.add_arguments(sub)
        sub.set_defaults(job=job.job)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return runner.run(args.job, args)


if __name__ == "__main__":
    raise SystemExit(main())
