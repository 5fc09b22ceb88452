"""infra.pagerduty_api: GETs against the sandbox's REST API (and, for answers PagerDuty
never gives, a bare HTTP server on loopback), and the token reader; messages pinned, the
token never in one."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.pagerduty_api import (
    DEADLINE_SECONDS,
    MAX_ANSWER_BYTES,
    MAX_TRIES,
    PagerDutyApi,
    PagerDutyApiError,
    read_token,
)
from sandbox.clock import ManualClock
from sandbox.server import PagerDutySandbox

TOKEN = "import-test-token"


@pytest.fixture
def api(pd: PagerDutySandbox) -> PagerDutyApi:
    return PagerDutyApi(pd.api_url, pd.token, sleep=_no_sleep)


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds} s without being rate limited")


def test_get_unwraps_nothing_and_sends_pagerdutys_headers(pd: PagerDutySandbox) -> None:
    team = pd.state.add_team("Platform")
    found = PagerDutyApi(pd.api_url + "/", pd.token).get(f"/teams/{team['id']}")
    assert found["team"]["name"] == "Platform"


def test_get_or_none_answers_none_for_a_404(pd: PagerDutySandbox, api: PagerDutyApi) -> None:
    team = pd.state.add_team("Platform")
    assert api.get_or_none(f"/teams/{team['id']}")["team"]["name"] == "Platform"  # type: ignore[index]
    assert api.get_or_none("/teams/PNOPE00") is None


def test_list_all_follows_offsets_past_one_page(pd: PagerDutySandbox, api: PagerDutyApi) -> None:
    for index in range(250):
        pd.state.add_user(f"user{index:03}@example.com", f"User {index:03}")
    users = api.list_all("/users", "users")
    assert [u["email"] for u in users] == [f"user{i:03}@example.com" for i in range(250)]


def test_list_all_passes_query_parameters(pd: PagerDutySandbox, api: PagerDutyApi) -> None:
    for name in ("Checkout", "Checkout Admin", "Search"):
        pd.state.create_service(name)
    found = api.list_all("/services", "services", {"query": "checkout", "include[]": ["teams"]})
    assert [s["name"] for s in found] == ["Checkout", "Checkout Admin"]


def test_list_all_stops_where_pagerduty_stops_paging(pd: PagerDutySandbox) -> None:
    with pd.state.lock:
        for index in range(10_001):
            pd.state.directory.add_user(f"u{index:05}@example.com", f"U{index:05}")
    api = PagerDutyApi(pd.api_url, pd.token, sleep=_no_sleep)
    with pytest.raises(PagerDutyApiError) as caught:
        api.list_all("/users", "users")
    assert str(caught.value) == (
        "GET /users: more than 10,000 users, and PagerDuty lists no further than offset + "
        "limit = 10,000: import fewer at a time (--service NAME or --team NAME)"
    )


def test_list_cursor_follows_after(pd: PagerDutySandbox, api: PagerDutyApi) -> None:
    ids = []
    with pd.state.lock:
        for index in range(130):
            service = pd.state.directory.create_service(f"S{index:03}")
            pd.state.directory.add_alert_grouping_setting("time", {"timeout": 60}, [service["id"]])
            ids.append(service["id"])
    found = api.list_cursor(
        "/alert_grouping_settings", "alert_grouping_settings", {"service_ids[]": ids}
    )
    assert sorted(ref["id"] for s in found for ref in s["services"]) == sorted(ids)


def test_rate_limited_requests_wait_for_ratelimit_reset(clock_pd: PagerDutySandbox) -> None:
    clock: ManualClock = clock_pd.clock  # type: ignore[assignment]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    api = PagerDutyApi(clock_pd.api_url, clock_pd.token, sleep=sleep)
    for _ in range(3):  # the limit is 2 per minute: the third waits for the window
        api.get("/abilities")
    assert slept == [60.0]


def test_rate_limit_gives_up_after_bounded_tries(clock_pd: PagerDutySandbox) -> None:
    slept: list[float] = []
    api = PagerDutyApi(clock_pd.api_url, clock_pd.token, sleep=slept.append)
    api.get("/abilities")
    api.get("/abilities")
    with pytest.raises(PagerDutyApiError) as caught:
        api.get("/abilities")
    assert str(caught.value) == (
        f"GET /abilities: answered 429 (Rate Limit Exceeded) after {MAX_TRIES} tries: "
        "PagerDuty's rate limit; try again in a minute"
    )
    assert caught.value.status == 429
    assert len(slept) == MAX_TRIES - 1


@pytest.fixture
def clock_pd() -> Iterator[PagerDutySandbox]:
    with PagerDutySandbox(
        clock=ManualClock(), token=TOKEN, rest_requests_per_minute=2
    ) as sandbox:
        yield sandbox


@pytest.mark.parametrize(
    ("path", "token", "message"),
    [
        (
            "/services",
            "wrong-token",
            "GET /services: answered 401 (Authentication failed): PagerDuty refused the "
            "token: check PAGERDUTY_TOKEN or --token-file (an EU account needs --api-url "
            "https://api.eu.pagerduty.com)",
        ),
        (
            "/services/PNOPE00",
            TOKEN,
            "GET /services/PNOPE00: answered 404 (Not Found): not found (deleted meanwhile, "
            "or --api-url is not PagerDuty's REST API?)",
        ),
    ],
)
def test_refusals_are_one_line_without_the_token(
    pd: PagerDutySandbox, path: str, token: str, message: str
) -> None:
    with pytest.raises(PagerDutyApiError) as caught:
        PagerDutyApi(pd.api_url, token, sleep=_no_sleep).get(path)
    assert str(caught.value) == message
    assert token not in str(caught.value)


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(PagerDutyApiError) as caught:
        PagerDutyApi("ftp://example.com", TOKEN)
    assert str(caught.value) == (
        "--api-url must be an http(s) URL, e.g. https://api.pagerduty.com"
    )


# -- answers PagerDuty does not give: a bare server on loopback -------------------------


Reply = tuple[int, dict[str, str], bytes]


@pytest.fixture
def bare_server() -> Iterator[Callable[[list[Reply]], str]]:
    """`serve(replies)`: an HTTP server answering each GET with the next reply; its URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(replies: list[Reply]) -> str:
        queue = list(replies)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, headers, body = queue.pop(0) if queue else (500, {}, b"")
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_server_errors_are_retried_with_backoff(bare_server: Callable[[list[Reply]], str]) -> None:
    url = bare_server([(502, {}, b"bad gateway"), (503, {}, b""), (200, {}, b'{"ok": true}')])
    slept: list[float] = []
    assert PagerDutyApi(url, TOKEN, sleep=slept.append).get("/x") == {"ok": True}
    assert slept == [1.0, 2.0]


