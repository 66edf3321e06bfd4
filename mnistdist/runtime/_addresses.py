"""Scheduler addresses, checked before anything tries to connect to them.

A job given ``--scheduler`` (or ``DASK_SCHEDULER_ADDRESS``) connects to a
scheduler in another process, so the address must name a network protocol
Distributed speaks between processes (``tcp``, ``tls``, ``ws``, ``wss``), a
host and a port in 1-65535; ``tls``/``wss`` need certificates. Addresses are
parsed with Distributed's own parser, so what passes here is what
``Client`` accepts.
"""

from __future__ import annotations

import os

import dask.config
from distributed.comm.addressing import get_address_host_port, parse_address

from ..errors import OptionError

#: Protocols a job can use to reach a scheduler in another process.
PROTOCOLS = ("tcp", "tls", "ws", "wss")
#: The variables that name a job's TLS certificates (the cluster scripts read the same).
TLS_ENV = ("MNISTDIST_TLS_CA_FILE", "MNISTDIST_TLS_CERT", "MNISTDIST_TLS_KEY")


def _tls_configured() -> bool:
    """Whether certificates are set, in mnistdist's variables or in Dask's TLS settings."""
    if any(os.environ.get(name) for name in TLS_ENV):
        return True  # whether they are complete is checked when connecting
    tls = dask.config.get("distributed.comm.tls", {}) or {}
    return bool(tls.get("ca-file") and (tls.get("client") or {}).get("cert"))


def check_scheduler_address(address: str) -> str:
    """Return ``address`` if a job can connect to it, else raise :class:`OptionError`.

    Parameters
    ----------
    address : str
        A scheduler address such as ``tcp://host:8786`` (``host:8786`` means tcp).

    Returns
    -------
    str
        The address, unchanged.

    Raises
    ------
    OptionError
        Naming the address and what is wrong with it: empty, unknown or
        in-process protocol, no host, no or bad port, TLS without certificates.
    """
    shown = f"scheduler address {address!r}"
    if not address.strip():
        raise OptionError(f"{shown} is empty")
    if any(c.isspace() or not c.isprintable() for c in address):
        raise OptionError(f"{shown} contains spaces or control characters")
    try:
        protocol, _ = parse_address(address)
    except ValueError as exc:
        raise OptionError(f"{shown}: {exc}") from None
    if protocol == "inproc":
        raise OptionError(
            f"{shown}: inproc:// schedulers live inside one process; a job cannot reach one"
        )
    if protocol not in PROTOCOLS:
        raise OptionError(
            f"{shown}: unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}"
        )
    try:
        host, port = get_address_host_port(address)
    except ValueError:
        raise OptionError(f"{shown}: expected {protocol}://HOST:PORT") from None
    if not host:
        raise OptionError(f"{shown}: no host")
    if not 1 <= port <= 65535:
        raise OptionError(f"{shown}: port {port} is outside 1-65535")
    if protocol in ("tls", "wss") and not _tls_configured():
        raise OptionError(
            f"{shown}: {protocol}:// needs certificates; set {', '.join(TLS_ENV)} "
            "(or Dask's distributed.comm.tls settings)"
        )
    return address
