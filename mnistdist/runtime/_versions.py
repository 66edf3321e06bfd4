"""The packages a cluster's processes must agree on, and mnistdist's code shipped where missing.

On a cluster started elsewhere, :func:`prepare` checks that the client,
scheduler and workers run the same versions of the packages that matter
(tasks are pickled by one process and run by another), and ships
mnistdist's own code to workers that do not have it.
"""

from __future__ import annotations

import logging
import pathlib
import tempfile
import zipfile

from distributed import Client

from ..errors import ClusterError

log = logging.getLogger(__name__)

#: The packages whose versions a run records.
PACKAGES = (
    "mnistdist",
    "dask",
    "distributed",
    "dask-ml",
    "scikit-learn",
    "numpy",
    "scipy",
    "matplotlib",
    "bokeh",
)


#: Those that must agree between the client and every process of the cluster:
#: tasks are pickled by one and run by the other (only the client draws, with
#: matplotlib and bokeh). mnistdist itself must agree where it is installed;
#: where it is not, the client's code is shipped.
MUST_AGREE = ("python", *(name for name in PACKAGES if name not in ("matplotlib", "bokeh")))

#: What a process without mnistdist installed reports for it.
NOT_INSTALLED = "not installed"


class VersionMismatchError(ClusterError):
    """The cluster's processes run other versions than the client, or cannot import mnistdist.

    Exit code 2: the cluster, as given, cannot run the job; nothing was started on it.
    """

    exit_code = 2


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a run depends on, in this process."""
    return _probe()()["versions"]


def _probe():
    """A function that reports versions and whether mnistdist imports, in whatever process runs it.

    It is made here as a closure so that it is pickled by value: it runs on
    workers that do not have mnistdist.
    """
    packages, missing = PACKAGES, NOT_INSTALLED

    def probe(dask_worker=None, dask_scheduler=None):
        import importlib.util
        import platform
        from importlib.metadata import PackageNotFoundError, version

        out = {"python": platform.python_version()}
        for name in packages:
            try:
                out[name] = version(name)
            except PackageNotFoundError:
                out[name] = missing
        try:
            importable = importlib.util.find_spec("mnistdist") is not None
        except (ImportError, ValueError):
            importable = False
        return {"versions": out, "mnistdist_importable": importable}

    return probe


def _mismatches(mine: dict[str, str], remote: dict[str, dict[str, str]]) -> list[str]:
    """The packages of ``MUST_AGREE`` whose versions elsewhere differ from ``mine``, as phrases.

    mnistdist differs only where it is installed (elsewhere its code is shipped)."""
    problems = []
    for name in MUST_AGREE:
        differing = {
            where: v.get(name)
            for where, v in remote.items()
            if v.get(name) != mine[name]
            and not (name == "mnistdist" and v.get(name) == NOT_INSTALLED)
        }
        if differing:
            found = ", ".join(f"{where} {v}" for where, v in sorted(differing.items()))
            problems.append(f"{name} (client {mine[name]}; {found})")
    return problems


def _import_probe():
    """A function that imports mnistdist's task modules and reports what failed, or None."""

    def probe(dask_worker=None):
        import importlib

        try:
            for name in ("mnistdist.neighbors", "mnistdist.model_selection"):
                importlib.import_module(name)
        except Exception as exc:  # whatever stops it, reported by the client
            return f"{type(exc).__name__}: {exc}"
        return None

    return probe


def ship_code(client: Client) -> None:
    """Send mnistdist's own code to the scheduler and every worker, present and future.

    The package goes as a zip through ``Client.upload_file``, which also
    reaches workers that join later.
    """
    package = pathlib.Path(__file__).resolve().parents[1]  # mnistdist/, from runtime/
    with tempfile.TemporaryDirectory() as tmp:
        archive = pathlib.Path(tmp) / "mnistdist.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(package.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    zf.write(path, pathlib.Path("mnistdist") / path.relative_to(package))
        client.upload_file(str(archive))


def prepare(client: Client) -> list[str]:
    """Make a cluster started elsewhere ready for mnistdist; return what was done, as lines.

    One probe of the scheduler and every worker tells both the package
    versions (which must agree) and whether mnistdist imports there (where
    not, its code is shipped, and then imported once to be sure it works).

    Raises
    ------
    VersionMismatchError
        Naming each package whose versions differ, the versions and the
        processes' addresses (their hosts); or the workers that cannot
        import mnistdist even with its code shipped.
    """
    probe = _probe()
    workers = client.run(probe)
    remote = {
        f"scheduler {client.scheduler.address}": client.run_on_scheduler(probe),
        **{f"worker {addr}": report for addr, report in workers.items()},
    }
    problems = _mismatches(
        package_versions(), {where: report["versions"] for where, report in remote.items()}
    )
    if problems:
        raise VersionMismatchError(
            "package versions differ between the client and the cluster: " + "; ".join(problems)
        )
    missing = [addr for addr, report in workers.items() if not report["mnistdist_importable"]]
    if not missing:
        return []
    ship_code(client)
    log.info("shipped mnistdist to %d workers that did not have it", len(missing))
    failed = {
        addr: error for addr, error in client.run(_import_probe(), workers=missing).items() if error
    }
    if failed:
        found = "; ".join(f"worker {addr}: {error}" for addr, error in sorted(failed.items()))
        raise VersionMismatchError(f"workers cannot import mnistdist's shipped code: {found}")
    return [f"shipped mnistdist's code to {len(missing)} workers that do not have it installed"]
