"""Clusters started for one job by Dask's own deployers: dask-jobqueue, Kubernetes, dask-gateway.

A *cluster spec* names a cluster manager class and its arguments, as
dask-labextension's ``labextension.factory`` does (``module``, ``class``,
``args``, ``kwargs``), with the workers wanted: ``scale: N``, or
``adapt: {minimum: M, maximum: N}``; and, optionally, ``timeout``: how long
to wait for the first workers (a batch queue may hold them; default
``mnistdist.no-workers-timeout``). It is a YAML file, a ``dask.config`` key
(``mnistdist.clusters.<name>`` may be named by ``<name>`` alone), or one of
the specs shipped in ``mnistdist/runtime/clusters/`` by name (``slurm``,
``pbs``, ``kubernetes``, ``gateway``).

:func:`deployed` starts the cluster, asks for its workers, and closes it when
the block ends, on an error or Ctrl-C too, so that no batch job, pod or
gateway cluster outlives the job. The deployers are optional extras
(``pip install 'mnistdist[slurm]'``); a spec whose deployer is missing is
refused before anything starts, naming the extra to install.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import pathlib
import signal
import threading
from collections.abc import Callable, Iterator
from importlib.resources import files

import dask.config
import yaml
from dask.utils import parse_timedelta

from .. import config
from ..errors import ClusterError, OptionError
from ._interrupts import held_interrupts

log = logging.getLogger(__name__)

#: The extra that installs each deployer's package (``pip install 'mnistdist[EXTRA]'``).
EXTRAS = {"dask_jobqueue": "slurm", "dask_kubernetes": "kubernetes", "dask_gateway": "gateway"}
#: The keys a spec may have.
SPEC_KEYS = ("module", "class", "args", "kwargs", "scale", "adapt", "timeout")


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """A cluster manager to start for a job: its class, its arguments, the workers wanted.

    Attributes
    ----------
    source : str
        Where the spec came from (a file, a ``dask.config`` key, a shipped name).
    module, name : str
        The class ``module.name`` (``dask_jobqueue``, ``SLURMCluster``).
    args : tuple
    kwargs : dict
        Its arguments.
    scale : int or None
        Workers to ask for (``cluster.scale(n)``).
    adapt : dict or None
        ``cluster.adapt(**adapt)`` bounds, instead of ``scale``.
    timeout : float or None
        Seconds to wait for the first workers (None: ``mnistdist.no-workers-timeout``).
    """

    source: str
    module: str
    name: str
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    scale: int | None = None
    adapt: dict | None = None
    timeout: float | None = None

    @property
    def workers_wanted(self) -> int:
        """Workers to wait for before the job starts: ``scale``, or adapt's minimum."""
        return self.scale if self.scale is not None else int(self.adapt["minimum"])

    @property
    def extra(self) -> str:
        """The extra of mnistdist that installs the deployer."""
        top = self.module.partition(".")[0]
        if top == "dask_jobqueue" and self.name.startswith("PBS"):
            return "pbs"
        return EXTRAS.get(top, "")

    def describe(self) -> str:
        how = f"scale {self.scale}" if self.scale is not None else f"adapt {self.adapt}"
        return f"{self.module}.{self.name} from {self.source} ({how})"


def shipped_specs() -> dict[str, str]:
    """The specs that come with mnistdist, by name: their YAML text."""
    folder = files(__package__).joinpath("clusters")
    return {
        entry.name.removesuffix(".yaml"): entry.read_text()
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    }


def read_cluster_spec(spec: str) -> ClusterSpec:
    """The :class:`ClusterSpec` that ``spec`` names; :class:`OptionError` if it cannot work.

    Parameters
    ----------
    spec : str
        A YAML file; else a ``dask.config`` key (``mnistdist.clusters.<spec>``
        first, then ``spec`` itself); else a shipped spec's name.
    """
    shown = f"--cluster {spec!r}"
    if not spec.strip():
        raise OptionError(f"{shown}: empty; name a YAML file, a dask.config key or a shipped spec")
    path = pathlib.Path(spec).expanduser()
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise OptionError(f"{shown}: cannot be read ({exc})") from None
        except yaml.YAMLError as exc:
            raise OptionError(f"{shown}: not YAML ({' '.join(str(exc).split())})") from None
        return _parsed(data, shown, os.fspath(path))
    named = (config.get("clusters") or {}).get(spec)
    if isinstance(named, dict):
        return _parsed(named, shown, f"dask.config mnistdist.clusters.{spec}")
    value = dask.config.get(spec, None)
    if isinstance(value, dict):
        return _parsed(value, shown, f"dask.config {spec}")
    shipped = shipped_specs()
    if spec in shipped:
        return _parsed(yaml.safe_load(shipped[spec]), shown, f"mnistdist's {spec} spec")
    if path.suffix in (".yaml", ".yml") or os.sep in spec:
        raise OptionError(f"{shown}: no such file")
    raise OptionError(
        f"{shown}: no such file, dask.config key or shipped spec "
        f"(shipped: {', '.join(sorted(shipped))})"
    )


