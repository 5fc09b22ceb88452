"""The sender against a scripted HTTP server on loopback: every answer classified."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bridge.delivery.sender import (
    MAX_ANSWER_BYTES,
    Dead,
    Delivered,
    RetryLater,
    Sender,
    classify,
)

EVENT = {"routing_key": "k" * 32, "event_action": "trigger", "dedup_key": "d",
         "payload": {"summary": "s", "source": "x", "severity": "info"}}


class Script:
    """What the next requests get: (status, headers, body, delay seconds)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes, float]] = []
        self.received: list[dict] = []
        self.paths: list[str] = []
        self.peers: list[tuple[str, int]] = []
        self.release = threading.Event()


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as PagerDuty

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            script.received.append(json.loads(self.rfile.read(length)))
            script.paths.append(self.path)
            script.peers.append(self.client_address)
            status, headers, body, delay = script.answers.pop(0)
            if delay:
                script.release.wait(delay)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/v2/enqueue", script
    script.release.set()
    httpd.shutdown()
    httpd.server_close()


def _json(body: dict) -> bytes:
    return json.dumps(body).encode()


def test_202_is_delivered_and_body_sent_as_json(server):
    url, script = server
    script.answers.append((202, {}, _json({"status": "success", "message": "Event processed",
                                            "dedup_key": "d"}), 0))
    outcome = Sender(url).send(EVENT)
    assert outcome == Delivered(202, "Event processed")
    assert script.received == [EVENT]


def test_400_is_dead_with_pagerduty_message(server):
    url, script = server
    script.answers.append((400, {}, _json({"status": "invalid event",
                                            "message": "Event object is invalid",
                                            "errors": ["'payload.summary' is missing"]}), 0))
    outcome = Sender(url).send(EVENT)
    assert outcome == Dead("invalid_event",
                           "Event object is invalid: 'payload.summary' is missing", 400)


@pytest.mark.parametrize("error", [
    "Length of 'routing_key' is incorrect (should be 32 characters)",
    "Invalid routing key",
])
def test_400_naming_the_routing_key_is_a_loud_configuration_error(server, error):
    url, script = server
    script.answers.append((400, {}, _json({"status": "invalid event",
                                            "message": "Event object is invalid",
                                            "errors": [error]}), 0))
    assert Sender(url).send(EVENT) == Dead(
        "routing_key_refused", f"Event object is invalid: {error}", 400, loud=True)


def test_longest_request_is_connect_plus_read_timeout():
    assert Sender("http://127.0.0.1:9/v2/enqueue", timeout=(3.0, 10.0)).longest_request == 13.0
    assert Sender("http://127.0.0.1:9/v2/enqueue", timeout=2.0).longest_request == 4.0


@pytest.mark.parametrize(("status", "reason"),
                         [(401, "unauthorized"), (403, "forbidden"), (404, "not_found")])
def test_auth_and_not_found_are_loud_dead_letters(server, status, reason):
    url, script = server
    script.answers.append((status, {}, b"nope", 0))
    outcome = Sender(url).send(EVENT)
    assert outcome == Dead(reason, "nope", status, loud=True)


def test_413_is_dead(server):
    url, script = server
    script.answers.append((413, {}, b"", 0))
    assert Sender(url).send(EVENT) == Dead("too_large", "", 413)


def test_429_with_retry_after(server):
    url, script = server
    script.answers.append((429, {"Retry-After": "7"}, _json({"message": "slow down"}), 0))
    assert Sender(url).send(EVENT) == RetryLater(7.0, "rate_limited", 429, "slow down")


def test_429_without_retry_after_backs_off(server):
    url, script = server
    script.answers.append((429, {}, b"", 0))
    assert Sender(url).send(EVENT) == RetryLater(None, "rate_limited", 429, "")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_backs_off(server, status):
    url, script = server
    script.answers.append((status, {}, b"<html>down</html>", 0))
    assert Sender(url).send(EVENT) == RetryLater(None, "server_error", status,
                                                 "<html>down</html>")


