"""A job's logging: to its log file in the output folder, and to stderr with ``-v``.

The library logs and never prints; Python warnings (scikit-learn's among them) and
Distributed's own loggers are routed into the same log for the job's span.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import sys
from collections.abc import Iterator

#: The job's log in its results folder: Dask's and scikit-learn's warnings, the library's steps.
LOG = "mnistdist.log"

_FILE_HANDLERS: list[logging.Handler] = []


def log_to(path: pathlib.Path) -> None:
    """Send the job's log to ``path`` too, from now on."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    _FILE_HANDLERS.append(handler)


def close_log_files() -> None:
    for handler in _FILE_HANDLERS:
        logging.getLogger().removeHandler(handler)
        handler.close()
    _FILE_HANDLERS.clear()


@contextlib.contextmanager
def job_logging(verbose: bool) -> Iterator[None]:
    """The job's logging: to its log file (:meth:`JobRun.out_dir`), and to stderr only with ``-v``.

    Python warnings (scikit-learn's among them) become log records, and
    Distributed's loggers, which write to stderr themselves, are routed here
    for the job's span; everything is put back afterwards.
    """
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    own = [logging.StreamHandler(sys.stderr) if verbose else logging.NullHandler()]
    own[0].setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root.handlers = own  # NullHandler: no last-resort printing of warnings to stderr
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("mnistdist").setLevel(logging.INFO)
    routed = {}
    # Distributed gives some loggers (per its "logging" setting) stderr handlers of their own.
    names = [
        name
        for name, logger in logging.root.manager.loggerDict.items()
        if name.split(".")[0] in ("distributed", "bokeh", "tornado")
        and isinstance(logger, logging.Logger)
        and (logger.handlers or name in ("distributed", "bokeh", "tornado"))
    ]
    for name in {"distributed", "bokeh", "tornado", *names}:
        logger = logging.getLogger(name)
        routed[name] = (logger.level, list(logger.handlers), logger.propagate)
        logger.handlers, logger.propagate = [], True
        if name in ("distributed", "bokeh", "tornado"):
            logger.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for name, (level, handlers, propagate) in routed.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.handlers, logger.propagate = handlers, propagate
        if not verbose:
            # A client whose scheduler is gone goes on logging its reconnection attempts
            # from its own thread after the job has returned; the job's line said it all.
            logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        close_log_files()
        root.setLevel(saved_root[0])
        root.handlers = saved_root[1]
        logging.getLogger("mnistdist").setLevel(logging.NOTSET)
