"""The REST client as the two Go clients call: headers, query encoding, retries, error wording."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sandbox.clock import ManualClock
from sandbox.pulumi_provider import STAND_IN
from sandbox.pulumi_provider.rest import (
    CALL_LOG,
    Connection,
    RestClient,
    RestError,
    log_calls_to,
)
from sandbox.pulumi_provider.retry import Timing
from sandbox.server import PagerDutySandbox
from tests.sandbox.pulumi_provider.conftest import FakeTime


class Scripted:
    """A loopback HTTP server answering from a script and recording what it was sent."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []
        script = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                script.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length) if length else b"",
                    }
                )
                status, headers, body = script.answers.pop(0)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


JSON = {"content-type": "application/json"}


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[Scripted] = []

    def start(*answers: tuple[int, dict[str, str], bytes]) -> Scripted:
        servers.append(Scripted(list(answers)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def error_body(message: str, code: int, errors: list[str] | None = None) -> bytes:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors is not None:
        body["errors"] = errors
    return json.dumps({"error": body}).encode()


def test_headers_and_query_as_the_go_clients_send_them(scripted, fake_time: FakeTime):
    stub = scripted((200, JSON, b'{"services": []}'), (204, {}, b""))
    client = RestClient(Connection(stub.url, "tok-1234"), "heimweh", fake_time.timing)
    params = [("query", "Check out"), ("include[]", "teams"), ("limit", "100")]
    assert client.get("/services", params) == {"services": []}
    assert client.call("DELETE", "/services/P1") is None
    first = stub.requests[0]
    assert first["path"] == "/services?include%5B%5D=teams&limit=100&query=Check+out"
    headers = {k.lower(): v for k, v in first["headers"].items()}
    assert headers["authorization"] == "Token token=tok-1234"
    assert headers["accept"] == "application/vnd.pagerduty+json;version=2"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].endswith(f"Terraform/0.11+compatible ({STAND_IN})")
    assert {k.lower(): v for k, v in stub.requests[1]["headers"].items()}["content-type"] == (
        "application/json"
    )


def test_a_trailing_slash_on_the_override_gives_a_double_slash(pd: PagerDutySandbox, fake_time):
    client = RestClient(Connection(pd.url + "/", pd.token), "heimweh", fake_time.timing)
    with pytest.raises(RestError) as error:
        client.get("/services")
    assert error.value.not_found
    assert str(error.value) == (
        f"GET API call to {pd.url}//services failed 404 Not Found. Code: 2100, "
        "Errors: <nil>, Message: Not Found"
    )


def test_error_wording_of_each_client(scripted, fake_time: FakeTime):
    stub = scripted(
        (
            400,
            JSON,
            error_body(
                "Invalid Input Provided",
                2001,
                ["Name has already been taken", "Escalation policy P not found"],
            ),
        ),
        (400, JSON, error_body("Invalid Input Provided", 2001, ["a", "b", "c"])),
        (404, JSON, error_body("Not Found", 2100)),
        (502, {"content-type": "text/html"}, b"<html>bad gateway</html>"),
        (502, {"content-type": "text/html"}, b"<html>bad gateway</html>"),
        (502, {"content-type": "text/html"}, b"<html>bad gateway</html>"),
    )
    heimweh = RestClient(Connection(stub.url, "t"), "heimweh", fake_time.timing)
    framework = RestClient(Connection(stub.url, "t"), "go-pagerduty", fake_time.timing)
    messages = []
    for client, path in (
        (heimweh, "/services"),
        (framework, "/services"),
        (framework, "/x"),
        (heimweh, "/y"),
        (framework, "/z"),
    ):
        with pytest.raises(RestError) as error:
            client.call("POST" if path == "/services" else "GET", path, body={"a": 1})
        messages.append((error.value.status, str(error.value)))
    assert messages == [
        (
            400,
            f"POST API call to {stub.url}/services failed 400 Bad Request. Code: 2001, Errors: "
            "[Name has already been taken Escalation policy P not found], "
            "Message: Invalid Input Provided",
        ),
        (
            400,
            "HTTP response failed with status code 400, message: Invalid Input Provided "
            "(code: 2001): a (and 2 more errors...)",
        ),
        (404, "HTTP response failed with status code 404, message: Not Found (code: 2100)"),
        (502, f"GET API call to {stub.url}/y failed: 502 Bad Gateway"),
        # go-pagerduty retried the 502 once, a second after the first.
        (502, "HTTP response with status code 502 does not contain Content-Type: application/json"),
    ]
    assert fake_time.sleeps == [1.0]


def test_rate_limits_heimweh_waits_without_limit_go_pagerduty_retries_once():
    clock = ManualClock()
    with PagerDutySandbox(token="t", rest_requests_per_minute=1, clock=clock) as pd:
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            clock.advance(seconds)

        timing = Timing(sleep=sleep, monotonic=lambda: 0.0)
        heimweh = RestClient(Connection(pd.url, "t"), "heimweh", timing)
        assert heimweh.get("/abilities")["abilities"]
        # Over the limit: wait ratelimit-reset (60 s) plus 0.5 s x (1..1.3), then it passes.
        assert heimweh.get("/abilities")["abilities"]
        assert len(slept) == 1 and 60.5 <= slept[0] <= 60.65
        # go-pagerduty: one retry after ratelimit-reset whole seconds; a clock that stands
        # still keeps the window full, so the retry is refused too.
        standing: list[float] = []
        framework = RestClient(
            Connection(pd.url, "t"), "go-pagerduty", Timing(sleep=standing.append)
        )
        with pytest.raises(RestError) as error:
            framework.get("/abilities")
        assert error.value.status == 429
        assert standing == [60.0]


def test_network_errors(fake_time: FakeTime):
    client = RestClient(Connection("http://127.0.0.1:9", "t"), "go-pagerduty", fake_time.timing)
    with pytest.raises(
        RestError, match=r"^GET http://127.0.0.1:9/abilities failed: ConnectionError"
    ):
        client.get("/abilities")
    assert fake_time.sleeps == [1.0]


def test_the_call_log_shows_keys_by_their_last_four(
    pd: PagerDutySandbox, fake_time: FakeTime, tmp_path: Path
):
    log = tmp_path / "rest.log"
    log_calls_to(str(log))
    try:
        client = RestClient(Connection(pd.url, pd.token), "heimweh", fake_time.timing)
        key = "a" * 28 + "wxyz"
        with pytest.raises(RestError):
            client.call(
                "PUT",
                "/services/PNONE01/integrations/PNONE02",
                body={"integration": {"integration_key": key}},
            )
    finally:
        for handler in list(CALL_LOG.handlers):
            CALL_LOG.removeHandler(handler)
            handler.close()
        CALL_LOG.setLevel(logging.NOTSET)
        CALL_LOG.propagate = True
    text = log.read_text()
    assert key not in text and "...wxyz" in text
    line = text.splitlines()[0]
    assert f"DEBUG {STAND_IN}: rest " in line
    record = json.loads(line.split(": rest ", 1)[1])
    assert record == {
        "client": "heimweh",
        "method": "PUT",
        "path": "/services/PNONE01/integrations/PNONE02",
        "query": "",
        "body": {"integration": {"integration_key": "...wxyz"}},
        "status": 404,
    }
    assert pd.token not in text
