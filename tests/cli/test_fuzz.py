"""Every job with bad values for its options: exit 1 or 2, one line, no traceback, nothing touched.

hypothesis drives the jobs in-process through ``mnistdist.cli.main`` (each case
fails before any cluster starts, as the error is knowable from the options
and the data); a few cases whose error needs the data run as processes.
"""

import argparse
import contextlib
import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistdist import cli
from mnistdist.cli._parser import build_parser

from helpers import assert_one_line_error, free_port, mnistdist

PARSER = build_parser()
SUBPARSERS = next(a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction)).choices


def _options(job):
    """The job's options that take a value, and their kind."""
    for action in SUBPARSERS[job]._actions:
        if not action.option_strings or action.nargs == 0 or action.dest == "help":
            continue
        name = action.option_strings[-1]
        if action.choices:
            kind = "choice"
        elif name in ("--data", "--out"):
            kind = "path"
        elif name == "--scheduler":
            kind = "address"
        else:
            kind = "int"
        yield name, kind


OPTIONS = [(job, name, kind) for job in SUBPARSERS for name, kind in _options(job)]

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
BAD = {
    "int": st.one_of(
        st.sampled_from(["", "0", "-1", "1.5", "x", "nan", "1e3", " "]),
        st.integers(max_value=0).map(str),
        TEXT.filter(lambda t: not t.strip().isdigit()),
    ),
    "choice": st.one_of(st.just(""), TEXT),
    "--out": st.sampled_from(["", " ", ".", "a\0b", "{file}", "{file}/sub", "{loop}"]),
    "--data": st.sampled_from(["", " ", ".", "a\0b", "{file}", "{loop}", "{missing}"]),
    "address": st.one_of(
        st.sampled_from(
            ["", "garbage", "inproc://x", "tls://127.0.0.1:1", "tcp://h:0", "tcp://:1", "ucx://h:1"]
        ),
        TEXT.filter(lambda t: "://" not in t),
    ),
}
#: Values that are valid for some options of a kind (a choice the fuzz may draw, a folder path).
VALID_CHOICES = {
    c for a in OPTIONS for c in (SUBPARSERS[a[0]]._option_string_actions[a[1]].choices or [])
}


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "file").write_text("x")
    os.symlink(root / "loop", root / "loop")
    results = root / "results"
    results.mkdir()
    for name in (
        "metrics.json",
        "cv_results.csv",
        "search.json",
        "tour.json",
        "benchmark.json",
        "augment.json",
        "journal.sqlite",
    ):
        (results / name).write_text(f"previous {name}")
    return root


def _snapshot(root):
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() and not p.is_symlink() else None
        for p in sorted(root.rglob("*"))
    }


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # the option parser's exit
            code = exc.code
    return code, err.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=st.sampled_from(OPTIONS), data=st.data(), overwrite=st.booleans())
def test_bad_option_values(place, monkeypatch, case, data, overwrite):
    job, name, kind = case
    value = data.draw(BAD[name if kind == "path" else kind], label=name)
    if kind == "choice" and value in VALID_CHOICES:
        return
    if kind == "path":
        value = value.format(
            file=place / "file", loop=place / "loop", missing=place / "missing" / "deeper"
        )
    if name == "--data":  # a valid --out, so that --data is what fails
        extra = ["--out", str(place / "results")]
    else:
        extra = (
            ["--data", str(place / "missing")] if name == "--dataset" else ["--dataset", "digits"]
        )
        extra += [] if name == "--out" else ["--out", str(place / "results")]
    argv = [job, *extra, name, value] + (["--overwrite"] if overwrite else [])
    monkeypatch.chdir(place)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    before = _snapshot(place)
    code, stderr = _run(argv)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code in (1, 2), (argv, code, stderr)
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in stderr, (argv, stderr)
    assert _snapshot(place) == before, argv


@pytest.mark.parametrize(
    "args, code, text",
    [
        (["--cv", "1000000"], 2, "more folds than"),
        (["--n-neighbors", "100000"], 2, "larger than the smallest training fold"),
        (["--train-size", "5"], 2, "more folds than"),
        (["--scheduler", "garbage"], 2, "scheduler address 'garbage'"),
        (["--workers", "1000000"], 2, "workers per core"),
        (["--out", ""], 2, "--out is empty"),
    ],
)
def test_as_a_user_runs_them(tmp_path, args, code, text):
    proc = mnistdist("search", "--dataset", "digits", "--out", tmp_path / "o", *args, timeout=120)
    assert_one_line_error(proc, code, text)
    assert not (tmp_path / "o").exists()


def test_a_failed_overwrite_keeps_the_previous_results_whole(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    for name in ("search.json", "cv_results.csv", "journal.sqlite"):
        (out / name).write_text(f"previous {name}")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    port = free_port()  # nothing listens there
    proc = mnistdist(
        "search",
        "--dataset",
        "digits",
        "--out",
        out,
        "--overwrite",
        "--scheduler",
        f"tcp://127.0.0.1:{port}",
        env={"DASK_MNISTDIST__CONNECT_TIMEOUT": "2s"},
        timeout=120,
    )
    assert_one_line_error(proc, 1, "could not reach the Dask scheduler")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_openml_unreachable_is_one_line(tmp_path):
    proc = mnistdist(
        "search",
        "--out",
        tmp_path / "o",
        env={
            "MNISTDIST_CACHE": str(tmp_path / "cache"),
            "MNISTDIST_DATA": "",
            "https_proxy": "http://127.0.0.1:9",
            "http_proxy": "http://127.0.0.1:9",
        },
        timeout=120,
    )
    assert_one_line_error(proc, 1, "could not fetch mnist_784 from OpenML")
