"""A cluster of hosts: the scheduler, each worker and the job in a network namespace of its
own on this machine, joined by veth pairs to a bridge, one worker's link held to 10 Mbit/s
(``tc ... tbf``), started with cluster/scheduler.sh and cluster/worker.sh as on real hosts.
Then links are cut (``ip link set ... down``) in the middle of a search.

Addresses exist only inside the namespaces (10.213.N.0/24); traffic goes nowhere else.
Root only (``ip netns``); skipped, saying why, elsewhere. Every namespace, link and process
a test made is removed after it, whatever happened.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from mnistdist.outputs import staging_path

from helpers import (
    CLUSTER_DIR,
    SLOW_TASKS,
    assert_one_line_error,
    csv_rows,
    embedded_run,
    journal_rows,
    process_env,
    sitecustomize,
    wait_for,
)

#: The job's arguments, here and in the embedded reference.
SEARCH = ("search", "--dataset", "digits", "--cv", "5")
PORT = 8786
#: A silent TCP link is given up after 15 s (Distributed's default: 30 s; its keepalive needs
#: at least 11 s), as a user may set it: a cut link is found sooner, the tests take less time.
CUT_DETECTED = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__TCP": "15s"}


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def _missing() -> str | None:
    """Why network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"no {tool} (iproute2) on PATH"
    probe = f"mdprobe{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