def test_server_errors_give_up(bare_server: Callable[[list[Reply]], str]) -> None:
    url = bare_server([(500, {}, b"")] * MAX_TRIES)
    with pytest.raises(PagerDutyApiError) as caught:
        PagerDutyApi(url, TOKEN, sleep=lambda _: None).get("/x")
    assert str(caught.value) == (
        f"GET /x: answered 500 after {MAX_TRIES} tries: PagerDuty had a problem; try again later"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>", "GET /x: the answer is not JSON; is --api-url PagerDuty's REST API?"),
        (b"[1, 2]", "GET /x: the answer is not a JSON object"),
        (
            b" " * (MAX_ANSWER_BYTES + 1),
            "GET /x: the answer is more than 16 MiB; is --api-url PagerDuty's REST API?",
        ),
    ],
    ids=["not-json", "not-an-object", "too-large"],
)
def test_answers_that_are_not_pagerdutys(
    bare_server: Callable[[list[Reply]], str], body: bytes, message: str
) -> None:
    url = bare_server([(200, {}, body)])
    with pytest.raises(PagerDutyApiError) as caught:
        PagerDutyApi(url, TOKEN, sleep=_no_sleep).get("/x")
    assert str(caught.value) == message


def test_a_list_answer_without_its_list(bare_server: Callable[[list[Reply]], str]) -> None:
    url = bare_server([(200, {}, b'{"more": false}')])
    with pytest.raises(PagerDutyApiError) as caught:
        PagerDutyApi(url, TOKEN, sleep=_no_sleep).list_all("/services", "services")
    assert str(caught.value) == "GET /services: the answer has no 'services' list"


