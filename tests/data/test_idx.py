"""Hostile IDX files: every claim checked before anything is allocated, data read once."""

import gzip
import hashlib
import os
import struct
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistdist import config
from mnistdist.data import (
    MNIST_FILES,
    _checked,
    _idx,
    load_mnist_idx,
    read_idx,
    read_idx_header,
    write_idx,
)
from mnistdist.errors import DataError

from helpers import forged_gz, make_idx_folder, peak_rss_mb, python_code

TWO_GIB = 2**31


def _header(type_byte: int, dims) -> bytes:
    return bytes([0, 0, type_byte, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def test_the_forged_pair_is_refused_in_one_line_at_a_small_refusals_memory(tmp_path):
    """Headers that declare 2**31 images of 1x1 and as many labels, in .gz files of about 2 MB
    that hold them (zeros, a valid gzip): refused at the header, before anything is allocated;
    the process's peak memory within 100 MB of that of a small malformed folder's refusal."""
    forged, small = tmp_path / "forged", tmp_path / "small"
    make_idx_folder(forged)
    make_idx_folder(small)
    forged_gz(forged / (MNIST_FILES["train_images"] + ".gz"), _header(8, (TWO_GIB, 1, 1)), TWO_GIB)
    forged_gz(forged / (MNIST_FILES["train_labels"] + ".gz"), _header(8, (TWO_GIB,)), TWO_GIB)
    assert all(p.stat().st_size < 3_000_000 for p in forged.iterdir())
    with gzip.open(forged / (MNIST_FILES["train_labels"] + ".gz")) as f:  # they do hold zeros
        f.seek(TWO_GIB + 8 - 4)
        assert f.read(5) == bytes(4)
    (small / (MNIST_FILES["train_labels"] + ".gz")).write_bytes(b"junk")
    runs = {}
    for name, folder in (("small", small), ("forged", forged)):
        args = [sys.executable, "-m", "mnistdist", "search", "--data", str(folder)]
        runs[name] = peak_rss_mb([*args, "--out", str(tmp_path / f"out-{name}")])
    (small_run, small_mb), (forged_run, forged_mb) = runs["small"], runs["forged"]
    assert small_run.returncode == 1 and "not a gzip file" in small_run.stderr
    assert forged_run.returncode == 1, forged_run.stderr
    lines = forged_run.stderr.strip().splitlines()
    assert len(lines) == 1 and "need 2147483648 data bytes, more than the" in lines[0]
    print(f"peak memory: forged pair {forged_mb:.0f} MB, small refusal {small_mb:.0f} MB")
    assert forged_mb < small_mb + 100, (forged_mb, small_mb)
    assert not (tmp_path / "out-forged").exists()


@pytest.mark.parametrize(
    "blob, message",
    [
        (_header(8, (2,) * 33), "33 dimensions, more than the 32"),
        (_header(8, (1,) * 255), "255 dimensions"),
        (_header(8, (2**20, 2**20)) + bytes(10), "more than the 1073741824 that mnistdist reads"),
        (_header(0x0E, (2**27 + 1,)), "need 1073741832 data bytes, more than"),
    ],
)
def test_malformed_headers_are_one_data_error(tmp_path, blob, message):
    for suffix in ("", ".gz"):
        path = tmp_path / f"bad{suffix}"
        path.write_bytes(gzip.compress(blob) if suffix else blob)
        with pytest.raises(DataError, match=message) as info:
            read_idx(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_the_stated_maximum_is_a_setting(tmp_path):
    import dask.config

    path = tmp_path / "x.gz"
    write_idx(path, np.zeros((100, 10), np.uint8))
    with (
        dask.config.set({"mnistdist.max-idx-bytes": 999}),
        pytest.raises(DataError, match="need 1000 data bytes, more than the 999"),
    ):
        read_idx_header(path)
    with dask.config.set({"mnistdist.max-idx-bytes": 1000}):
        assert read_idx(path).shape == (100, 10)


def test_a_gz_cannot_claim_more_than_deflate_can_hold(tmp_path):
    path = tmp_path / "x.gz"
    # 50 MB declared, 1,000 bytes of data: a 1 KB gzip could expand to 1 MB at most.
    path.write_bytes(gzip.compress(_header(8, (50_000, 1000)) + os.urandom(1000)))
    with pytest.raises(DataError, match=r"need 50000000 data bytes, more than a gzip file of"):
        read_idx_header(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (_header(8, (10,)) + bytes(11), "holds more data than its header declares"),
        (_header(8, (10,)) + bytes(9), r"file ends inside the data \(9 of 10 bytes\)"),
    ],
)
def test_a_gz_must_hold_exactly_what_it_declares(tmp_path, content, message):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(DataError, match=message):
        read_idx_header(path)


def test_trailing_garbage_after_the_gzip_stream_is_corrupt(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(_header(8, (10,)) + bytes(10)) + b"garbage!")
    with pytest.raises(DataError, match="corrupt or truncated gzip data"):
        read_idx_header(path)


def test_a_gz_is_decompressed_once_to_a_raw_copy_named_by_its_digest(tmp_path, raw_copies):
    array = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    path = tmp_path / "images.gz"
    write_idx(path, array)
    content = gzip.decompress(path.read_bytes())
    header = read_idx_header(path)
    assert header.sha256 == hashlib.sha256(content).hexdigest()
    assert header.source == raw_copies / "mnistdist-raw" / f"{header.sha256}.idx"
    assert header.source.read_bytes() == content
    # Checked once: the same unchanged file again is not read again.
    assert read_idx_header(path) is header
    np.testing.assert_array_equal(_idx.read_idx_rows(header, 10, 13), array[10:13])
    # A file rewritten in place, same size and modification time, other content: read anew.
    stat = path.stat()
    write_idx(path, array[::-1].copy())
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = read_idx_header(path)
    assert again is not header and again.sha256 != header.sha256
    np.testing.assert_array_equal(read_idx(path), array[::-1])


def test_a_later_process_takes_the_recorded_check_of_an_unchanged_file(
    tmp_path, raw_copies, monkeypatch
):
    monkeypatch.setattr(_checked, "RACY_SECONDS", 0.0)
    array = np.random.default_rng(1).integers(0, 256, (40, 28, 28), dtype=np.uint8)
    path = tmp_path / "images.gz"
    write_idx(path, array)
    header = read_idx_header(path)
    # Another process, whose every read of the file would fail: it takes the record.
    code = (
        "import sys; from mnistdist.data import _idx\n"
        "_idx._check_file = lambda *a: sys.exit('read again')\n"
        "h = _idx.read_idx_header(sys.argv[1]); print(h.sha256, h.source)"
    )
    first = python_code(code, path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == [header.sha256, str(header.source)]
    # The raw copy rewritten, or the file rewritten with its size and modification time
    # put back: read again.
    header.source.write_bytes(header.source.read_bytes())
    assert "read again" in python_code(code, path).stderr
    monkeypatch.setattr(_idx, "_CHECKED", {})  # checked anew here, and recorded again
    read_idx_header(path)
    assert python_code(code, path).returncode == 0
    stat = path.stat()
    write_idx(path, array[::-1].copy())
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert "read again" in python_code(code, path).stderr


def test_a_file_changed_just_before_its_check_is_not_recorded(tmp_path, raw_copies):
    path = tmp_path / "labels"
    write_idx(path, np.zeros(10, np.uint8))
    read_idx_header(path)  # the file is younger than RACY_SECONDS
    key = [str(path), *_checked.stat_key(path.stat()), int(config.get("max-idx-bytes"))]
    assert _checked.recall(_idx.raw_copy_dir(), key) is None


def test_raw_files_are_hashed_and_read_in_place(tmp_path):
    array = np.arange(600, dtype=np.int32).reshape(20, 30)
    path = tmp_path / "raw"
    write_idx(path, array)
    header = read_idx_header(path)
    assert header.source == path and header.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    np.testing.assert_array_equal(read_idx(path), array)


def test_an_unwritable_cache_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("MNISTDIST_CACHE", str(tmp_path / "file"))
    path = tmp_path / "x.gz"
    write_idx(path, np.zeros((3, 2), np.uint8))
    with pytest.raises(DataError, match=r"cannot write its decompressed copy.*MNISTDIST_CACHE"):
        read_idx_header(path)


def test_labels_are_checked_without_a_temporary_of_their_size(tmp_path):
    folder = tmp_path / "m"
    make_idx_folder(folder, gz=False)
    labels = np.zeros(60, np.uint8)
    labels[-1] = 200
    write_idx(folder / MNIST_FILES["train_labels"], labels)
    with pytest.raises(DataError, match="label 200 at row 59 is outside 0-9"):
        load_mnist_idx(folder)


def _bombs():
    """gzip files whose headers claim far more than they hold, or hold far more than a page."""
    dims = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4)
    return st.tuples(
        st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]),
        dims,
        st.integers(0, 2**22),  # zero bytes held: up to 4 MiB, compressed to a few KB
        st.binary(max_size=2048),  # then some noise
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(bomb=_bombs(), truncate=st.integers(0, 64))
def test_fuzz_gz_bombs_and_forged_sizes(tmp_path, bomb, truncate):
    """Any claim and any content: the array the header declares (all of it, nothing more),
    or one DataError; never more memory than the data held."""
    type_byte, dims, zeros, noise = bomb
    blob = _header(type_byte, dims) + bytes(zeros) + noise
    compressed = gzip.compress(blob)
    path = tmp_path / "bomb.gz"
    path.write_bytes(compressed[: len(compressed) - truncate])
    try:
        out = read_idx(path)
    except DataError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert truncate == 0  # a cut gzip never passes
    assert out.shape == tuple(dims) and out.nbytes == zeros + len(noise)