def test_redirect_is_not_followed(server):
    url, script = server
    script.answers.append((302, {"Location": "http://127.0.0.1:1/"}, b"", 0))
    outcome = Sender(url).send(EVENT)
    assert outcome == RetryLater(None, "unexpected_status", 302, "")
    assert len(script.received) == 1


def test_timeout_backs_off(server):
    url, script = server
    script.answers.append((202, {}, b"{}", 5.0))
    outcome = Sender(url, timeout=0.2).send(EVENT)
    assert isinstance(outcome, RetryLater)
    assert (outcome.after, outcome.reason, outcome.status) == (None, "timeout", None)


def test_connection_refused_backs_off():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcome = Sender(f"http://127.0.0.1:{port}/v2/enqueue").send(EVENT)
    assert isinstance(outcome, RetryLater)
    assert outcome.reason == "connection_error"


def test_bad_url_is_kept_for_retry():
    outcome = Sender("notaurl").send(EVENT)
    assert outcome == RetryLater(None, "request_error", None, "not an http(s) URL: notaurl")


def test_long_messages_are_truncated(server):
    url, script = server
    script.answers.append((400, {}, b"x" * 10_000, 0))
    outcome = Sender(url).send(EVENT)
    assert isinstance(outcome, Dead)
    assert len(outcome.message) == 2000


def test_classify_table_entry():
    assert classify(202) == Delivered(202)
    assert classify(429, retry_after=3) == RetryLater(3, "rate_limited", 429)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_environment_proxy_carries_the_post(server):
    proxy_url, script = server
    proxy = proxy_url.removesuffix("/v2/enqueue")
    script.answers.append((202, {}, _json({"message": "Event processed"}), 0))
    sender = Sender("http://events.pagerduty.invalid/v2/enqueue", env={"HTTP_PROXY": proxy})
    assert sender.send(EVENT) == Delivered(202, "Event processed")
    # A forward proxy gets the absolute URL.
    assert script.paths == ["http://events.pagerduty.invalid/v2/enqueue"]


def test_lower_case_proxy_variables_win(server):
    proxy_url, script = server
    script.answers.append((202, {}, b"{}", 0))
    env = {"HTTP_PROXY": f"http://127.0.0.1:{_closed_port()}",
           "http_proxy": proxy_url.removesuffix("/v2/enqueue")}
    assert Sender("http://events.pagerduty.invalid/v2/enqueue", env=env).send(EVENT) == (
        Delivered(202))


def test_no_proxy_sends_direct(server):
    url, script = server
    script.answers.append((202, {}, b"{}", 0))
    env = {"HTTP_PROXY": f"http://127.0.0.1:{_closed_port()}", "NO_PROXY": "127.0.0.1"}
    assert Sender(url, env=env).send(EVENT) == Delivered(202)
    assert script.paths == ["/v2/enqueue"]


def test_an_unreachable_proxy_is_a_connection_error_kept_for_retry(server):
    url, _ = server
    outcome = Sender(url, env={"HTTP_PROXY": f"http://127.0.0.1:{_closed_port()}"}).send(EVENT)
    assert isinstance(outcome, RetryLater)
    assert outcome.reason == "connection_error"


def test_keep_alive_connections_are_reused(server):
    url, script = server
    script.answers.extend([(202, {}, b"{}", 0)] * 3)
    sender = Sender(url)
    assert [sender.send(EVENT) for _ in range(3)] == [Delivered(202)] * 3
    assert len(set(script.peers)) == 1  # one connection for the three
    sender.close()


def test_an_oversized_answer_is_cut_and_its_connection_not_reused(server):
    url, script = server
    script.answers.append((400, {}, b"x" * (MAX_ANSWER_BYTES + 5000), 0))
    script.answers.append((202, {}, _json({"message": "Event processed"}), 0))
    sender = Sender(url)
    first = sender.send(EVENT)
    assert isinstance(first, Dead) and len(first.message) == 2000
    # The unread rest of the first answer must not be taken for the second one.
    assert sender.send(EVENT) == Delivered(202, "Event processed")
    assert len(set(script.peers)) == 2
    sender.close()
