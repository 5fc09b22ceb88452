"""The bridge's listening socket, and binding it before the settings are loaded.

A restart after a crash refuses every webhook until the socket listens, and ASM does not
retry one refused; from the bind on, connections wait in the kernel's backlog until the
app answers them. Loading the settings imports pydantic, most of the time from exec to
the bind, so when the listen address is given outright (the `--host`/`--port` flags or
`APICA_PD_LISTEN_HOST`/`_PORT`, the settings' top layers), `bind_early` binds it first.
`bridge.serve.run` keeps that socket only if the loaded settings name the same address,
and binds again itself (reporting any error) otherwise.

Stdlib only: importing anything heavier here would defeat the point.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

# bridge.config reads these as ENV_PREFIX + setting (tests/bridge/test_listen_socket.py).
HOST_VARIABLE = "APICA_PD_LISTEN_HOST"
PORT_VARIABLE = "APICA_PD_LISTEN_PORT"
BACKLOG = 2048


class EarlySocket:
    """A socket bound by `bind_early`, and the address it was asked for."""

    def __init__(self, sock: socket.socket, host: str, port: int) -> None:
        self.sock = sock
        self.address = (host, port)

    def take(self, host: str, port: int) -> socket.socket | None:
        """The socket if the settings ask for the same address; else close it."""
        if (host, port) == self.address:
            return self.sock
        self.sock.close()
        return None


def bind_early(host: str | None, port: int | None, env: Mapping[str, str]) -> EarlySocket | None:
    """Bind the address the flags (`host`, `port`) or the environment give, if both are
    given and the bind works; None otherwise (the settings then decide)."""
    host = host if host is not None else env.get(HOST_VARIABLE)
    given = port if port is not None else env.get(PORT_VARIABLE)
    if host is None or given is None:
        return None
    try:
        number = int(given)
        return EarlySocket(bind(host, number), host, number)
    except (ValueError, OSError, OverflowError):
        return None  # the settings will say what is wrong, in their words


def bind(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts so port 0 resolves to a real port we can log."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP (create_server leaves it 0): asyncio sets TCP_NODELAY on
    # accepted connections only then, and without it Nagle + delayed ACK stall about a
    # quarter of the 202s by 40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
