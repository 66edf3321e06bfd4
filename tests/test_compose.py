"""docker-compose.yml and cluster/: checked by reading them (this machine has no docker engine)."""

import os
import re
import shutil
import subprocess
import tomllib

import pytest
import yaml
from conftest import CLUSTER_DIR, REPO


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile():
    return (CLUSTER_DIR / "Dockerfile").read_text()


def _env(service) -> dict:
    env = service.get("environment", {})
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def test_services_and_one_image(compose):
    services = compose["services"]
    assert set(services) == {"scheduler", "worker", "job"}
    for service in services.values():
        assert service["image"] == "mnistdist:latest"
        assert service["build"] == {"context": ".", "dockerfile": "cluster/Dockerfile"}


def test_ports_are_published_on_loopback_only(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert {p.split(":", 1)[1] for p in compose["services"]["scheduler"]["ports"]} == {
        "8786:8786",
        "8787:8787",
    }
    assert "ports" not in compose["services"]["worker"]  # several workers cannot share a host port


def test_workers_scale_with_limits_and_health(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker  # `--scale worker=N` needs generated names
    assert worker["deploy"]["resources"]["limits"]["memory"]
    env = _env(worker)
    assert env["MNISTDIST_WORKER_THREADS"] and env["MNISTDIST_WORKER_MEMORY"]
    assert worker["depends_on"]["scheduler"]["condition"] == "service_healthy"
    for name in ("scheduler", "worker"):
        assert compose["services"][name]["healthcheck"]["test"][0] == "CMD"
    assert "8789" in " ".join(worker["command"]) and "8789" in " ".join(
        worker["healthcheck"]["test"]
    )


def test_shared_data_volume_and_one_shot_job(compose):
    services = compose["services"]
    assert "mnist-data" in compose["volumes"]
    assert (
        "mnist-data:/data" in services["worker"]["volumes"]
        and "mnist-data:/data" in services["job"]["volumes"]
    )
    job = services["job"]
    assert job["profiles"] == ["job"]
    assert _env(job)["MNISTDIST_CACHE"] == "/data"
    assert _env(job)["DASK_SCHEDULER_ADDRESS"].endswith("://scheduler:8786")
    assert any(v.endswith(":/results") for v in job["volumes"])
    assert job["depends_on"]["worker"]["condition"] == "service_healthy"


def test_commands_are_ones_the_image_provides(compose, dockerfile):
    """Each command is a script in cluster/ (copied into the image) or the installed mnistdist entry point."""
    assert (
        re.search(r"^COPY cluster \./cluster$", dockerfile, re.M)
        and "WORKDIR /opt/mnistdist" in dockerfile
    )
    assert re.search(r"^RUN pip install --no-cache-dir \.", dockerfile, re.M)
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for name, service in compose["services"].items():
        program = (service.get("entrypoint") or service["command"])[0]
        if program.startswith("cluster/"):
            path = REPO / program
            assert path.is_file() and os.access(path, os.X_OK), f"{name}: {program}"
        else:
            assert program in scripts, f"{name}: {program} is not an installed entry point"
    job_args = compose["services"]["job"]["command"]
    from jobs.cli import build_parser

    build_parser().parse_args(job_args)  # the job's default command is one mnistdist accepts


def test_scripts_and_containers_share_one_configuration(dockerfile):
    assert "DASK_CONFIG=/opt/mnistdist/cluster" in dockerfile
    for script in ("scheduler.sh", "worker.sh"):
        text = (CLUSTER_DIR / script).read_text()
        assert 'export DASK_CONFIG="${DASK_CONFIG:-$here}"' in text and '. "$here/tls.sh"' in text
    config = yaml.safe_load((CLUSTER_DIR / "dask.yaml").read_text())
    assert "distributed" in config and "mnistdist" in config


def test_tls_is_wired_through(compose):
    for name in ("scheduler", "worker", "job"):
        env = _env(compose["services"][name])
        assert {"MNISTDIST_TLS_CA_FILE", "MNISTDIST_TLS_CERT", "MNISTDIST_TLS_KEY"} <= set(env), (
            name
        )
        assert any(v.endswith(":/tls:ro") for v in compose["services"][name]["volumes"]), name


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def test_docker_compose_config():
    if not _docker_engine():
        pytest.skip(
            "no docker engine answers here: `docker compose config` not run (the file was checked above)"
        )
    proc = subprocess.run(
        ["docker", "compose", "config", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
