"""`protoken infra health`: the container health check — can this container reach the coordinator's port?

In the server's container that is its own listening port; in a client's container it is the
server it dials, so a client whose network path is broken shows as unhealthy.
"""

from __future__ import annotations

import os
import socket

from protoken.errors import UserError

ADDRESS_ENV = "PROTOKEN_HEALTH_ADDRESS"
DEFAULT_ADDRESS = "127.0.0.1:50051"


def split_address(address: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 hosts in brackets) as (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"address {address!r} must be HOST:PORT")
    return host.strip("[]"), int(port)


def check(address: str | None, timeout_s: float = 3.0) -> str:
    """Open a TCP connection to `address` (default: $PROTOKEN_HEALTH_ADDRESS); returns it."""
    if address is None:
        address = os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS
    host, port = split_address(address)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise UserError(f"cannot reach {address}: {exc.strerror or exc}") from exc
    return address
