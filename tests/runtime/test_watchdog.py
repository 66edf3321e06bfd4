import time

import pytest
from distributed import Client, LocalCluster

from mnistdist.errors import ClusterError
from mnistdist.runtime import wait_for_workers, watch_workers


@pytest.fixture
def one_worker():
    with (
        LocalCluster(n_workers=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        yield cluster, client


def _busy(seconds: float) -> None:
    """The caller's own work: short steps, as a job's waits on its futures are."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)


def test_a_scheduler_that_loses_its_workers_stops_the_block(one_worker):
    cluster, client = one_worker
    t = time.monotonic()
    with (
        pytest.raises(ClusterError, match=r"has had no workers for [0-9]+ s") as info,
        watch_workers(client, timeout=2, interval=0.2),
    ):
        cluster.scale(0)
        _busy(60)
    assert time.monotonic() - t < 20
    assert cluster.scheduler_address in str(info.value) and "no-workers-timeout" in str(info.value)


def test_a_scheduler_that_keeps_its_workers_is_left_alone(one_worker):
    _, client = one_worker
    with watch_workers(client, timeout=1, interval=0.2):
        _busy(3)  # three timeouts, with a worker all along
        assert client.submit(sum, [1, 2]).result() == 3


def test_a_real_ctrl_c_stays_one(one_worker):
    import _thread
    import signal

    _, client = one_worker
    # Python's own handler, as a terminal's foreground job has it (a run in the background
    # ignores SIGINT, and the watch then answers only its own interrupts: the next test).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), watch_workers(client, timeout=30):
            _thread.interrupt_main()
            _busy(5)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_where_sigint_is_ignored_only_the_watch_stops_the_block(one_worker):
    import _thread
    import signal

    cluster, client = one_worker
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with watch_workers(client, timeout=30):
            _thread.interrupt_main()  # ignored, as the job was told
            _busy(2)
        with (
            pytest.raises(ClusterError, match="has had no workers"),
            watch_workers(client, timeout=2, interval=0.2),
        ):
            cluster.scale(0)
            _busy(60)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_waiting_for_workers_that_do_not_come_says_how_many_came(one_worker):
    _, client = one_worker
    with pytest.raises(ClusterError, match="has 1 of the 3 workers wanted after 1 s"):
        wait_for_workers(client, 3, timeout=1)


def test_questions_that_fail_count_as_unanswered(one_worker, monkeypatch):
    import threading

    _, client = one_worker
    crashed = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)

    def unreachable(*args, **kwargs):
        raise OSError("Timed out trying to connect")  # what a cut link gives the question

    monkeypatch.setattr(client, "nthreads", unreachable)
    with (
        pytest.raises(ClusterError, match=r"has not answered for [0-9]+ s"),
        watch_workers(client, timeout=2, interval=0.2),
    ):
        _busy(60)
    assert not crashed  # the watch kept asking; no thread died with a traceback
