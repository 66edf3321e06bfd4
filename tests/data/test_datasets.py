import contextlib
import gzip
import struct

import dask
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistdist.data import (
    MNIST_FILES,
    load_dataset,
    load_mnist_idx,
    read_idx,
    read_idx_header,
    write_idx,
)
from mnistdist.data import _datasets as data
from mnistdist.errors import DataError, OptionError


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, suffix, dtype):
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / f"x{suffix}"
    write_idx(path, array)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype).newbyteorder("=") and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, array)
    if suffix:
        assert path.read_bytes()[:2] == b"\x1f\x8b"


def test_load_idx_folder_is_lazy_chunked_and_exact(idx_folder):
    folder, arrays = idx_folder
    ds = load_mnist_idx(folder, chunk_rows=16)
    assert ds.X_train.shape == (60, 784) and ds.X_train.dtype == np.uint8
    assert ds.X_train.chunks[0] == (16, 16, 16, 12)
    assert ds.image_shape == (28, 28)
    # Every chunk is its own load task, named for what it is.
    names = [key[0] for key in dict(ds.X_train.__dask_graph__())]
    assert len(names) == 4 and all(n.startswith("load-mnist-train-images-") for n in names)
    np.testing.assert_array_equal(
        ds.X_train.compute(scheduler="sync"), arrays["train_images"].reshape(60, -1)
    )
    np.testing.assert_array_equal(
        ds.X_test.compute(scheduler="sync"), arrays["test_images"].reshape(20, -1)
    )
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])


def test_raw_and_gz_folders_agree(tmp_path):
    from helpers import make_idx_folder

    make_idx_folder(tmp_path / "gz", gz=True, seed=3)
    make_idx_folder(tmp_path / "raw", gz=False, seed=3)
    a, b = load_mnist_idx(tmp_path / "gz"), load_mnist_idx(tmp_path / "raw")
    np.testing.assert_array_equal(
        a.X_train.compute(scheduler="sync"), b.X_train.compute(scheduler="sync")
    )


def test_graph_holds_no_image_data(idx_folder):
    """Chunks are read by tasks: the graph carries headers and row ranges, not pixels."""
    folder, _ = idx_folder
    X = load_mnist_idx(folder).X_train
    import pickle

    assert len(pickle.dumps(dict(X.__dask_graph__()))) < 4000


def test_head_and_train_size(idx_folder):
    folder, arrays = idx_folder
    ds = load_dataset("mnist", data_dir=folder, train_size=7)
    assert ds.X_train.shape == (7, 784) and len(ds.y_train) == 7
    np.testing.assert_array_equal(
        ds.X_train.compute(scheduler="sync"), arrays["train_images"][:7].reshape(7, -1)
    )
    for bad in (0, 61):
        with pytest.raises(OptionError, match="--train-size"):
            load_dataset("mnist", data_dir=folder, train_size=bad)


def test_environment_variable_names_the_folder(idx_folder, monkeypatch):
    folder, _ = idx_folder
    monkeypatch.setenv("MNISTDIST_DATA", str(folder))
    assert load_dataset("mnist").source == f"idx:{folder}"


def test_digits_dataset(digits):
    assert digits.image_shape == (8, 8)
    assert digits.X_train.shape == (1437, 64) and digits.X_test.shape == (360, 64)
    assert len(digits.X_train.chunks[0]) > 1
    from sklearn.datasets import load_digits

    ref = load_digits()
    np.testing.assert_array_equal(digits.X_test.compute(scheduler="sync"), ref.data[-360:])
    np.testing.assert_array_equal(digits.y_train, ref.target[:1437])


def test_unknown_dataset_and_misplaced_data_flag(tmp_path):
    with pytest.raises(OptionError, match="unknown dataset"):
        load_dataset("fashion")
    with pytest.raises(OptionError, match="--data applies to --dataset mnist"):
        load_dataset("digits", data_dir=tmp_path)


def _corrupt(folder, role, content: bytes, suffix=".gz"):
    (folder / (MNIST_FILES[role] + ".gz")).unlink()
    (folder / (MNIST_FILES[role] + suffix)).write_bytes(content)
    return folder / (MNIST_FILES[role] + suffix)


def _idx_bytes(magic: int, dims, payload: bytes) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload


@pytest.mark.parametrize(
    "case, make, message",
    [
        (
            "missing file",
            lambda f: (f / (MNIST_FILES["test_labels"] + ".gz")).unlink(),
            "missing t10k-labels-idx1-ubyte",
        ),
        (
            "not gzip",
            lambda f: _corrupt(f, "train_images", _idx_bytes(0x803, (60, 28, 28), bytes(60 * 784))),
            "not a gzip file",
        ),
        (
            "truncated gz",
            lambda f: _corrupt(
                f,
                "train_images",
                gzip.compress(_idx_bytes(0x803, (60, 28, 28), bytes(60 * 784)))[:-20],
            ),
            "truncated",
        ),
        (
            "wrong magic",
            lambda f: _corrupt(f, "train_images", _idx_bytes(0x801, (60,), bytes(60)), ""),
            "not an images file",
        ),
        (
            "bad type byte",
            lambda f: _corrupt(
                f, "train_images", _idx_bytes(0x0703, (60, 28, 28), bytes(60 * 784)), ""
            ),
            "unknown IDX type",
        ),
        (
            "size mismatch",
            lambda f: _corrupt(
                f, "train_images", _idx_bytes(0x803, (60, 28, 28), bytes(59 * 784)), ""
            ),
            "need 47040 data bytes, the file has 46256",
        ),
        (
            "huge claim",
            lambda f: _corrupt(
                f, "train_images", _idx_bytes(0x803, (4_000_000_000, 28, 28), bytes(10)), ""
            ),
            "need",
        ),
        (
            "count mismatch",
            lambda f: _corrupt(f, "train_labels", _idx_bytes(0x801, (59,), bytes(59)), ""),
            "59 labels for the 60 images",
        ),
        (
            "label range",
            lambda f: _corrupt(
                f, "test_labels", _idx_bytes(0x801, (20,), bytes([3] * 19 + [12])), ""
            ),
            "label 12 at row 19 is outside 0-9",
        ),
        (
            "shape mismatch",
            lambda f: _corrupt(
                f, "test_images", _idx_bytes(0x803, (20, 27, 27), bytes(20 * 27 * 27)), ""
            ),
            "train images are",
        ),
        (
            "empty file",
            lambda f: _corrupt(f, "train_labels", b"", ""),
            "file ends inside the header",
        ),
    ],
)
def test_bad_files_raise_one_clear_error(idx_folder, case, make, message):
    folder, _ = idx_folder
    make(folder)
    with pytest.raises(DataError, match=message) as info:
        load_mnist_idx(folder)
    text = str(info.value)
    assert "\n" not in text
    if case not in ("missing file", "shape mismatch"):
        assert "idx" in text  # names the file


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        load_mnist_idx(tmp_path / "nowhere")


def test_openml_failure_is_a_clear_error(tmp_path, monkeypatch):
    import sklearn.datasets

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", offline)
    with pytest.raises(DataError, match=r"could not fetch mnist_784 from OpenML.*--data DIR"):
        data.load_mnist_openml(tmp_path)


def test_openml_cache_is_reused_without_network(tmp_path, monkeypatch):
    import sklearn.datasets

    from helpers import make_idx_folder

    make_idx_folder(tmp_path / "mnistdist-idx", gz=False)
    monkeypatch.setattr(
        sklearn.datasets, "fetch_openml", lambda *a, **k: pytest.fail("fetched despite the cache")
    )
    ds = data.load_mnist_openml(tmp_path)
    assert ds.source.startswith("openml:mnist_784") and ds.X_train.shape == (60, 784)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=64))
def test_fuzz_random_bytes(tmp_path, blob):
    path = tmp_path / "fuzz"
    path.write_bytes(blob)
    with contextlib.suppress(DataError):
        read_idx(path)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    type_byte=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
    dims=st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=4),
    payload=st.binary(max_size=256),
    gz=st.booleans(),
)
def test_fuzz_headers(tmp_path, type_byte, dims, payload, gz):
    """Any header claim, however large: a valid array or DataError, never a big allocation."""
    blob = bytes([0, 0, type_byte, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload
    path = tmp_path / ("fuzz.gz" if gz else "fuzz")
    path.write_bytes(gzip.compress(blob) if gz else blob)
    try:
        out = read_idx(path)
    except DataError:
        return
    assert out.shape == tuple(dims)
    assert out.nbytes == len(payload)


def test_chunks_read_on_workers(client, idx_folder):
    folder, arrays = idx_folder
    X = load_mnist_idx(folder, chunk_rows=16).X_train
    with dask.config.set(scheduler=client):
        np.testing.assert_array_equal(X.compute(), arrays["train_images"].reshape(60, -1))
    header = read_idx_header(folder / (MNIST_FILES["train_images"] + ".gz"))
    assert header.shape == (60, 28, 28) and header.compressed