def _parsed(data, shown: str, source: str) -> ClusterSpec:
    """A spec's mapping, checked and turned into a :class:`ClusterSpec`."""
    if not isinstance(data, dict):
        raise OptionError(f"{shown}: expected a mapping with 'class' and 'kwargs'")
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise OptionError(f"{shown}: unknown keys {unknown}; a spec has {', '.join(SPEC_KEYS)}")
    module, _, name = str(data.get("class") or "").rpartition(".")
    module = data.get("module") or module
    if not module or not name:
        raise OptionError(
            f"{shown}: 'class' must name a cluster class, e.g. dask_jobqueue.SLURMCluster"
        )
    args, kwargs = data.get("args") or [], data.get("kwargs") or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise OptionError(f"{shown}: 'args' must be a list and 'kwargs' a mapping")
    scale, adapt = data.get("scale"), data.get("adapt")
    if (scale is None) == (adapt is None):
        raise OptionError(
            f"{shown}: give the workers wanted: 'scale: N' or 'adapt: {{minimum, maximum}}'"
        )
    if scale is not None and (type(scale) is not int or scale < 1):
        raise OptionError(f"{shown}: scale must be a positive integer, got {scale!r}")
    if adapt is not None and not _valid_adapt(adapt):
        raise OptionError(
            f"{shown}: adapt must be {{minimum: M, maximum: N}} with 1 <= M <= N "
            "(the job waits for its first M workers)"
        )
    timeout = data.get("timeout")
    try:
        seconds = None if timeout is None else parse_timedelta(timeout)
    except (ValueError, TypeError, KeyError):
        raise OptionError(
            f"{shown}: timeout {timeout!r} is not a duration ('10 minutes', 600)"
        ) from None
    return ClusterSpec(source, module, name, tuple(args), kwargs, scale, adapt, seconds)


def _valid_adapt(adapt) -> bool:
    if not isinstance(adapt, dict) or set(adapt) - {"minimum", "maximum"}:
        return False
    low, high = adapt.get("minimum"), adapt.get("maximum")
    return type(low) is int and type(high) is int and 1 <= low <= high


def deployer_class(spec: ClusterSpec) -> type:
    """The spec's cluster class, imported; :class:`OptionError` naming the extra if missing."""
    try:
        with _keeping_sigint():
            module = importlib.import_module(spec.module)
    except ImportError as exc:
        missing = exc.name or spec.module
        extra = f": pip install 'mnistdist[{spec.extra}]'" if spec.extra else ""
        raise OptionError(
            f"--cluster {spec.source}: {spec.module}.{spec.name} needs {missing}, "
            f"which is not installed{extra}"
        ) from None
    except Exception as exc:  # the module itself is broken: say so, in one line
        raise OptionError(
            f"--cluster {spec.source}: importing {spec.module} failed: {type(exc).__name__}: {exc}"
        ) from None
    cls = getattr(module, spec.name, None)
    if not isinstance(cls, type):
        raise OptionError(f"--cluster {spec.source}: {spec.module} has no class {spec.name}")
    return cls


@contextlib.contextmanager
def _keeping_sigint() -> Iterator[None]:
    """SIGINT's handler as it was before the block: importing dask_jobqueue sets one that
    exits the process at once (its runner module's), which would skip closing the cluster."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is not handler and handler is not None:
            signal.signal(signal.SIGINT, handler)


@contextlib.contextmanager
def _ignoring_sigint() -> Iterator[None]:
    """SIGINT ignored in the block, by this process and the commands it starts.

    The job is ending whichever way, and the close runs the batch system's own
    commands (``scancel``, ``qdel``) in the job's process group: a Ctrl-C would
    reach them too, and a killed ``scancel`` leaves its jobs queued. An ignored
    signal stays ignored in the programs a process starts; a handler does not.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def deployed(spec: ClusterSpec, report: Callable[[str], object] | None = None) -> Iterator[object]:
    """The spec's cluster, started, asked for its workers, and closed when the block ends.

    ``report`` is told, in a line each, when it has started and when it closes.

    A Ctrl-C while it starts or scales is held until it can be closed
    cleanly; its close is never cut short (a cut close would leave batch
    jobs, pods or a gateway cluster behind).

    Raises
    ------
    OptionError
        If the deployer is not installed.
    ClusterError
        If the cluster manager cannot be made (its arguments, its batch system).
    """
    cls = deployer_class(spec)
    log.info("starting %s", spec.describe())
    cluster = None
    try:
        with held_interrupts():
            try:
                cluster = cls(*spec.args, **spec.kwargs)
                if spec.scale is not None:
                    cluster.scale(spec.scale)
                else:
                    cluster.adapt(**spec.adapt)
            except Exception as exc:
                raise ClusterError(
                    f"could not start {spec.module}.{spec.name} from {spec.source}: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        report = report or log.info
        report(f"started {spec.describe()}")
        yield cluster
    finally:
        if cluster is not None:
            with held_interrupts(raise_after=False), _ignoring_sigint():
                (report or log.info)(f"closing {spec.describe()}")
                _close(cluster, spec)


def _close(cluster, spec: ClusterSpec) -> None:
    """Close a deployed cluster (its workers' jobs, pods or gateway cluster); failures logged."""
    try:
        cluster.close()
        log.info("closed %s", spec.describe())
    except Exception:
        log.exception("closing %s failed: its workers may be left running", spec.describe())
