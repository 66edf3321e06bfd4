import socket
import time

import dask
import pytest

from mnistdist.cluster import connect, describe, package_versions, scheduler_address
from mnistdist.errors import ClusterError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_embedded_local_cluster_has_worker_processes():
    with connect(n_workers=2, dashboard_address=":0") as client:
        info = describe(client)
        assert len(info["workers"]) == 2 and all(w["threads"] == 1 for w in info["workers"])
        assert info["dashboard"].startswith("http://") and info["scheduler"].startswith("tcp://")
        pids = client.run(lambda: __import__("os").getpid())
        assert len(set(pids.values())) == 2  # real processes, not threads


def test_existing_scheduler_by_address_and_by_environment(cluster):
    with connect(cluster.scheduler_address) as client:
        assert describe(client)["scheduler"] == cluster.scheduler_address
    with dask.config.set({"scheduler-address": cluster.scheduler_address}):
        assert scheduler_address() == cluster.scheduler_address
        with connect() as client:
            assert len(describe(client)["workers"]) == 2


def test_unreachable_scheduler_fails_fast_with_a_clear_error():
    address = f"tcp://127.0.0.1:{_free_port()}"
    t = time.perf_counter()
    with (
        pytest.raises(
            ClusterError, match=f"could not reach the Dask scheduler at {address} within 2 s"
        ),
        connect(address, timeout="2s"),
    ):
        pass
    assert time.perf_counter() - t < 15


def test_package_versions():
    versions = package_versions()
    assert {"python", "dask", "distributed", "dask-ml", "scikit-learn", "numpy"} <= set(versions)
