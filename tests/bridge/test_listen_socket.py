"""The listening socket, and the one bound before the settings are loaded."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from bridge.config import ENV_PREFIX, BridgeConfig
from bridge.listen_socket import (
    HOST_VARIABLE,
    PORT_VARIABLE,
    EarlySocket,
    InheritedSocket,
    InheritedSocketError,
    bind,
    bind_early,
    inherited,
)


@pytest.fixture
def taken() -> Iterator[int]:
    """A port something else listens on."""
    sock = bind("127.0.0.1", 0)
    yield sock.getsockname()[1]
    sock.close()


def test_listening_socket_is_tcp_so_replies_are_not_delayed_by_nagle():
    sock = bind("127.0.0.1", 0)
    try:
        # asyncio turns TCP_NODELAY on for accepted connections only when proto is TCP.
        assert sock.proto == socket.IPPROTO_TCP
        client = socket.create_connection(sock.getsockname())
        conn, _ = sock.accept()
        assert conn.proto == socket.IPPROTO_TCP
        conn.close()
        client.close()
    finally:
        sock.close()


def test_port_in_use_is_an_os_error_and_closes_the_socket(taken):
    with pytest.raises(OSError):
        bind("127.0.0.1", taken)


def test_the_variables_are_the_settings_own():
    assert (HOST_VARIABLE, PORT_VARIABLE) == (ENV_PREFIX + "LISTEN_HOST",
                                              ENV_PREFIX + "LISTEN_PORT")
    assert {"listen_host", "listen_port"} <= set(BridgeConfig.model_fields)


def test_flags_bind_early_and_the_same_address_keeps_the_socket():
    early = bind_early("127.0.0.1", 0, {})
    assert early is not None
    try:
        assert early.address == ("127.0.0.1", 0)
        assert early.take("127.0.0.1", 0) is early.sock
        # It listens already: a connection is taken into the backlog, not refused.
        client = socket.create_connection(early.sock.getsockname(), timeout=5)
        client.close()
    finally:
        early.sock.close()


def test_flags_win_over_the_environment_as_in_the_settings(taken):
    early = bind_early("127.0.0.1", 0, {HOST_VARIABLE: "::1", PORT_VARIABLE: str(taken)})
    assert early is not None
    try:
        assert early.address == ("127.0.0.1", 0)
    finally:
        early.sock.close()


def test_the_environment_alone_binds_early():
    early = bind_early(None, None, {HOST_VARIABLE: "127.0.0.1", PORT_VARIABLE: "0"})
    assert early is not None
    early.sock.close()
    assert early.address == ("127.0.0.1", 0)


def test_another_address_in_the_settings_closes_the_early_socket():
    early = bind_early("127.0.0.1", 0, {})
    assert isinstance(early, EarlySocket)
    assert early.take("127.0.0.1", 8080) is None
    assert early.sock.fileno() == -1  # closed


@pytest.mark.parametrize("flags, env", [
    ((None, None), {}),  # nothing given: the settings' defaults or file decide
    (("127.0.0.1", None), {}),
    ((None, 0), {}),
    ((None, None), {HOST_VARIABLE: "127.0.0.1", PORT_VARIABLE: "http"}),
    ((None, None), {HOST_VARIABLE: "127.0.0.1", PORT_VARIABLE: "70000"}),
    ((None, None), {HOST_VARIABLE: "no such host.invalid", PORT_VARIABLE: "0"}),
])
def test_nothing_is_bound_early_without_a_usable_address(flags, env):
    assert bind_early(*flags, env) is None


def test_a_port_in_use_is_left_to_the_settings_to_report(taken):
    assert bind_early("127.0.0.1", taken, {}) is None


# -- a supervisor's socket (systemd socket activation) ----------------------------------


def _activation(pid: int, fds: str = "1") -> dict[str, str]:
    return {"LISTEN_PID": str(pid), "LISTEN_FDS": fds, "LISTEN_FDNAMES": "bridge",
            "OTHER": "kept"}


def test_the_supervisors_listening_socket_is_taken_whatever_the_settings_say():
    held = bind("127.0.0.1", 0)
    env = _activation(4242)
    try:
        found = inherited(env, 4242, first_fd=held.fileno())
        assert isinstance(found, InheritedSocket)
        assert found.address == held.getsockname()
        assert found.take("0.0.0.0", 8080) is found.sock  # the settings' address loses
        assert env == {"OTHER": "kept"}  # a child must not take them for its own
    finally:
        held.close()


@pytest.mark.parametrize("env", [{}, {"LISTEN_FDS": "1"}, _activation(1)])
def test_variables_for_another_process_are_left_alone(env):
    before = dict(env)
    assert inherited(env, 4242) is None
    assert env == before


def test_more_than_one_socket_is_refused():
    env = _activation(4242, fds="2")
    with pytest.raises(InheritedSocketError) as caught:
        inherited(env, 4242)
    assert str(caught.value) == ("LISTEN_FDS=2: the bridge listens on exactly one socket; "
                                 "give its socket unit one ListenStream=")
    assert env == {"OTHER": "kept"}


def test_a_file_that_is_not_a_socket_is_refused(tmp_path):
    with (tmp_path / "f").open("w") as not_a_socket, \
            pytest.raises(InheritedSocketError) as caught:
        fd = not_a_socket.fileno()
        inherited(_activation(4242), 4242, first_fd=fd)
    assert str(caught.value) == (
        f"LISTEN_FDS=1 but fd {fd} is not a socket (Socket operation on "
        "non-socket); start the bridge from its socket unit, or unset LISTEN_FDS")


@pytest.mark.parametrize("kind", ["udp", "not listening"])
def test_a_socket_that_does_not_listen_for_tcp_is_refused_and_left_open(kind):
    sock = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if kind == "udp"
            else socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    try:
        with pytest.raises(InheritedSocketError) as caught:
            inherited(_activation(4242), 4242, first_fd=sock.fileno())
        assert str(caught.value) == (
            f"LISTEN_FDS=1 but fd {sock.fileno()} is not a listening TCP socket; the socket "
            "unit needs ListenStream=<host>:<port>")
        assert sock.fileno() >= 0  # still open: the supervisor's
    finally:
        sock.close()
