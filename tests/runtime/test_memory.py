import dask
import pytest

from mnistdist.errors import OptionError
from mnistdist.runtime import check_worker_memory, estimate_worker_peak

MiB = 2**20


def test_the_estimate_adds_the_data_its_copies_the_blocks_and_the_process():
    with dask.config.set({"mnistdist.query-rows": 1000, "mnistdist.chunk-rows": 5000}):
        one = estimate_worker_peak(60000, 784)
        five = estimate_worker_peak(60000, 784, copies=5, threads=2)
    assert one["data"] == 60000 * 784 * (1 + 4)  # uint8 rows and their float32 copy
    assert one["blocks"] == 2 * 1000 * 5000 * 4
    assert five["data"] == 60000 * 784 + 5 * 60000 * 784 * 4
    assert five["blocks"] == 2 * one["blocks"]
    assert one["total"] == one["data"] + one["blocks"] + one["process"]


def test_blocks_are_no_larger_than_the_rows():
    small = estimate_worker_peak(100, 64)
    assert small["blocks"] == 2 * 100 * 100 * 4


def test_a_worker_too_small_is_refused_with_the_numbers():
    limits = {"tcp://10.0.0.5:1": (1, 4096 * MiB), "tcp://10.0.0.6:1": (1, 300 * MiB)}
    with pytest.raises(OptionError) as info:
        check_worker_memory(20000, 784, limits)
    text = str(info.value)
    assert "worker tcp://10.0.0.6:1 has a memory limit of 300.00 MiB" in text
    assert "20000 training rows x 784 features x 1 copies" in text and "\n" not in text


def test_workers_that_fit_get_their_estimates_and_threads_share_one_process():
    limits = {"inproc://a": (1, None), "inproc://b": (1, None)}  # no limit: never refused
    apart = check_worker_memory(1000, 64, limits)
    together = check_worker_memory(1000, 64, limits, in_process=True)
    assert together["inproc://a"]["blocks"] == 2 * apart["inproc://a"]["blocks"]
