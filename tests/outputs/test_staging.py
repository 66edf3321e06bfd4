"""Results folders as transactions: what a run leaves behind when it finishes, fails or resumes."""

import os

import numpy as np
import pytest

from mnistdist.errors import OptionError, OutputError
from mnistdist.outputs import Journal
from mnistdist.outputs import _staging as staging

RESULTS = ("metrics.json", "journal.sqlite")


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else None


def _journal(path, key="old"):
    """A real journal with one row, ``key``."""
    with Journal(path) as journal:
        journal.put(key, np.zeros((2, 3)), np.zeros((2, 3), dtype=np.int64))
    return path.read_bytes()


@pytest.fixture
def finished(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "metrics.json").write_text("old")
    (out / "model.joblib").write_text("old model")
    _journal(out / "journal.sqlite")
    return out


def test_a_finished_run_swaps_into_place(tmp_path):
    out = tmp_path / "new"
    folder = staging.begin(out, results=RESULTS)
    assert folder == staging.staging_path(out.absolute()) and not out.exists()
    (folder / "metrics.json").write_text("new")
    staging.commit(out)
    assert _snapshot(out) == {"metrics.json": b"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


def test_overwrite_keeps_the_old_results_whole_until_the_new_run_finishes(finished):
    before = _snapshot(finished)
    folder = staging.begin(finished, results=RESULTS, overwrite=True)
    assert list(folder.iterdir()) == []  # the new run starts empty: no old file mixes in
    (folder / "metrics.json").write_text("new")
    assert _snapshot(finished) == before
    assert staging.abandon(finished) is None  # failed, nothing finished: staging dropped
    assert _snapshot(finished) == before and not folder.exists()

    folder = staging.begin(finished, results=RESULTS, overwrite=True)
    (folder / "metrics.json").write_text("new")
    staging.commit(finished)
    assert _snapshot(finished) == {"metrics.json": b"new"}  # the old model is gone with its run


def test_an_interrupted_run_is_resumed_from_its_staging_folder(finished):
    before = _snapshot(finished)
    folder = staging.begin(finished, results=RESULTS, overwrite=True)
    new = _journal(folder / "journal.sqlite", "new")
    assert staging.abandon(finished) == folder / "journal.sqlite"  # finished work kept
    with pytest.raises(OutputError, match=r"an unfinished run is in .*--resume"):
        staging.begin(finished, results=RESULTS)
    assert _snapshot(finished) == before
    again = staging.begin(finished, results=RESULTS, resume=True)
    assert again == folder and (again / "journal.sqlite").read_bytes() == new
    staging.commit(finished)
    assert _snapshot(finished) == {"journal.sqlite": new}


def test_resume_without_staging_reuses_the_journal_only(finished):
    old = (finished / "journal.sqlite").read_bytes()
    folder = staging.begin(finished, results=RESULTS, resume=True)
    assert _snapshot(folder) == {"journal.sqlite": old}


def test_a_job_joining_a_folder_keeps_the_other_jobs_files(finished):
    folder = staging.begin(finished, results=("tour.json",))
    assert (folder / "metrics.json").read_text() == "old"
    (folder / "tour.json").write_text("tour")
    journal = folder / "journal.sqlite"
    assert (
        journal.stat().st_ino != (finished / "journal.sqlite").stat().st_ino
    )  # copied, not linked
    staging.commit(finished)
    assert {"metrics.json", "model.joblib", "tour.json"} <= set(os.listdir(finished))


def test_a_failed_joining_job_drops_its_copies_but_keeps_its_finished_results(finished):
    before = _snapshot(finished)
    folder = staging.begin(finished, results=("tour.json",))
    assert (folder / "journal.sqlite").exists()  # the report's journal, copied: not the tour's work
    assert staging.abandon(finished, ("tour.json",)) is None and not folder.exists()
    folder = staging.begin(finished, results=("tour.json",))
    (folder / "tour.json").write_text("finished")
    assert staging.abandon(finished, ("tour.json",)) == folder  # the tour's results, kept
    assert (folder / "tour.json").read_text() == "finished" and _snapshot(finished) == before


def test_the_staging_folder_is_made_whole_or_not_at_all(finished, monkeypatch):
    import shutil

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", disk_full)  # the journal's copy fails half-way
    with pytest.raises(OutputError, match="No space left on device"):
        staging.begin(finished, results=("tour.json",))
    monkeypatch.undo()
    assert sorted(p.name for p in finished.parent.iterdir()) == ["results"]
    # A folder a killed run left half-made is removed by the next run (which holds the lock).
    half = finished.with_name(".results.staging.0123456789ab.tmp")
    half.mkdir()
    staging.begin(finished, results=("tour.json",))
    assert not half.exists() and staging.staging_path(finished).is_dir()


def test_a_symlinked_out_is_resolved_once_and_the_link_stays(tmp_path):
    target = tmp_path / "big" / "res"
    target.parent.mkdir()
    link = tmp_path / "results"
    link.symlink_to(target)  # a link whose target does not exist yet
    for run in ("first", "second"):  # the second replaces the first, through the link
        out = staging.check_out(link)
        assert out == target
        folder = staging.begin(out, results=RESULTS, overwrite=True)
        assert folder.parent == target.parent
        (folder / "metrics.json").write_text(run)
        staging.commit(out)
        assert link.is_symlink() and os.readlink(link) == str(target)
        assert (link / "metrics.json").read_text() == run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big", "results"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["res"]


def test_a_commit_that_cannot_complete_keeps_both_runs_and_says_where(finished, monkeypatch):
    before = _snapshot(finished)
    folder = staging.begin(finished, results=RESULTS, overwrite=True)
    (folder / "metrics.json").write_text("new")
    blocker = finished.with_name(".results.replaced")
    blocker.mkdir()
    (blocker / "x").write_text("x")  # the first rename cannot replace a folder that holds files
    with pytest.raises(OutputError, match=rf"they are kept in {folder}"):
        staging.commit(finished)
    assert _snapshot(finished) == before and (folder / "metrics.json").read_text() == "new"
    blocker.joinpath("x").unlink()
    blocker.rmdir()
    real_rename = os.rename

    def second_rename_fails(src, dst):
        if os.fspath(src) == os.fspath(folder):
            raise OSError(5, "Input/output error")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", second_rename_fails)
    with pytest.raises(OutputError, match=r"Input/output error.*they are kept in"):
        staging.commit(finished)
    monkeypatch.undo()
    assert _snapshot(finished) == before  # the previous results, put back
    assert (folder / "metrics.json").read_text() == "new"
    assert staging.abandon(finished, RESULTS) == folder  # and no one deletes the finished run
    staging.commit(finished)
    assert _snapshot(finished) == {"metrics.json": b"new"}


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "empty-sqlite"])
def test_resume_from_a_journal_that_is_not_one_is_refused_in_one_line(finished, damage):
    import sqlite3

    journal = finished / "journal.sqlite"
    if damage == "garbage":
        journal.write_bytes(b"not a database at all" * 100)
    elif damage == "truncated":
        with Journal(journal) as j:  # enough rows for several pages
            for i in range(50):
                j.put(f"k{i}", np.zeros((100, 10)), np.zeros((100, 10), dtype=np.int64))
        journal.write_bytes(journal.read_bytes()[: journal.stat().st_size // 2])
    elif damage == "foreign":
        journal.unlink()
        with sqlite3.connect(journal) as db:
            db.execute("CREATE TABLE photos (name TEXT)")
    else:
        journal.write_bytes(b"")  # SQLite's empty database: a journal with no row yet
    before = _snapshot(finished)
    if damage == "empty-sqlite":
        staging.begin(finished, results=RESULTS, resume=True)
        return
    with pytest.raises(OutputError) as info:
        staging.begin(finished, results=RESULTS, resume=True)
    text = str(info.value)
    assert "not a mnistdist journal, or damaged: pass --overwrite to start over" in text
    assert "\n" not in text
    assert _snapshot(finished) == before
    assert not staging.staging_path(finished).exists()  # nothing left behind
    folder = staging.begin(finished, results=RESULTS, overwrite=True)  # as the line says
    assert list(folder.iterdir()) == []


def test_a_swap_cut_between_its_renames_is_finished_next_time(finished):
    folder = staging.begin(finished, results=RESULTS, overwrite=True)
    (folder / "metrics.json").write_text("new")
    os.rename(finished, finished.with_name(".results.replaced"))  # the crash came here
    staging.begin(finished, results=RESULTS, overwrite=True)
    assert (finished / "metrics.json").read_text() == "new"
    assert not finished.with_name(".results.replaced").exists()


@pytest.mark.parametrize("bad", ["", "  ", ".", "a\0b"])
def test_out_that_cannot_be_a_results_folder(tmp_path, monkeypatch, bad):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OptionError):
        staging.check_out(bad)


def test_out_that_is_a_file_or_unwritable(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        staging.begin(tmp_path / "file", results=RESULTS)
    with pytest.raises(OutputError, match="cannot create output folder"):
        staging.begin(tmp_path / "file" / "sub", results=RESULTS)
    with pytest.raises(OutputError, match="exclude each other"):
        staging.begin(tmp_path / "x", results=RESULTS, overwrite=True, resume=True)


def test_jobs_sharing_a_folder_replace_only_their_own_files(tmp_path):
    out = tmp_path / "results"
    report = ("metrics.json", "journal.sqlite")
    folder = staging.begin(out, results=report, job="report")
    for name in ("metrics.json", "model.joblib", "report.html"):
        (folder / name).write_text(f"report's {name}")
    staging.commit(out, job="report")
    folder = staging.begin(out, results=("tour.json",), job="tour")  # the tour joins
    for name in ("tour.json", "roc.png", "report.html"):
        (folder / name).write_text(f"tour's {name}")
    staging.commit(out, job="tour")
    # The tour again, replacing its results: the report's files stay, the old tour's go.
    folder = staging.begin(out, results=("tour.json",), overwrite=True, job="tour")
    assert sorted(p.name for p in folder.iterdir()) == [
        ".mnistdist-owners.json",
        "metrics.json",
        "model.joblib",
        "report.html",
    ]
    (folder / "tour.json").write_text("the new tour's")
    staging.commit(out, job="tour")
    assert (out / "metrics.json").read_text() == "report's metrics.json"
    assert (out / "tour.json").read_text() == "the new tour's" and not (out / "roc.png").exists()
    # The report replacing its own keeps the tour's.
    folder = staging.begin(out, results=report, overwrite=True, job="report")
    assert sorted(p.name for p in folder.iterdir()) == [".mnistdist-owners.json", "tour.json"]
    staging.commit(out, job="report")
    assert sorted(os.listdir(out)) == [".mnistdist-owners.json", "tour.json"]
