"""What a client may send or hold before it has authenticated: the guarded uvicorn protocol
on a real loopback server, raw sockets for the hostile clients."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time

import httpx
import pytest

from bridge.app import create_app
from bridge.http_limits import HttpLimits, RefusalLog, shorten, uvicorn_options
from bridge.intake.accept import Accepted
from bridge.intake.auth import Authenticator, Credentials
from bridge.route_table import RouteTable
from tests.bridge.conftest import TOKEN, FakeClock

LIMITS = HttpLimits(header_bytes=4096, header_count=20, idle_timeout=0.5, header_timeout=0.5,
                    body_timeout=0.5, connections=4)
WEBHOOK = (b'{"severity": "F", "check_id": "101", "check_name": "Shop"}')


def request(path: str = "/v1/asm/checkout", body: bytes = WEBHOOK, extra: bytes = b"") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Apica-Token: {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n").encode() \
        + extra + b"\r\n" + body


class Guarded:
    def __init__(self, url: str, refused: list[str]) -> None:
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.refused = refused

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


@pytest.fixture
def guarded(routes_file, metrics, loopback, caplog):
    table = RouteTable(routes_file, metrics)
    table.load()
    app = create_app(routes=table, accept=lambda *_: Accepted(event_count=1, duplicate=False),
                     auth=Authenticator(Credentials(tokens=(TOKEN,))), metrics=metrics)
    refused: list[str] = []
    options = uvicorn_options(LIMITS, on_refused=refused.append)
    with caplog.at_level("WARNING", logger="bridge.http"), loopback(app, options) as server:
        yield Guarded(server.url, refused)


def answer(sock: socket.socket, wait: float = 10.0) -> tuple[int | None, dict | None]:
    """(status, JSON body) of the response, or (None, None) when closed without one."""
    sock.settimeout(wait)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                break
    except ConnectionResetError:
        pass
    if not data:
        return None, None
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else None


def closed(sock: socket.socket, wait: float = 10.0) -> bool:
    sock.settimeout(wait)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


# -- the head: size and count ----------------------------------------------------------

HOSTILE_HEADS = [
    ("a 1 MB header", request(extra=b"X-Big: " + b"a" * (1 << 20) + b"\r\n"),
     431, "header_too_large", "request headers are larger than 4096 bytes"),
    ("5,000 headers", request(extra=b"".join(b"X-H%d: v\r\n" % i for i in range(5000))),
     431, "too_many_headers", "request has more than 20 header fields"),
    ("21 headers", request(extra=b"".join(b"X-H%d: v\r\n" % i for i in range(17))),
     431, "too_many_headers", "request has more than 20 header fields"),
    ("complete lines over the size", request(extra=b"X-A: " + b"a" * 2000 + b"\r\nX-B: "
                                             + b"b" * 2000 + b"\r\n"),
     431, "header_too_large", "request headers are larger than 4096 bytes"),
    ("a 60 KB route name", request(path="/v1/asm/" + "r" * 60_000),
     414, "uri_too_long", "request URL is longer than 4096 bytes"),
    ("not HTTP", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
     400, "invalid_http", "invalid HTTP request"),
]


@pytest.mark.parametrize(("data", "status", "reason", "message"),
                         [case[1:] for case in HOSTILE_HEADS],
                         ids=[case[0] for case in HOSTILE_HEADS])
def test_hostile_heads_are_refused_before_the_app(guarded, caplog, data, status, reason,
                                                  message):
    with guarded.connect() as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)  # may be refused mid-send: the answer is already there
        assert answer(sock) == (status, {"error": reason, "message": message})
        assert closed(sock)
    assert guarded.refused == [reason]
    [line] = [r for r in caplog.records if getattr(r, "event", "") == "request_refused"]
    assert (line.getMessage(), line.reason, line.status) == (
        f"request refused: {message}", reason, status)


def test_a_head_sent_in_small_pieces_is_measured_not_over_counted(guarded):
    """Every chunk of an unfinished head counts; a head under the limit still passes."""
    data = request(extra=b"X-Pad: " + b"p" * 3500 + b"\r\n")
    head_end = data.index(b"\r\n\r\n")
    with guarded.connect() as sock:
        for i in range(0, head_end, 100):
            sock.sendall(data[i:min(i + 100, head_end)])
            time.sleep(0.002)
        sock.sendall(data[head_end:])
        assert answer(sock)[0] == 202


def test_20_headers_are_taken(guarded):
    with guarded.connect() as sock:
        sock.sendall(request(extra=b"".join(b"X-H%d: v\r\n" % i for i in range(16))))
        assert answer(sock)[0] == 202


def pipelined_statuses(sock: socket.socket, count: int, wait: float = 10.0) -> list[int]:
    """The statuses of `count` responses read in turn: one buffered reader, each body
    read by its Content-Length (a recv may hold the start of the next response)."""
    sock.settimeout(wait)
    statuses = []
    with sock.makefile("rb") as reader:
        for _ in range(count):
            statuses.append(int(reader.readline().split()[1]))
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
    return statuses


def test_pipelined_requests_in_one_write_are_all_answered(guarded):
    with guarded.connect() as sock:
        sock.sendall(request() * 3)
        statuses = pipelined_statuses(sock, 3)
    assert statuses == [202, 202, 202]


# -- time: idle, header and body timeouts ------------------------------------------------


def test_an_idle_connection_is_closed_without_an_answer(guarded):
    with guarded.connect() as sock:
        assert answer(sock) == (None, None)
    assert guarded.refused == []  # nothing was asked, so nothing was refused


def test_an_idle_keep_alive_connection_is_closed_after_its_answer(guarded):
    with guarded.connect() as sock:
        sock.sendall(request())
        assert answer(sock)[0] == 202
        assert closed(sock)


def trickle(sock: socket.socket, data: bytes, every: float = 0.1, limit: float = 10.0) -> int:
    """Send `data` a byte at a time until the server answers; the bytes it took."""
    sock.setblocking(False)
    deadline = time.monotonic() + limit
    for sent, byte in enumerate(data):
        if time.monotonic() > deadline:
            break
        try:
            if sock.recv(1, socket.MSG_PEEK):
                return sent
        except BlockingIOError:
            pass
        try:
            sock.send(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return sent
        time.sleep(every)
    raise AssertionError("the server never answered the trickling client")


def test_a_client_trickling_its_headers_is_answered_408_and_closed(guarded):
    """Slowloris: each byte arrives in time, the headers never do."""
    with guarded.connect() as sock:
        sent = trickle(sock, request(extra=b"X-Slow: " + b"s" * 500 + b"\r\n"))
        assert sent < 200  # long before the head was complete
        sock.setblocking(True)
        assert answer(sock) == (408, {"error": "header_timeout",
                                      "message": "request headers not received within 0.5 "
                                                 "seconds"})
    assert guarded.refused == ["header_timeout"]


def test_a_client_trickling_its_body_is_answered_408_and_the_app_stores_nothing(guarded):
    data = request(body=b" " * 1000)
    with guarded.connect() as sock:
        head_end = data.index(b"\r\n\r\n") + 4
        sock.sendall(data[:head_end])
        trickle(sock, data[head_end:])
        sock.setblocking(True)
        assert answer(sock) == (408, {"error": "body_timeout",
                                      "message": "request body not received within 0.5 "
                                                 "seconds"})
    assert guarded.refused == ["body_timeout"]


def test_an_answer_without_the_body_is_not_followed_by_a_408(guarded):
    """The app refuses (401) before reading the body; the client never sends it."""
    data = request(body=b" " * 1000).replace(TOKEN.encode(), b"wrong-token-0123456789")
    with guarded.connect() as sock:
        sock.sendall(data[:data.index(b"\r\n\r\n") + 4])
        assert answer(sock)[0] == 401
        assert closed(sock)
        assert guarded.refused == ["body_timeout"]


# -- connections -------------------------------------------------------------------------


def test_one_connection_over_the_limit_is_answered_503(guarded):
    held = [guarded.connect() for _ in range(LIMITS.connections)]
    try:
        time.sleep(0.1)  # let the server accept them all
        with guarded.connect() as extra:
            assert answer(extra) == (503, {
                "error": "too_many_connections",
                "message": "the bridge has 4 connections open; try again later"})
        held.pop().close()
        time.sleep(0.1)
        assert httpx.get(guarded.url + "/healthz", timeout=5).status_code == 200
    finally:
        for sock in held:
            sock.close()
    assert guarded.refused == ["too_many_connections"]


# -- refusal log lines -------------------------------------------------------------------


def test_refusal_lines_are_rate_limited_per_reason_and_count_what_was_left_out(caplog):
    logger = logging.getLogger("test.refusals")
    clock = FakeClock()
    refusals = RefusalLog(logger, clock=clock, lines=3, window=60)
    with caplog.at_level("WARNING", logger="test.refusals"):
        for _ in range(10):
            refusals.log(logging.WARNING, "unauthorized", "webhook unauthorized", route="x")
        refusals.log(logging.WARNING, "too_large", "webhook refused: too large")
        clock.now += 60
        refusals.log(logging.WARNING, "unauthorized", "webhook unauthorized", route="x")
    lines = [(r.reason, getattr(r, "suppressed", 0)) for r in caplog.records]
    assert lines == [("unauthorized", 0)] * 3 + [("too_large", 0), ("unauthorized", 7)]


def test_logged_values_from_the_request_are_cut_short(caplog):
    logger = logging.getLogger("test.refusals")
    with caplog.at_level("WARNING", logger="test.refusals"):
        RefusalLog(logger).log(logging.WARNING, "unknown_route", "m" * 1000, route="r" * 60_000,
                               status=404)
    [record] = caplog.records
    assert record.route == "r" * 99 + "…"
    assert record.getMessage() == "m" * 399 + "…"
    assert record.status == 404
    assert shorten(12345) == 12345
