"""Results folders as transactions: a run writes beside ``--out`` and swaps its folder into place.

A run writes every output into a staging folder, ``.<name>.staging`` beside
the results folder ``<name>``, and only once it has finished swaps that
folder into place (the old one is renamed aside, the new one renamed in, the
old one deleted). So a results folder always holds one whole run: the
previous one until the new one has finished, then the new one.

The run holds the folder's lock (:mod:`._lock`) from before :func:`begin`
until after :func:`commit` or :func:`abandon`: the staging folder belongs to
that run, and no other run reads or deletes it meanwhile.

* ``--out`` is resolved once, symlinks included (:func:`check_out`): the
  results land in a link's target, and the link stays.
* A fresh run starts its staging folder with what the results folder already
  holds, so jobs can share one (the tour joins the report's), unless that
  folder holds this job's results: then it is refused without ``overwrite``,
  and with it the new run starts empty (the folder is replaced whole). The
  staging folder is made under a temporary name and renamed once filled.
* An interrupted or failed run leaves its staging folder where it holds
  finished work (the journal, or the job's finished results), for
  ``resume``; a run that finished nothing leaves nothing behind.
* ``resume`` continues the staging folder; with none, it starts a new run
  that reuses the results folder's journal (and replaces the folder whole).
* ``overwrite`` discards an unfinished staging folder too.
* At the commit every file and folder is flushed to disk before the swap; a
  swap that cannot complete puts the previous results back and keeps the
  finished ones in the staging folder, and says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import tempfile
import uuid

from ..errors import OptionError, OutputError
from ..runtime import held_interrupts
from ._files import atomic_path, sync_tree, write_text
from ._journal import JOURNAL_FILE as JOURNAL
from ._journal import check_journal

#: Which job wrote each file of a results folder that jobs share: ``{file: job}``.
OWNERS = ".mnistdist-owners.json"
#: The jobs' log (``mnistdist.cli``'s), which a job joining a folder appends to: copied, not linked.
_LOG = "mnistdist.log"


def _owners(folder: pathlib.Path) -> dict[str, str]:
    try:
        owners = json.loads((folder / OWNERS).read_text())
    except (OSError, ValueError):
        return {}
    return owners if isinstance(owners, dict) else {}


def staging_path(out: str | os.PathLike) -> pathlib.Path:
    """The staging folder of the results folder ``out``."""
    out = pathlib.Path(out)
    return out.with_name(f".{out.name}.staging")


def _replaced_path(out: pathlib.Path) -> pathlib.Path:
    """Where the previous results wait, during a swap, to be deleted."""
    return out.with_name(f".{out.name}.replaced")


def check_out(out: str | os.PathLike) -> pathlib.Path:
    """``out`` as an absolute path with every symlink resolved, refused if it cannot be a
    results folder of its own.

    A symlinked ``--out`` is resolved here, once: the run writes beside the
    link's target and swaps its folder in there, and the link stays.

    Raises
    ------
    OptionError
        When ``out`` is empty, or is the current folder or one holding it
        (swapping it would move the folder the user is working in).
    OutputError
        When ``out`` exists and is not a folder.
    """
    text = os.fspath(out)
    if not text.strip():
        raise OptionError("--out is empty: name a folder for the results")
    if "\0" in text:
        raise OptionError(f"--out {text!r} contains a NUL character")
    path = pathlib.Path(os.path.realpath(os.path.abspath(text)))
    cwd = pathlib.Path(os.path.realpath(os.getcwd()))
    if path == cwd or path in cwd.parents:
        raise OptionError(
            f"--out {text} is the current folder or holds it: name a folder of its own"
        )
    try:
        is_dir, exists = path.is_dir(), os.path.lexists(path)
    except OSError as exc:
        raise OutputError(f"output folder {text}: {exc.strerror or exc}") from None
    if exists and not is_dir:
        raise OutputError(f"output path {text} is not a folder")
    return path


def recover(out: pathlib.Path) -> None:
    """Finish a swap that a crash cut between its two renames; drop half-made staging folders.

    The previous results are renamed aside only once the staging folder is
    complete, so if they are aside and the results folder is missing, the
    staging folder is the finished run. The caller holds the folder's lock:
    a staging folder still being filled under its temporary name is a dead run's.
    """
    for half in out.parent.glob(f".{out.name}.staging.*.tmp"):
        shutil.rmtree(half, ignore_errors=True)
    replaced, staging = _replaced_path(out), staging_path(out)
    if not replaced.exists():
        return
    if not out.exists():
        os.rename(staging if staging.is_dir() else replaced, out)
    shutil.rmtree(replaced, ignore_errors=True)


def _copy_into(src: pathlib.Path, dst: pathlib.Path, names: list[str] | None = None) -> None:
    """Fill ``dst`` with ``src``'s files (``names`` of them only, if given): hard links
    (outputs are replaced, never edited).

    The journal and the log are copied: SQLite edits its file in place, and a
    job appends to the log it finds.
    """

    def link_or_copy(a: str, b: str) -> None:
        if os.path.basename(a) not in (JOURNAL, _LOG):
            with contextlib.suppress(OSError):
                os.link(a, b)
                return
        shutil.copy2(a, b)

    if names is None:
        shutil.copytree(src, dst, copy_function=link_or_copy, dirs_exist_ok=True, symlinks=True)
        return
    for name in names:
        if (src / name).is_dir() and not (src / name).is_symlink():
            shutil.copytree(src / name, dst / name, copy_function=link_or_copy, symlinks=True)
        elif os.path.lexists(src / name):
            link_or_copy(str(src / name), str(dst / name))


def _others_files(out: pathlib.Path, job: str | None) -> list[str]:
    """The files of ``out`` that other jobs wrote (its owners' list says), which a run of
    ``job`` that replaces its own results keeps; none in a folder with no such list."""
    return [
        name
        for name, owner in _owners(out).items()
        if job is not None and owner != job and os.path.lexists(out / name)
    ]


def _make_staging(out: pathlib.Path, staging: pathlib.Path, fill) -> None:
    """Make the staging folder whole or not at all: filled under a temporary name, then renamed."""
    tmp = out.with_name(f".{out.name}.staging.{uuid.uuid4().hex[:12]}.tmp")
    tmp.mkdir()  # not mkdtemp: the results folder gets the umask's usual mode
    try:
        fill(tmp)
        sync_tree(tmp)
        os.rename(tmp, staging)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _copy_journal(src: pathlib.Path, dst: pathlib.Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copy2(src, tmp)


def begin(
    out: str | os.PathLike,
    *,
    results: tuple[str, ...],
    overwrite: bool = False,
    resume: bool = False,
    dataset: str | None = None,
    job: str | None = None,
) -> pathlib.Path:
    """Start (or, with ``resume``, continue) a run's staging folder for ``out``; return it.

    The caller holds the folder's lock (:func:`lock_folder`).

    Parameters
    ----------
    out : path
        The results folder.
    results : tuple of str
        Files whose presence in ``out`` means it holds this job's results.
    overwrite, resume : bool
        What to do with results or an unfinished run already there.
    dataset : str, optional
        The run's dataset: a journal to resume from must hold searches on it only.
    job : str, optional
        The job that runs: where it replaces its own results in a folder that jobs
        share, the other jobs' files (the folder's owners' list names them) stay.

    Returns
    -------
    pathlib.Path
        The staging folder, created and writable.

    Raises
    ------
    OptionError, OutputError
        For an unusable ``out``, results or an unfinished run there without
        ``overwrite`` or ``resume``, or a journal to resume from that is
        damaged, not mnistdist's or another dataset's.
    """
    if overwrite and resume:
        raise OutputError("--overwrite and --resume exclude each other")
    out = check_out(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        recover(out)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    staging = staging_path(out)
    found = [name for name in results if (out / name).exists()]
    _check_existing(out, staging, found, overwrite=overwrite, resume=resume)
    if resume:
        for journal in (staging / JOURNAL, out / JOURNAL):
            if journal.exists():  # the one a resumed run reads: refused now, if unusable
                check_journal(journal, dataset=dataset)
                break
    try:
        if not staging.exists():
            _make_staging(out, staging, lambda tmp: _fill(out, tmp, found, resume, job))
        with tempfile.TemporaryFile(dir=staging):  # os.access says yes to root on a read-only mount
            pass
    except OSError as exc:
        raise OutputError(f"output folder {out} is not writable: {exc.strerror or exc}") from None
    return staging


def _fill(out: pathlib.Path, tmp: pathlib.Path, found: list, resume: bool, job) -> None:
    """A new staging folder's first files: all of ``out``'s where the job joins it; where it
    replaces its own results there, the other jobs' files (and, to resume, the journal)."""
    if not out.is_dir():
        return
    if not found:  # joining a folder of other jobs' results
        _copy_into(out, tmp)
        return
    others = _others_files(out, job)
    if others:
        _copy_into(out, tmp, others)
        (tmp / OWNERS).write_text(json.dumps({name: _owners(out)[name] for name in others}))
    if resume and (out / JOURNAL).is_file():  # its own results replaced, reusing its work
        _copy_journal(out / JOURNAL, tmp / JOURNAL)


def _check_existing(out, staging, found, *, overwrite: bool, resume: bool) -> None:
    """Refuse results or an unfinished run already there unless told what to do with them.

    ``--overwrite`` discards an unfinished run at once (it holds no results),
    but never the finished results in ``out``: :func:`commit` replaces those.
    """
    if staging.exists() and not resume:
        if not overwrite:
            raise OutputError(
                f"an unfinished run is in {staging}; "
                "pass --resume to finish it or --overwrite to discard it"
            )
        shutil.rmtree(staging)
    if found and not (overwrite or resume):
        raise OutputError(
            f"output folder {out} already holds results ({', '.join(found)}); "
            "pass --resume to finish an interrupted run or --overwrite to replace them"
        )


def commit(out: str | os.PathLike, *, job: str | None = None) -> pathlib.Path:
    """Swap the finished staging folder into place as ``out``; return ``out``.

    ``job``: the files the run added are recorded as that job's in the folder's
    owners' list, so that another job replacing its own results keeps them.

    Every file and folder of the staging folder is flushed to disk first,
    and the parent folder after the swap, so a crash of the machine leaves
    the previous results or the new ones, whole.

    Raises
    ------
    OutputError
        When the swap cannot complete: the previous results are put back,
        and the line says where the finished ones are kept (the staging folder).
    """
    out = pathlib.Path(os.path.abspath(out))
    staging, replaced = staging_path(out), _replaced_path(out)
    try:
        if job is not None:
            _record_owners(staging, job)
        sync_tree(staging)
        with held_interrupts(raise_after=False):  # the run has finished: never stop between renames
            _swap(out, staging, replaced)
        sync_tree(out.parent, files=False, recursive=False)
    except OSError as exc:
        raise OutputError(
            f"could not move the finished results into {out} ({exc.strerror or exc}); "
            f"they are kept in {staging}"
        ) from None
    shutil.rmtree(replaced, ignore_errors=True)
    return out


def _record_owners(staging: pathlib.Path, job: str) -> None:
    """Each file of the staging folder that has no owner yet is ``job``'s."""
    owners = _owners(staging)
    for entry in staging.iterdir():
        if entry.name != OWNERS and not entry.name.startswith(".") and entry.name not in owners:
            owners[entry.name] = job
    write_text(staging / OWNERS, json.dumps(owners, indent=1, sort_keys=True) + "\n")


def _swap(out: pathlib.Path, staging: pathlib.Path, replaced: pathlib.Path) -> None:
    """The two renames; the previous results put back where the second one fails."""
    aside = os.path.lexists(out)
    if aside:
        os.rename(out, replaced)
    try:
        os.rename(staging, out)
    except OSError:
        if aside:
            with contextlib.suppress(OSError):
                os.rename(replaced, out)
        raise


def abandon(out: str | os.PathLike, results: tuple[str, ...] = (JOURNAL,)) -> pathlib.Path | None:
    """After a failed run: keep its staging folder if it holds finished work, else delete it.

    Finished work is the journal (where the job keeps one: ``JOURNAL_FILE``
    in ``results``) or any of the job's ``results``: a job that fails after
    writing them (or whose commit failed) loses nothing.

    Returns
    -------
    pathlib.Path or None
        The journal kept for ``resume``, else the staging folder kept for its
        finished results, else None (the folder was deleted).
    """
    staging = staging_path(os.path.abspath(out))
    if JOURNAL in results and (staging / JOURNAL).exists():
        return staging / JOURNAL
    if any((staging / name).exists() for name in results):
        return staging
    shutil.rmtree(staging, ignore_errors=True)
    return None
