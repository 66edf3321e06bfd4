"""The ``mnistdist`` command: one subcommand per job."""

from __future__ import annotations

from collections.abc import Sequence

from jobs import augment, benchmark, common, report, search, tour

JOBS = (report, search, tour, augment, benchmark)


def build_parser() -> common.Parser:
    parser = common.Parser(
        prog=common.PROG,
        description="Hands-On ML's MNIST classification chapter as jobs on a Dask cluster.",
        epilog="Run 'mnistdist JOB --help' for a job's options.",
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="JOB", required=True, parser_class=common.Parser
    )
    for job in JOBS:
        sub = subparsers.add_parser(
            job.NAME, help=job.HELP, description=job.__doc__.strip().splitlines()[0]
        )
        job.add_arguments(sub)
        sub.set_defaults(job=job.job)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.run(args.job, args)


if __name__ == "__main__":
    raise SystemExit(main())
