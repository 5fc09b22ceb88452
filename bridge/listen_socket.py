"""The bridge's listening socket, and binding it before the settings are loaded.

A restart after a crash refuses every webhook until the socket listens, and ASM does not
retry one refused; from the bind on, connections wait in the kernel's backlog until the
app answers them. Loading the settings imports pydantic, most of the time from exec to
the bind, so when the listen address is given outright (the `--host`/`--port` flags or
`APICA_PD_LISTEN_HOST`/`_PORT`, the settings' top layers), `bind_early` binds it first.
`bridge.serve.run` keeps that socket only if the loaded settings name the same address,
and binds again itself (reporting any error) otherwise.

Under a supervisor that holds the socket itself (systemd socket activation: a
`.socket` unit; `LISTEN_PID`/`LISTEN_FDS`, the socket at fd 3), `inherited` takes that
socket instead: it stays open while the bridge is down, so a crash and restart refuse
nothing; webhooks wait in its backlog (docs/bridge.md, "Run it").

Stdlib only: importing anything heavier here would defeat the point.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, MutableMapping

# bridge.config reads these as ENV_PREFIX + setting (tests/bridge/test_listen_socket.py).
HOST_VARIABLE = "APICA_PD_LISTEN_HOST"
PORT_VARIABLE = "APICA_PD_LISTEN_PORT"
BACKLOG = 2048
# systemd's socket activation (sd_listen_fds(3)): sockets from fd 3 on, for LISTEN_PID.
LISTEN_PID_VARIABLE = "LISTEN_PID"
LISTEN_FDS_VARIABLE = "LISTEN_FDS"
LISTEN_FDS_START = 3


class InheritedSocketError(Exception):
    """LISTEN_FDS names sockets for this process that the bridge cannot serve on."""


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


class InheritedSocket(EarlySocket):
    """The supervisor's socket: it is the address, whatever the settings say."""

    def take(self, host: str, port: int) -> socket.socket | None:
        return self.sock


def inherited(env: MutableMapping[str, str], pid: int,
              first_fd: int = LISTEN_FDS_START) -> InheritedSocket | None:
    """The listening socket a supervisor passed to process `pid`, if any; the variables
    are removed, so that no child takes them for its own. `InheritedSocketError` when
    the variables are for us but no one listening TCP socket is there."""
    if env.get(LISTEN_PID_VARIABLE) != str(pid) or LISTEN_FDS_VARIABLE not in env:
        return None  # none, or meant for another process (a wrapper that exec'd us not)
    count = env.pop(LISTEN_FDS_VARIABLE)
    env.pop(LISTEN_PID_VARIABLE, None)
    env.pop("LISTEN_FDNAMES", None)
    if count != "1":
        raise InheritedSocketError(
            f"{LISTEN_FDS_VARIABLE}={count}: the bridge listens on exactly one socket; "
            "give its socket unit one ListenStream=")
    try:
        sock = socket.socket(fileno=first_fd)
    except OSError as exc:
        raise InheritedSocketError(
            f"{LISTEN_FDS_VARIABLE}=1 but fd {first_fd} is not a socket ({exc.strerror}); "
            "start the bridge from its socket unit, or unset LISTEN_FDS") from None
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if (sock.family not in (socket.AF_INET, socket.AF_INET6)
            or sock.type != socket.SOCK_STREAM or not listening):
        sock.detach()  # not ours to close
        raise InheritedSocketError(
            f"{LISTEN_FDS_VARIABLE}=1 but fd {first_fd} is not a listening TCP socket; "
            "the socket unit needs ListenStream=<host>:<port>")
    host, port = sock.getsockname()[:2]
    return InheritedSocket(sock, host, port)


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