class Hosts:
    """Network namespaces as hosts on one bridge; processes started in them; links cut."""

    def __init__(self, folder):
        self.folder = folder
        self.tag = f"m{os.getpid() % 10000}{int(time.monotonic() * 10) % 100}"
        self.subnet = f"10.213.{os.getpid() % 250 + 1}"
        self.bridge = f"{self.tag}br"
        self.hosts: dict[str, str] = {}  # name -> address
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.rule = None
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "up")
        self._let_bridged_traffic_through()

    def _let_bridged_traffic_through(self) -> None:
        # Where bridged frames go through iptables (br_netfilter) and a FORWARD policy of
        # DROP (a Docker engine sets one), the bridge's own traffic is let through.
        if shutil.which("iptables") is None:
            return
        rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]
        if subprocess.run(["iptables", "-I", *rule], capture_output=True).returncode == 0:
            self.rule = rule

    def link(self, name: str) -> str:
        """The bridge side of a host's link."""
        return f"{self.tag}{name}"

    def add(self, name: str, number: int, *, rate: str | None = None) -> str:
        """A host ``name`` at ``SUBNET.number``, its link held to ``rate`` if given."""
        ns, outside, inside = f"{self.tag}-{name}", self.link(name), f"{self.tag}{name}i"
        address = f"{self.subnet}.{number}"
        _ip("netns", "add", ns)
        self.hosts[name] = address
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", ns)
        _ip("link", "set", outside, "master", self.bridge, "up")
        _ip("-n", ns, "link", "set", inside, "name", "eth0")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        if rate:  # both ways: into the host (the bridge side) and out of it
            tbf = ["root", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms"]
            subprocess.run(["tc", "qdisc", "add", "dev", outside, *tbf], check=True)
            subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0", *tbf])
        return address

    def start(self, name: str, command: list, env: dict | None = None, **popen):
        """``command`` run on host ``name``, in a session of its own."""
        log = open(self.folder / f"{name}-{len(self.procs)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            ["ip", "netns", "exec", f"{self.tag}-{name}", *map(str, command)],
            env=process_env(env),
            stdout=popen.pop("stdout", log),
            stderr=popen.pop("stderr", subprocess.STDOUT),
            start_new_session=True,
            **popen,
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def cluster(self, workers: list[str], env: dict | None = None) -> str:
        """cluster/scheduler.sh on host s and cluster/worker.sh on each worker host (``env``
        for the workers), every one giving up a silent link after :data:`CUT_DETECTED`."""
        scheduler = f"tcp://{self.hosts['s']}:{PORT}"
        self.start(
            "s",
            [CLUSTER_DIR / "scheduler.sh"],
            {
                **CUT_DETECTED,
                "MNISTDIST_SCHEDULER_HOST": self.hosts["s"],
                "MNISTDIST_SCHEDULER_PORT": str(PORT),
                "MNISTDIST_DASHBOARD_ADDRESS": f"{self.hosts['s']}:8787",
            },
        )
        for name in workers:
            self.start(
                name,
                [CLUSTER_DIR / "worker.sh", scheduler, "--name", name],
                {**CUT_DETECTED, **(env or {}), "MNISTDIST_WORKER_HOST": self.hosts[name]},
            )
        return scheduler

    def wait_for_workers(self, scheduler: str, n: int) -> None:
        """Until the scheduler has ``n`` workers, asked from host c."""
        code = (
            "from distributed import Client; "
            f"c = Client('{scheduler}', timeout=60); c.wait_for_workers({n}, timeout=120)"
        )
        proc = self.start("c", [sys.executable, "-c", code], stdout=subprocess.PIPE)
        _, err = proc.communicate(timeout=200)
        assert proc.returncode == 0, err

    def job(self, *args, env: dict | None = None):
        """``mnistdist ARGS`` on host c, its output piped."""
        command = [sys.executable, "-m", "mnistdist", *args, "--quiet"]
        return self.start(
            "c",
            command,
            {**CUT_DETECTED, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def cut(self, name: str) -> None:
        _ip("link", "set", self.link(name), "down")

    def restore(self, name: str) -> None:
        _ip("link", "set", self.link(name), "up")

    def stop_processes(self) -> None:
        for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
            for _, proc in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            for _, proc in self.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=grace)
        self.procs = []

    def close(self) -> None:
        self.stop_processes()
        for name in self.hosts:
            _ip("netns", "del", f"{self.tag}-{name}", check=False)
            _ip("link", "del", self.link(name), check=False)
        _ip("link", "del", self.bridge, check=False)
        if self.rule:
            subprocess.run(["iptables", "-D", *self.rule], capture_output=True)


@pytest.fixture
def hosts(tmp_path):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    made = Hosts(tmp_path)
    try:
        made.add("s", 1)
        made.add("w1", 2)
        made.add("w2", 3, rate="10mbit")  # a slow link: data moving costs what it costs
        made.add("c", 4)
        yield made
    finally:
        made.close()
    leftover = _ip("netns", "list").stdout
    assert made.tag not in leftover, leftover


@pytest.fixture(scope="module")
def embedded_search(tmp_path_factory):
    return csv_rows(embedded_run(tmp_path_factory, *SEARCH) / "cv_results.csv")


def _finish(job, timeout: float):
    try:
        stdout, stderr = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        pytest.fail(f"the job did not end within {timeout} s")
    return subprocess.CompletedProcess(job.args, job.returncode, stdout, stderr)


def test_a_search_across_hosts_equals_the_embedded_one(hosts, tmp_path, embedded_search):
    scheduler = hosts.cluster(["w1", "w2"])
    hosts.wait_for_workers(scheduler, 2)
    proc = _finish(hosts.job(*SEARCH, "--scheduler", scheduler, "--out", tmp_path / "out"), 600)
    assert proc.returncode == 0, proc.stderr
    assert f"cluster: {scheduler} with 2 workers" in proc.stdout
    assert csv_rows(tmp_path / "out" / "cv_results.csv") == embedded_search


def test_a_worker_cut_off_mid_search_changes_nothing(hosts, tmp_path, embedded_search):
    slow = sitecustomize(tmp_path / "slow", SLOW_TASKS)
    scheduler = hosts.cluster(["w1", "w2"], env=slow)
    hosts.wait_for_workers(scheduler, 2)
    out = tmp_path / "out"
    job = hosts.job(*SEARCH, "--scheduler", scheduler, "--out", out)
    wait_for(lambda: journal_rows(staging_path(out)) >= 1, timeout=300)
    hosts.cut("w1")
    t = time.monotonic()
    proc = _finish(job, 420)
    assert proc.returncode == 0, proc.stderr
    assert csv_rows(out / "cv_results.csv") == embedded_search
    print(f"\nfinished {time.monotonic() - t:.0f} s after w1 was cut off")


def test_a_scheduler_cut_off_ends_in_one_line_and_resumes(hosts, tmp_path, embedded_search):
    slow = sitecustomize(tmp_path / "slow", SLOW_TASKS)
    scheduler = hosts.cluster(["w1", "w2"], env=slow)
    hosts.wait_for_workers(scheduler, 2)
    out = tmp_path / "out"
    timeout = 10
    job = hosts.job(
        *SEARCH,
        "--scheduler",
        scheduler,
        "--out",
        out,
        "--resume",
        env={"DASK_MNISTDIST__NO_WORKERS_TIMEOUT": f"{timeout}s"},
    )
    wait_for(lambda: journal_rows(staging_path(out)) >= 1, timeout=300)
    hosts.cut("s")
    t = time.monotonic()
    proc = _finish(job, 300)
    took = time.monotonic() - t
    # The watch's question, or the client's own, finds the link gone first: either says so.
    assert_one_line_error(proc, 1, f"Dask scheduler at {scheduler}")
    assert re.search(r"has not answered for|lost the connection", proc.stderr), proc.stderr
    assert "--resume" in proc.stderr
    assert took < timeout + 30, f"{took:.0f} s after the cut, with a {timeout} s timeout"
    print(f"\nended {took:.0f} s after the scheduler was cut off ({timeout} s timeout)")
    saved = journal_rows(staging_path(out))
    assert saved >= 1

    hosts.stop_processes()  # a healthy cluster: the link back, the processes started anew
    hosts.restore("s")
    scheduler = hosts.cluster(["w1", "w2"])
    hosts.wait_for_workers(scheduler, 2)
    resumed = _finish(hosts.job(*SEARCH, "--scheduler", scheduler, "--out", out, "--resume"), 600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resume: {saved} finished neighbor searches read from" in resumed.stdout
    assert csv_rows(out / "cv_results.csv") == embedded_search
