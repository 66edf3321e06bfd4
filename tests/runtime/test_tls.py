"""TLS as a real `dask scheduler` (cluster/scheduler.sh) speaks it: clients without a certificate
or with one from another CA refused, hostname checks where certificates name their hosts, and
keys that others may read refused (cluster/certs.sh makes the files)."""

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest
from distributed import Client

from mnistdist.errors import ClusterError
from mnistdist.runtime import connect, tls_security

from helpers import CLUSTER_DIR, free_port, process_env, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl is needed to make throwaway certificates"
)
TLS_ENV = ("MNISTDIST_TLS_CA_FILE", "MNISTDIST_TLS_CERT", "MNISTDIST_TLS_KEY")


def _certs(folder):
    """cluster/certs.sh's files in ``folder``: a CA, and scheduler, worker and job certificates."""
    subprocess.run([str(CLUSTER_DIR / "certs.sh"), str(folder), "1"], check=True, timeout=120)
    return folder


def _env(folder, role):
    files = (folder / "ca.pem", folder / f"{role}.pem", folder / f"{role}-key.pem")
    return dict(zip(TLS_ENV, map(str, files), strict=True))


def _refused(address: str, context: ssl.SSLContext) -> bool:
    """Whether a TLS client with ``context`` is turned away by the server at ``address``."""
    host, port = address.removeprefix("tls://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(b"\0" * 8)  # TLS 1.3: the server judges the client's certificate
                return tls.recv(1) == b""  # after the client's side of the handshake
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return True


def _context(ca, cert=None, key=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False
    if cert:
        context.load_cert_chain(str(cert), str(key))
    return context


def test_clients_without_a_certificate_or_from_another_ca_are_refused(
    start_cluster, tmp_path, monkeypatch
):
    ours, theirs = _certs(tmp_path / "ours"), _certs(tmp_path / "theirs")
    cluster = start_cluster(1, env=_env(ours, "scheduler"), tls=True)
    for name, value in _env(ours, "job").items():  # the job's own certificate: welcome
        monkeypatch.setenv(name, value)
    with connect(cluster.address, timeout="10s") as client:
        assert len(client.run(os.getpid)) == 1
    assert not _refused(
        cluster.address, _context(ours / "ca.pem", ours / "job.pem", ours / "job-key.pem")
    )
    # No certificate at all, and one signed by another CA: turned away at the handshake.
    assert _refused(cluster.address, _context(ours / "ca.pem"))
    assert _refused(
        cluster.address, _context(ours / "ca.pem", theirs / "job.pem", theirs / "job-key.pem")
    )
    monkeypatch.setenv("MNISTDIST_TLS_CERT", str(theirs / "job.pem"))
    monkeypatch.setenv("MNISTDIST_TLS_KEY", str(theirs / "job-key.pem"))
    with (
        pytest.raises(ClusterError, match="could not reach"),
        connect(cluster.address, timeout="3s"),
    ):
        pass


def _sign(folder, ca, name, san):
    """A certificate ``name.pem`` signed by the CA in ``ca``, naming ``san`` (or nothing)."""

    def ssl_(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ssl_(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}-key.pem",
        "-out",
        "x.csr",
        "-subj",
        f"/CN={name}",
    )
    (folder / "x.ext").write_text(
        (f"subjectAltName={san}\n" if san else "") + "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    ssl_(
        "x509",
        "-req",
        "-in",
        "x.csr",
        "-CA",
        str(ca / "ca.pem"),
        "-CAkey",
        str(ca / "ca-key.pem"),
        "-CAcreateserial",
        "-out",
        f"{name}.pem",
        "-days",
        "1",
        "-extfile",
        "x.ext",
    )


@pytest.fixture
def named_scheduler(tmp_path):
    """A TLS scheduler whose certificate names another host than the one clients dial."""
    folder = tmp_path / "certs"
    folder.mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=test CA",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    _sign(folder, folder, "scheduler", "DNS:elsewhere.invalid")
    _sign(folder, folder, "named", "DNS:client.invalid")
    _sign(folder, folder, "unnamed", None)
    port = free_port()
    env = process_env(
        {
            **_env(folder, "scheduler"),
            "MNISTDIST_SCHEDULER_PORT": str(port),
            "MNISTDIST_DASHBOARD_ADDRESS": f"127.0.0.1:{free_port()}",
        }
    )
    with open(tmp_path / "scheduler.log", "w") as log:
        proc = subprocess.Popen(
            [str(CLUSTER_DIR / "scheduler.sh")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: _listening(port), timeout=60)
        yield f"tls://127.0.0.1:{port}", folder
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def _listening(port: int) -> bool:
    with contextlib.closing(socket.socket()) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_hostname_checks_where_the_certificates_name_hosts(named_scheduler, monkeypatch):
    address, folder = named_scheduler
    monkeypatch.setenv("MNISTDIST_TLS_CA_FILE", str(folder / "ca.pem"))
    for name, accepted in (("unnamed", True), ("named", False)):
        monkeypatch.setenv("MNISTDIST_TLS_CERT", str(folder / f"{name}.pem"))
        monkeypatch.setenv("MNISTDIST_TLS_KEY", str(folder / f"{name}-key.pem"))
        # A deployment that names its hosts: the scheduler's certificate must name 127.0.0.1.
        assert (type(tls_security()).__name__ == "_NamedSecurity") == (not accepted)
        if accepted:  # one that does not (Dask's own way, a dedicated CA): no name to check
            with Client(address, security=tls_security(), timeout=20) as client:
                assert client.scheduler_info()["address"] == address
        else:
            with pytest.raises(OSError), Client(address, security=tls_security(), timeout=5):
                pass


def test_keys_others_may_read_are_refused_by_the_client_and_the_scripts(tmp_path, monkeypatch):
    folder = _certs(tmp_path / "certs")
    env = _env(folder, "scheduler")
    os.chmod(env["MNISTDIST_TLS_KEY"], 0o640)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(
        ClusterError,
        match=r"scheduler-key.pem may be read by its group or others \(mode 640\): chmod 600",
    ):
        tls_security()
    started = time.monotonic()
    proc = subprocess.run(
        [str(CLUSTER_DIR / "scheduler.sh")],
        env=process_env({**env, "MNISTDIST_SCHEDULER_PORT": str(free_port())}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and time.monotonic() - started < 30
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "may be read by its group or others (mode 640): chmod 600 it" in lines[0]
    )
    os.chmod(env["MNISTDIST_TLS_KEY"], 0o600)
    assert tls_security() is not None
