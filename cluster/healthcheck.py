"""Docker health checks of the compose services (docker-compose.yml runs them every 5 s).

    python cluster/healthcheck.py scheduler    the scheduler's HTTP server answers
    python cluster/healthcheck.py worker       the scheduler lists this container's worker

A worker process that runs but has not registered (or has lost its
scheduler) is not healthy: the scheduler's own list of workers is the test.
Exit status 0 when healthy, 1 with one line on stderr otherwise.
"""

import socket
import sys
import urllib.request

DASHBOARD_PORT = 8787  # MNISTDIST_DASHBOARD_ADDRESS in docker-compose.yml


def scheduler_page(host: str, path: str) -> str:
    url = f"http://{host}:{DASHBOARD_PORT}/{path}"
    with urllib.request.urlopen(url, timeout=3) as response:
        return response.read().decode("utf-8", "replace")


def worker_registered() -> bool:
    # The scheduler's page of workers, not /json/identity.json: that one fails
    # (tuple keys in the workers' metrics) once tasks have run.
    me = socket.gethostbyname(socket.gethostname())
    page = scheduler_page("scheduler", "info/main/workers.html")
    return f"://{me}:" in page  # addresses look like tcp://172.18.0.3:40215 (tls:// with TLS)


def main(role: str) -> int:
    try:
        if role == "scheduler":
            scheduler_page("localhost", "health")
            return 0
        if role == "worker":
            if worker_registered():
                return 0
            print("healthcheck: the scheduler does not list this worker", file=sys.stderr)
            return 1
    except (OSError, ValueError) as exc:
        print(f"healthcheck: {role}: {exc}", file=sys.stderr)
        return 1
    print(f"healthcheck: unknown role {role!r} (scheduler or worker)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
