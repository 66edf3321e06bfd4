"""Every job with bad values for its options: exit 1 or 2, one line, no traceback, nothing touched.

hypothesis drives the jobs in-process through ``mnistdist.cli.main`` (each case
fails before any cluster starts, as the error is knowable from the options
and the data), hostile data folders among them (gzip bombs, forged sizes); a few
cases whose error needs the data run as processes. "Nothing touched" looks at the
whole folder that holds ``--out``: the staging folder and the lock live beside it.
"""

import argparse
import contextlib
import gzip
import io
import math
import os
import struct

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mnistdist import cli
from mnistdist.cli._parser import build_parser

from helpers import assert_one_line_error, free_port, make_idx_folder, mnistdist

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
        elif action.type is int:  # any integer is valid (the search's --seed)
            kind = "integer"
        elif name == "--seed":  # the augment job's: an integer in [0, 2**63)
            kind = "seed"
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
    "integer": st.one_of(
        st.sampled_from(["", "1.5", "x", "nan", "1e3", " "]),
        TEXT.filter(lambda t: not t.strip().lstrip("+-").isdigit()),
    ),
    "seed": st.one_of(
        st.sampled_from(["", "-1", "1.5", "x", "nan", "1e3", " ", str(2**63)]),
        st.integers(max_value=-1).map(str),
        TEXT.filter(lambda t: not t.strip().lstrip("+").isdigit()),
    ),
    "choice": st.one_of(st.just(""), TEXT),
    "--out": st.sampled_from(["", " ", ".", "a\0b", "{file}", "{file}/sub", "{loop}"]),
    "--data": st.sampled_from(
        ["", " ", ".", "a\0b", "{file}", "{loop}", "{missing}", "{forged}", "{bomb}", "{short}"]
    ),
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
    _hostile_folders(root)
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


def _idx_gz(path, type_byte, dims, payload: bytes) -> None:
    header = bytes([0, 0, type_byte, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    path.write_bytes(gzip.compress(header + payload))


def _hostile_folders(root):
    """IDX folders whose training images lie: a forged size, a gzip bomb, a short file."""
    from mnistdist.data import MNIST_FILES

    images = MNIST_FILES["train_images"] + ".gz"
    for name, dims, payload in (
        ("forged", (2**31, 1, 1), bytes(4096)),  # claims 2 GiB, holds 4 KB
        ("bomb", (60, 28, 28), bytes(64 << 20)),  # holds 64 MiB (64 KB of gzip), claims 47 KB
        ("short", (60, 28, 28), bytes(59 * 784)),  # one image short
    ):
        make_idx_folder(root / name)
        _idx_gz(root / name / images, 8, dims, payload)


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
            file=place / "file",
            loop=place / "loop",
            missing=place / "missing" / "deeper",
            forged=place / "forged",
            bomb=place / "bomb",
            short=place / "short",
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


VALID = {"train_images": [60, 28, 28], "train_labels": [60], "test_images": [20, 28, 28]}
VALID["test_labels"] = [20]
ROLES = tuple(VALID)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    role=st.sampled_from(ROLES),
    type_byte=st.sampled_from([0x08, 0x09, 0x0C, 0x0E]),
    dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4),
    zeros=st.integers(0, 1 << 21),
    noise=st.binary(max_size=2048),
    gz=st.booleans(),
)
def test_hostile_data_folders(place, monkeypatch, role, type_byte, dims, zeros, noise, gz):
    """One file of a valid folder replaced by any header over any content (bombs of up to
    2 MiB of zeros compressed to a few KB, sizes that lie): one line, exit 1, nothing touched."""
    from mnistdist.data import MNIST_FILES

    declared = math.prod(dims) * {8: 1, 9: 1, 0x0C: 4, 0x0E: 8}[type_byte]
    # Never the valid file itself (the job would then run): anything else is an error.
    assume(not (type_byte == 8 and dims == VALID[role] and declared == zeros + len(noise)))
    folder = place / f"hostile-{role}"
    if not folder.exists():
        make_idx_folder(folder)
    for suffix in ("", ".gz"):
        with contextlib.suppress(FileNotFoundError):
            (folder / (MNIST_FILES[role] + suffix)).unlink()
    header = bytes([0, 0, type_byte, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    blob = header + bytes(zeros) + noise
    path = folder / (MNIST_FILES[role] + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(blob, compresslevel=1) if gz else blob)
    monkeypatch.chdir(place)
    before = _snapshot(place)
    code, stderr = _run(["search", "--data", str(folder), "--out", str(place / "results")])
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "error" in lines[0], (dims, stderr)
    assert "Traceback" not in stderr and "unexpected" not in stderr, stderr
    assert _snapshot(place) == before


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
    assert os.listdir(tmp_path) == []  # no results, no staging folder, no lock left beside them


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no staging, no lock


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
