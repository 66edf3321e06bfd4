"""docker-compose.yml and its image: read everywhere, run for real where a Docker engine answers.

The static tests check the file's design (one build, loopback ports, a job that
leaves the workers alone). ``test_compose_cluster_runs_the_documented_commands``
builds the image, brings up two workers and runs the job with the commands of
docs/compose.md, exactly, in a copy of the project; it skips, saying why, where
no engine with the Compose v2 plugin answers (CI, usually).
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import time
import tomllib
import urllib.request

import dask.config
import pytest
import yaml

from helpers import CLUSTER_DIR, REPO, free_port, make_idx_folder

#: The commands docs/compose.md gives, run verbatim by the live test.
BUILD = "docker compose build"
UP = "docker compose up -d --wait --scale worker=2"
JOB = "docker compose run --rm job report --train-size 2000 --out /results/quick"
DOWN = "docker compose down -v"
#: What the image is built from (cluster/Dockerfile and .dockerignore say the same).
CONTEXT = (
    "docker-compose.yml",
    ".dockerignore",
    "constraints.txt",
    "pyproject.toml",
    "README.md",
    "cluster",
    "mnistdist",
    "jobs",
)


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile():
    return (CLUSTER_DIR / "Dockerfile").read_text()


def test_one_service_builds_the_image_the_others_run(compose):
    services = compose["services"]
    assert set(services) == {"scheduler", "worker", "job"}
    images = {service["image"] for service in services.values()}
    assert images == {"${MNISTDIST_IMAGE:-mnistdist:latest}"}
    assert [name for name, s in services.items() if "build" in s] == ["scheduler"]
    build = services["scheduler"]["build"]
    assert build["dockerfile"] == "cluster/Dockerfile"
    assert build["args"]["PYTHON_IMAGE"] == "${PYTHON_IMAGE:-python:3.11-slim}"
    for name in ("worker", "job"):
        assert services[name]["pull_policy"] == "never", name


def test_ports_are_published_on_loopback_only_and_configurable(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert compose["services"]["scheduler"]["ports"] == [
        "127.0.0.1:${MNISTDIST_PUBLISH_SCHEDULER:-8786}:8786",
        "127.0.0.1:${MNISTDIST_PUBLISH_DASHBOARD:-8787}:8787",
    ]
    assert "ports" not in compose["services"]["worker"]  # several workers cannot share a host port
    # The job prints the dashboard link the host's browser opens, not the container's name.
    link = compose["services"]["job"]["environment"]["DASK_DISTRIBUTED__DASHBOARD__LINK"]
    assert link == "http://127.0.0.1:${MNISTDIST_PUBLISH_DASHBOARD:-8787}/status"


def test_workers_scale_with_limits_restarts_and_registration_checks(compose):
    services = compose["services"]
    worker = services["worker"]
    assert "container_name" not in worker  # `--scale worker=N` needs generated names
    env = worker["environment"]
    assert env["MNISTDIST_WORKER_THREADS"] and env["MNISTDIST_WORKER_MEMORY"]
    assert worker["depends_on"]["scheduler"]["condition"] == "service_healthy"
    for name in ("scheduler", "worker"):
        assert services[name]["restart"] == "unless-stopped"
        check = services[name]["healthcheck"]["test"]
        assert check[:3] == ["CMD", "python", "cluster/healthcheck.py"]
    assert worker["healthcheck"]["test"][3] == "worker"
    for name in ("scheduler", "worker", "job"):
        assert re.fullmatch(r"\d+g", services[name]["deploy"]["resources"]["limits"]["memory"])


def test_job_leaves_the_workers_alone_and_owns_its_outputs(compose):
    job = compose["services"]["job"]
    # With depends_on, `docker compose run` re-creates the workers at scale 1.
    assert "depends_on" not in job
    assert job["profiles"] == ["job"]
    assert job["entrypoint"][0] == "cluster/entrypoint.sh"
    assert "./results:/results" in job["volumes"] and ".:/project:ro" in job["volumes"]
    env = job["environment"]
    assert env["MNISTDIST_CACHE"] == "/data"
    assert env["MNISTDIST_DATA"] == "${MNISTDIST_DATA:+/mnist}"
    assert env["DASK_SCHEDULER_ADDRESS"] == "${MNISTDIST_TLS_DIR:+tls://}scheduler:8786"
    for name in ("worker", "job"):  # the workers read the files where the job reads them
        volumes = compose["services"][name]["volumes"]
        assert "mnist-data:/data" in volumes
        assert "${MNISTDIST_DATA:-./cluster/no-data}:/mnist:ro" in volumes


def test_tls_is_wired_through_with_a_key_per_role(compose):
    roles = {"scheduler": "scheduler", "worker": "worker", "job": "job"}
    for name, service in compose["services"].items():
        env = service["environment"]
        assert env["MNISTDIST_TLS_CA_FILE"] == "${MNISTDIST_TLS_DIR:+/tls/ca.pem}", name
        assert env["MNISTDIST_TLS_CERT"] == f"${{MNISTDIST_TLS_DIR:+/tls/{roles[name]}.pem}}", name
        assert env["MNISTDIST_TLS_KEY"] == f"${{MNISTDIST_TLS_DIR:+/tls/{roles[name]}-key.pem}}"
        assert "${MNISTDIST_TLS_DIR:-./cluster/no-tls}:/tls:ro" in service["volumes"], name
    assert (
        compose["services"]["worker"]["command"][1] == "${MNISTDIST_TLS_DIR:+tls://}scheduler:8786"
    )
    # cluster/certs.sh makes the files the services name.
    text = (CLUSTER_DIR / "certs.sh").read_text()
    assert "for role in scheduler worker job" in text and '"$role-key.pem"' in text


def test_workers_own_http_servers_stay_on_loopback(compose):
    worker = compose["services"]["worker"]
    assert "--dashboard-address" not in worker["command"] and "expose" not in worker
    assert "MNISTDIST_WORKER_DASHBOARD_ADDRESS" not in worker["environment"]
    assert (
        '--dashboard-address "${MNISTDIST_WORKER_DASHBOARD_ADDRESS:-127.0.0.1:0}"'
        in (CLUSTER_DIR / "worker.sh").read_text()
    )


def test_commands_are_ones_the_image_provides(compose):
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for name, service in compose["services"].items():
        for program in (service.get("entrypoint") or [])[:1] + service["command"][:1]:
            if program.startswith("cluster/"):
                path = REPO / program
                assert path.is_file() and os.access(path, os.X_OK), f"{name}: {program}"
    assert compose["services"]["job"]["entrypoint"][1] in scripts
    from mnistdist.cli._parser import build_parser

    build_parser().parse_args(compose["services"]["job"]["command"])
    build_parser().parse_args(JOB.split()[5:])


def test_image_is_built_from_a_base_argument_and_the_tested_versions(dockerfile):
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", dockerfile, re.M)
    installs = re.findall(r"pip install [^\n&]*", dockerfile)
    assert installs and all("-c constraints.txt" in line for line in installs)
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"pip install .*-c constraints\.txt", ci)
    pins = [
        line
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.+]+", p) for p in pins), pins
    names = {p.split("==")[0].lower().replace("_", "-") for p in pins}
    assert {"dask", "distributed", "dask-ml", "scikit-learn", "numpy", "nbclient"} <= names
    # One BLAS thread per worker thread: Distributed's nanny sets it, nothing repeats it.
    assert "OMP_NUM_THREADS" not in dockerfile
    assert "OMP_NUM_THREADS" not in (CLUSTER_DIR / "worker.sh").read_text()
    environ = dask.config.get("distributed.nanny.pre-spawn-environ")
    assert environ["OMP_NUM_THREADS"] == 1 and environ["OPENBLAS_NUM_THREADS"] == 1


def test_build_context_leaves_out_what_runs_leave():
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :] and "cluster/run/" in ignore
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == set(CONTEXT) - {"docker-compose.yml", ".dockerignore"}


def test_docs_give_the_commands_the_live_test_runs():
    text = (REPO / "docs" / "compose.md").read_text()
    for command in (BUILD, UP, JOB, DOWN, "docker compose run --rm job"):
        assert command in text, command


# ---------------------------------------------------------------- the live test


def _engine_missing() -> str | None:
    """Why no Docker engine with Compose v2 can be used here, or None when one answers."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode:
            return "`docker info` failed: no Docker engine answers (see docs/compose.md)"
        if subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30
        ).returncode:
            return "the Docker engine answers but `docker compose` (the Compose v2 plugin) does not"
    except subprocess.TimeoutExpired:
        return "the docker client did not answer within 30 s"
    return None


