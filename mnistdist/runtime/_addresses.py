"""Scheduler addresses, checked before anything tries to connect to them.

A job given ``--scheduler`` (or ``DASK_SCHEDULER_ADDRESS``) connects to a
scheduler in another process, so the address must name a network protocol
Distributed speaks between processes (``tcp``, ``tls``, ``ws``, ``wss``), a
host and a port in 1-65535; ``tls``/``wss`` need certificates. Addresses are
parsed with Distributed's own parser, so what passes here is what
``Client`` accepts.

A scheduler file (``dask scheduler --scheduler-file``, ``dask-mpi``,
dask-jobqueue's runners) is JSON naming the scheduler's ``address``; it is
read and its address checked the same way.
"""

from __future__ import annotations

import json
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


def read_scheduler_file(path: str | os.PathLike) -> str:
    """The scheduler address in a Dask scheduler file, checked; else :class:`OptionError`.

    Parameters
    ----------
    path : path
        A file written by ``dask scheduler --scheduler-file PATH`` (JSON with
        the scheduler's ``address``, among other fields).

    Returns
    -------
    str
        The address, as :func:`check_scheduler_address` accepts it.

    Raises
    ------
    OptionError
        When the file is missing, unreadable, not JSON, has no ``address``,
        or names an address no job can connect to.
    """
    shown = f"scheduler file {os.fsdecode(path)!r}"
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except FileNotFoundError:
        raise OptionError(f"{shown} does not exist") from None
    except IsADirectoryError:
        raise OptionError(f"{shown} is a folder, not a file") from None
    except OSError as exc:
        raise OptionError(f"{shown} cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise OptionError(f"{shown} is not JSON: is it a Dask scheduler file?") from None
    address = info.get("address") if isinstance(info, dict) else None
    if not isinstance(address, str):
        raise OptionError(f"{shown} names no scheduler 'address': is it a Dask scheduler file?")
    return check_scheduler_address(address)