def test_an_unreachable_api_is_one_line() -> None:
    slept: list[float] = []
    # The discard port: nothing listens there on loopback, so the connection is refused.
    api = PagerDutyApi("http://127.0.0.1:9", TOKEN, sleep=slept.append)
    with pytest.raises(PagerDutyApiError) as caught:
        api.get("/services")
    assert str(caught.value) == (
        f"GET /services: cannot reach http://127.0.0.1:9 (ConnectionError) after {MAX_TRIES} "
        "tries; check --api-url and the network"
    )
    assert slept == [1.0, 2.0, 4.0, 8.0]


def test_a_redirect_is_not_followed(bare_server: Callable[[list[Reply]], str]) -> None:
    """Following it would hand the token to wherever it points."""
    elsewhere = bare_server([(200, {}, b'{"stolen": true}')])
    url = bare_server([(302, {"Location": elsewhere + "/x"}, b"")])
    with pytest.raises(PagerDutyApiError) as caught:
        PagerDutyApi(url, TOKEN, sleep=_no_sleep).get("/x")
    assert str(caught.value) == "GET /x: answered 302"
    assert PagerDutyApi(elsewhere, TOKEN).get("/x") == {"stolen": True}  # still unasked


def test_an_answer_slower_than_the_deadline_is_cut(
    bare_server: Callable[[list[Reply]], str],
) -> None:
    url = bare_server([(200, {}, b'{"ok": true}')])
    times = iter([0.0, DEADLINE_SECONDS + 1])
    with pytest.raises(PagerDutyApiError) as caught:
        PagerDutyApi(url, TOKEN, sleep=_no_sleep, clock=lambda: next(times)).get("/x")
    assert str(caught.value) == "GET /x: the answer took over 60 s; try again later"


class _Chunked(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        for part in (b'{"services": ', b"[1, 2, 3]", b"}"):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: object) -> None:
        pass


def test_a_chunked_answer_is_read_whole() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Chunked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert PagerDutyApi(url, TOKEN, sleep=_no_sleep).get("/x") == {"services": [1, 2, 3]}
    finally:
        server.shutdown()
        server.server_close()


# -- the token ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "environ", "message"),
    [
        (None, {}, "no PagerDuty REST API token: set PAGERDUTY_TOKEN or pass --token-file FILE"),
        (None, {"PAGERDUTY_TOKEN": "  "},
         "no PagerDuty REST API token: set PAGERDUTY_TOKEN or pass --token-file FILE"),
        (None, {"PAGERDUTY_TOKEN": "two words"},
         "PAGERDUTY_TOKEN must hold one token: one line, no spaces"),
        ("", {}, "token file {file} is empty"),
        ("two words", {}, "token file {file} must hold one token: one line, no spaces"),
        ("t\x1bken", {}, "token file {file} must hold one token: one line, no spaces"),
        (b"\xff\xfe", {}, "token file {file}: not UTF-8 text"),
    ],
)
def test_token_problems(
    tmp_path: Path, content: str | bytes | None, environ: dict[str, str], message: str
) -> None:
    token_file = None
    if content is not None:
        path = tmp_path / "token"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        token_file = str(path)
    with pytest.raises(PagerDutyApiError) as caught:
        read_token(token_file, environ)
    assert str(caught.value) == message.format(file=token_file)


def test_the_token_file_wins_over_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("from-file\n", encoding="utf-8")
    assert read_token(str(path), {"PAGERDUTY_TOKEN": "from-env"}) == "from-file"
    assert read_token(None, {"PAGERDUTY_TOKEN": " from-env\n"}) == "from-env"


def test_a_token_file_that_is_too_large_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"x" * 5000)
    with pytest.raises(PagerDutyApiError) as caught:
        read_token(str(path), {})
    assert str(caught.value) == (
        f"cannot read {path}: is 5,000 bytes; a token file may be at most 4,096 bytes (4 KiB)"
    )