class Compose:
    """Runs docker commands in a project folder, each with a time limit, keeping what they said."""

    def __init__(self, folder: pathlib.Path, env: dict):
        self.folder, self.env, self.seconds = folder, env, {}

    def __call__(self, command: str | list, *, timeout: float, key: str | None = None, check=True):
        """Run ``command`` (split at spaces); fail on a timeout, or on an error with ``check``."""
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                command.split() if isinstance(command, str) else command,
                cwd=self.folder,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"`{command}` did not finish within {timeout} s\n{self.logs()}")
        if key:
            self.seconds[key] = round(time.monotonic() - t0, 1)
        if check and proc.returncode != 0:
            detail = f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}\n{self.logs()}"
            pytest.fail(f"`{command}` exited {proc.returncode}:\n{detail}")
        return proc

    def logs(self) -> str:
        try:
            return subprocess.run(
                ["docker", "compose", "logs", "--no-color", "--tail", "40"],
                cwd=self.folder,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
        except subprocess.TimeoutExpired:
            return "(docker compose logs did not answer)"

    def leftovers(self, project: str) -> list[str]:
        """The containers, networks and volumes of the project that still exist."""
        found = []
        for kind in ("container", "network", "volume"):
            listing = ["docker", kind, "ls", "--quiet", "--filter"]
            if kind == "container":
                listing = ["docker", "ps", "--all", "--quiet", "--filter"]
            out = subprocess.run(
                [*listing, f"label=com.docker.compose.project={project}"],
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout.split()
            found += [f"{kind} {name}" for name in out]
        return found


HEALTH = "python cluster/healthcheck.py worker"
WORKER_TASKS = (
    "import json; from distributed import Client; "
    "c = Client('tcp://localhost:8786', timeout=20); "
    "print(json.dumps(c.run(lambda dask_worker: dask_worker.state.executed_count)))"
)


def test_compose_cluster_runs_the_documented_commands(tmp_path):
    reason = _engine_missing()
    if reason:
        pytest.skip(reason)
    project = tmp_path / "project"  # a copy: ./results does not exist, as in a fresh clone
    for name in CONTEXT:
        source, target = REPO / name, project / name
        if source.is_dir():
            shutil.copytree(
                source, target, ignore=shutil.ignore_patterns("run", "__pycache__", "*.pyc")
            )
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    make_idx_folder(tmp_path / "mnist", n_train=2000, n_test=300)
    # The project belongs to a user who is not root, as it does for people; run as root, the
    # test gives it to uid 1234 (the job never runs as root).
    user = os.getuid() or 1234
    if not os.getuid():
        for path in [project, *project.rglob("*")]:
            os.chown(path, user, user, follow_symlinks=False)
    name = f"mnistdist-test-{os.getpid()}"
    dashboard = free_port()
    docker = Compose(
        project,
        {
            **os.environ,
            "COMPOSE_PROJECT_NAME": name,  # apart from a cluster the user runs
            "MNISTDIST_PUBLISH_SCHEDULER": str(free_port()),
            "MNISTDIST_PUBLISH_DASHBOARD": str(dashboard),
            "MNISTDIST_DATA": str(tmp_path / "mnist"),
        },
    )
    try:
        docker(BUILD, timeout=1200, key="build")
        docker(UP, timeout=300, key="up")
        with urllib.request.urlopen(f"http://127.0.0.1:{dashboard}/status", timeout=10) as page:
            assert page.status == 200
        job = docker(JOB, timeout=600, key="job")
        # `run` left both workers up, and the job used them.
        assert "with 2 workers" in job.stdout, job.stdout
        assert f"dashboard: http://127.0.0.1:{dashboard}/status" in job.stdout
        assert "cannot read" not in job.stdout  # the workers read the mounted IDX files
        running = docker("docker compose ps --quiet worker", timeout=60).stdout.split()
        assert len(running) == 2
        for index in (1, 2):  # still healthy: registered with the scheduler after the job
            docker(f"docker compose exec -T --index {index} worker {HEALTH}", timeout=60)
        tasks = json.loads(
            docker(
                ["docker", "compose", "exec", "-T", "scheduler", "python", "-c", WORKER_TASKS],
                timeout=120,
            ).stdout
        )
        assert len(tasks) == 2 and all(n > 0 for n in tasks.values()), tasks
        results = project / "results"
        metrics = json.loads((results / "quick" / "metrics.json").read_text())
        assert metrics["data"]["n_train"] == 2000
        owners = {p.stat().st_uid for p in [results, *results.rglob("*")]}
        assert owners == {user}, f"outputs owned by {owners}, not uid {user}"
        _entrypoint_refusals(docker, project, tmp_path)
    finally:
        down = docker(DOWN, timeout=300, key="down", check=False)
        left = docker.leftovers(name)
        print(f"\ncompose timings (s): {docker.seconds}")
    assert down.returncode == 0, down.stderr
    assert not left, f"`{DOWN}` left {left}"


def _entrypoint_refusals(docker: Compose, project: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """The entry point never chowns through a ./results that is a link, never runs the job as
    root: one line each, nothing of the link's target or the job touched."""
    victim = tmp_path / "victim"  # a folder of someone else's that ./results points to
    victim.mkdir()
    before = (victim.stat().st_uid, victim.stat().st_gid, victim.stat().st_mode)
    (project / "results").rename(tmp_path / "results-of-the-first-job")
    (project / "results").symlink_to(victim)
    linked = docker(JOB, timeout=300, check=False)
    assert linked.returncode == 1, linked.stdout + linked.stderr
    assert linked.stderr.count("entrypoint: ./results is a symbolic link") == 1, linked.stderr
    assert (victim.stat().st_uid, victim.stat().st_gid, victim.stat().st_mode) == before
    assert not any(victim.iterdir())
    (project / "results").unlink()
    if os.getuid():
        return  # only root can give the project to root
    os.chown(project, 0, 0)
    rooted = docker(JOB, timeout=300, check=False)
    assert rooted.returncode == 1, rooted.stdout + rooted.stderr
    assert "the job never runs as root" in rooted.stderr and "--user" in rooted.stderr
    assert not any((project / "results").iterdir())  # Docker made it; nothing ran
