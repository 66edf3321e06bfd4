"""Results folders as transactions: what a run leaves behind when it finishes, fails or resumes."""

import os

import pytest

from mnistdist.errors import OptionError, OutputError
from mnistdist.outputs import _staging as staging

RESULTS = ("metrics.json", "journal.sqlite")


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else None


@pytest.fixture
def finished(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "metrics.json").write_text("old")
    (out / "model.joblib").write_text("old model")
    (out / "journal.sqlite").write_text("old journal")
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
    (folder / "journal.sqlite").write_text("new journal")
    assert staging.abandon(finished) == folder / "journal.sqlite"  # finished work kept
    with pytest.raises(OutputError, match=r"an unfinished run is in .*--resume"):
        staging.begin(finished, results=RESULTS)
    assert _snapshot(finished) == before
    again = staging.begin(finished, results=RESULTS, resume=True)
    assert again == folder and (again / "journal.sqlite").read_text() == "new journal"
    staging.commit(finished)
    assert _snapshot(finished) == {"journal.sqlite": b"new journal"}


def test_resume_without_staging_reuses_the_journal_only(finished):
    folder = staging.begin(finished, results=RESULTS, resume=True)
    assert _snapshot(folder) == {"journal.sqlite": b"old journal"}


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
