"""The ASM API client against the ASM sandbox (and a few canned answers no sandbox gives)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bridge.asm_api import (
    AsmClient,
    AsmDeadlineClient,
    RetryPolicy,
    Verdict,
    tag_filter,
    verdict_for,
)
from bridge.asm_config import AsmApiSettings, BasicCredential, TicketCredential
from bridge.errors import AsmApiError, AsmAuthError, AsmNotFound, AsmUnavailable
from sandbox.asm_api import AsmSandbox
from sandbox.loopback import LoopbackServer
from tests.conftest import ASM_PASSWORD, ASM_START, ASM_TICKET, ASM_USER

GUID_101 = "6f9619ff-8b86-d011-b42d-00c04fc964ff"


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def seeded(asm: AsmSandbox) -> AsmSandbox:
    state = asm.state
    state.add_check("Login page", id=101, guid=GUID_101, tags={"Team": ["Checkout"]},
                    threshold_w=1500, threshold_e=3000)
    state.add_check("Search", id=102, tags={"Team": ["Search"], "Tier": ["Gold"]})
    state.add_check("Old page", id=103, enabled=False, tags={"Team": ["Checkout"]})
    state.set_severity(101, "E", value=4637, message="HTTP 500", at=ASM_START)
    state.set_severity(102, "I", value=200, at=ASM_START)
    return asm


class Sleeps(list[float]):
    """An injected `sleep` that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(asm: AsmSandbox, sleeps: Sleeps) -> Callable[..., AsmClient]:
    """AsmClient on the sandbox: ticket by default, any constructor argument overridden."""
    made: list[AsmClient] = []

    def make(credential: Any = None, *, settings: AsmApiSettings | None = None,
             **options: Any) -> AsmClient:
        options.setdefault("sleep", sleeps)
        made.append(AsmClient(settings or AsmApiSettings(api_url=asm.api_url),
                              credential or TicketCredential(ASM_TICKET), **options))
        return made[-1]

    yield make
    for one in made:
        one.close()


class Canned(LoopbackServer):
    """Answers every request with `answer(request)`; for what the sandbox never says."""

    title = "the canned server"

    def __init__(self, answer: Callable[[Request], Response]) -> None:
        super().__init__()
        self.answer = answer

    def build_app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            return self.answer(request)

        return Starlette(routes=[Route("/{path:path}", handle)])


@pytest.fixture
def canned() -> Iterator[Callable[[Callable[[Request], Response]], str]]:
    servers: list[Canned] = []

    def serve(answer: Callable[[Request], Response]) -> str:
        servers.append(Canned(answer).start())
        return servers[-1].url + "/v3"

    yield serve
    for server in servers:
        server.stop()


def _queries(asm: AsmSandbox) -> list[tuple[str, list[list[str]]]]:
    return [(r["path"], r["query"]) for r in asm.state.requests()]


# -- what answers mean ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(200, Verdict.OK), (204, Verdict.OK), (301, Verdict.REFUSED), (400, Verdict.REFUSED),
     (401, Verdict.AUTH), (403, Verdict.AUTH), (404, Verdict.NOT_FOUND), (408, Verdict.RETRY),
     (422, Verdict.REFUSED), (429, Verdict.RETRY), (500, Verdict.RETRY), (503, Verdict.RETRY),
     (101, Verdict.REFUSED)],
)
def test_verdicts(status, verdict):
    assert verdict_for(status) is verdict


# -- calls -----------------------------------------------------------------------------------


def test_list_checks(seeded, client):
    checks = client().list_checks()
    assert [(c.id, c.name, c.enabled, c.severity) for c in checks] == [
        (101, "Login page", True, "E"), (102, "Search", True, "I"),
        (103, "Old page", False, "U")]
    login = checks[0]
    assert (login.guid, login.tags, login.value, login.unit, login.message) == (
        GUID_101, {"Team": ("Checkout",)}, 4637, "ms", "HTTP 500")
    assert (login.threshold_w, login.threshold_e, login.timestamp) == (1500, 3000, ASM_START)
    assert _queries(seeded) == [("/v3/checks", [["auth_ticket", "...06CC"]])]


def test_list_checks_with_filters(seeded, client):
    asm = client()
    assert [c.id for c in asm.list_checks(enabled=True)] == [101, 102]
    assert [c.id for c in asm.list_checks(enabled=False)] == [103]
    assert [c.id for c in asm.list_checks(severities="EF")] == [101]
    team = tag_filter("Team", ["Checkout"])
    assert [c.id for c in asm.list_checks(include_tags=[team])] == [101, 103]
    both = asm.list_checks(include_tags=[tag_filter("Team"), tag_filter("Tier", ["Gold"])],
                           include_tag_op="and")
    assert [c.id for c in both] == [102]
    assert [c.id for c in asm.list_checks(exclude_tags=[team], enabled=True)] == [102]
    assert _queries(seeded)[-1] == (
        "/v3/checks", [["enabled", "true"], ["exclude_tag", "Team~Checkout"],
                       ["auth_ticket", "...06CC"]])


def test_basic_credentials(seeded, client):
    checks = client(BasicCredential(ASM_USER, ASM_PASSWORD)).list_checks()
    assert len(checks) == 3
    assert seeded.state.requests()[-1]["auth"] == "basic reader"
    assert seeded.state.requests()[-1]["query"] == []


def test_customer_context_sees_the_whole_account(asm, client):
    asm.state.add_check("Shared", id=7, visible_to_user=False)
    assert client().list_checks() == ()
    settings = AsmApiSettings(api_url=asm.api_url, customer_context=True)
    assert [c.id for c in client(settings=settings).list_checks()] == [7]
    assert _queries(asm)[-1][1] == [["customer_context", "1"], ["auth_ticket", "...06CC"]]


def test_get_check(seeded, client):
    check = client().get_check(101)
    assert (check.id, check.name, check.severity) == (101, "Login page", "E")


def test_an_unknown_check_is_not_found(seeded, client):
    with pytest.raises(AsmNotFound) as caught:
        client().get_check(999)
    assert str(caught.value) == (
        f"ASM API 127.0.0.1:{seeded.port}: GET /checks/999: not found (404): no such check, "
        "or this ASM user cannot see it")
    assert caught.value.status == 404


def test_most_recent_result(seeded, client, asm_clock):
    seeded.state.set_severity(101, "F", value=9000, message="timeout", at=ASM_START
                              + timedelta(minutes=5), result_id=GUID_101)
    result = client().most_recent_result(101)
    assert (result.check_id, result.severity, result.value, result.unit, result.message,
            result.result_id, result.timestamp) == (
        101, "F", 9000, "ms", "timeout", GUID_101, ASM_START + timedelta(minutes=5))
    assert _queries(seeded)[-1] == ("/v3/checks/101/results", [
        ["mostrecent", "1"], ["detail_level", "1"], ["auth_ticket", "...06CC"]])


def test_most_recent_results_are_newest_first(seeded, client):
    seeded.state.set_severity(101, "W", at=ASM_START + timedelta(minutes=1))
    found = client().most_recent_results(101, 5)
    assert [r.severity for r in found] == ["W", "E"]


def test_a_check_without_results_has_no_most_recent_one(seeded, client):
    assert client().most_recent_result(103) is None


def test_results_between_two_times(seeded, client):
    for minute, severity in ((1, "W"), (2, "E"), (3, "I")):
        seeded.state.set_severity(101, severity, at=ASM_START + timedelta(minutes=minute))
    found = client().results_between(101, ASM_START + timedelta(minutes=1),
                                     ASM_START + timedelta(minutes=2))
    assert [(r.severity, r.timestamp.minute) for r in found] == [("W", 1), ("E", 2)]
    start_ms = int((ASM_START + timedelta(minutes=1)).timestamp() * 1000)
    assert _queries(seeded)[-1][1][:2] == [["fromMillisecondsUtc", str(start_ms)],
                                           ["toMillisecondsUtc", str(start_ms + 60_000)]]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.list_checks(severities="X"),
         "severities must be letters of I, W, E, F (got 'X')"),
        (lambda c: c.list_checks(include_tag_op="xor"),
         "include_tag_op must be 'or' or 'and' (got 'xor')"),
        (lambda c: c.list_checks(include_tags=[""]), "a tag filter must be non-empty text"),
        (lambda c: c.get_check(-1), "a check id is a non-negative integer (got -1)"),
        (lambda c: c.get_check(True), "a check id is a non-negative integer (got True)"),
        (lambda c: c.most_recent_results(1, 0), "count must be a positive integer (got 0)"),
        (lambda c: c.results_between(1, datetime(2026, 1, 1), datetime(2026, 1, 2)),
         "start and end must be timezone-aware"),
        (lambda c: c.results_between(1, ASM_START, ASM_START - timedelta(seconds=1)),
         "start must not be after end"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(asm, client, call, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        call(client())
    assert asm.state.requests() == []


def test_tag_filters():
    assert tag_filter("Team") == "Team"
    assert tag_filter("Team", ["A", "B"]) == "Team~A;B"
    assert tag_filter(values=["Dev"]) == "~Dev"
    for bad in (lambda: tag_filter(), lambda: tag_filter("A;B"), lambda: tag_filter(".12"),
                lambda: tag_filter("Team", [""]), lambda: tag_filter("Team ")):
        with pytest.raises(ValueError):
            bad()


# -- failures --------------------------------------------------------------------------------


def test_a_refused_ticket_is_an_auth_error_and_not_retried(seeded, client):
    with pytest.raises(AsmAuthError) as caught:
        client(TicketCredential("00000000-0000-0000-0000-00000000BEEF")).list_checks()
    assert str(caught.value) == (
        f"ASM API 127.0.0.1:{seeded.port}: GET /checks: ASM refused the credential (401); "
        "check the auth_ticket ...BEEF (see docs/asm.md)")
    assert [r["status"] for r in seeded.state.requests()] == [401]


def test_a_refused_password_names_the_user(seeded, client):
    with pytest.raises(AsmAuthError, match="check the ASM user 'reader' and its password"):
        client(BasicCredential(ASM_USER, "wrong-password")).list_checks()


def test_server_errors_are_retried_with_backoff(seeded, client, sleeps, caplog):
    seeded.faults.fail(status=503, count=2)
    with caplog.at_level(logging.WARNING, logger="bridge.asm_api"):
        checks = client(policy=RetryPolicy(attempts=3)).list_checks()
    assert len(checks) == 3
    assert [r["status"] for r in seeded.state.requests()] == [503, 503, 200]
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0
    retries = [r for r in caplog.records if getattr(r, "event", None) == "asm_api_retry"]
    assert [(r.attempt, r.reason) for r in retries] == [
        (1, "ASM answered 503: An error has occurred."),
        (2, "ASM answered 503: An error has occurred.")]


def test_retries_run_out(seeded, client, sleeps):
    seeded.faults.fail(status=500, count=10)
    with pytest.raises(AsmUnavailable) as caught:
        client().list_checks()
    assert str(caught.value) == (
        f"ASM API 127.0.0.1:{seeded.port}: GET /checks: ASM answered 500: An error has "
        "occurred. (4 attempts)")
    assert len(sleeps) == 3


def test_429_honours_retry_after(seeded, client, sleeps):
    seeded.faults.rate_limit(count=1, retry_after=2)
    assert len(client().list_checks()) == 3
    assert sleeps == [2.0]


def test_a_retry_after_too_long_is_not_waited_for(seeded, client, sleeps):
    seeded.faults.rate_limit(count=1, retry_after=600)
    with pytest.raises(AsmUnavailable) as caught:
        client().list_checks()
    assert str(caught.value).endswith(
        "GET /checks: ASM answered 429: Too many requests., and ASM asks to wait 600 s "
        "(more than 30 s) (1 attempt)")
    assert sleeps == []


def test_an_unreachable_api(client, sleeps):
    with AsmSandbox() as gone:
        url = gone.api_url
    with pytest.raises(AsmUnavailable) as caught:
        client(settings=AsmApiSettings(api_url=url)).list_checks()
    assert str(caught.value) == (
        f"ASM API {url[7:-3]}: GET /checks: cannot connect (Connection refused) (4 attempts)")
    assert ASM_TICKET not in str(caught.value)


def test_a_slow_answer_times_out(seeded, client):
    seeded.faults.latency(0.3)
    settings = AsmApiSettings(api_url=seeded.api_url, timeout=0.05)
    with pytest.raises(AsmUnavailable, match=r"GET /checks: no answer within 0\.05 s "
                                             r"\(2 attempts\)$"):
        client(settings=settings, policy=RetryPolicy(attempts=2)).list_checks()


def test_a_budget_bounds_the_whole_call(seeded, client, sleeps):
    seeded.faults.fail(status=500, count=10)
    with pytest.raises(AsmUnavailable, match=r"no time left to retry \(1 attempt\)$"):
        client(budget=0.001, policy=RetryPolicy(attempts=5, max_wait=30)).list_checks()
    assert sleeps == []


def test_the_ticket_is_never_logged(seeded, client, caplog):
    seeded.faults.fail(status=500, count=1)
    with caplog.at_level(logging.DEBUG):
        client().list_checks()
    assert "auth_ticket=...06CC" in caplog.text  # urllib3's own request line, masked
    assert ASM_TICKET not in caplog.text


def test_a_body_over_the_limit(seeded, client):
    with pytest.raises(AsmApiError) as caught:
        client(max_body_bytes=100).list_checks()
    declared = len(requests.get(seeded.api_url + "/checks", params={"auth_ticket": ASM_TICKET},
                                timeout=5).content)
    assert str(caught.value).endswith(f"GET /checks: the answer is {declared:,} bytes; at most "
                                      "100 bytes (100 bytes) are read")


def test_a_streamed_body_over_the_limit(canned, client):
    def endless(request: Request) -> Response:
        return StreamingResponse(iter([b"[" + b" " * 1000] * 1000), media_type="text/json")

    url = canned(endless)
    with pytest.raises(AsmApiError, match=r"GET /checks: the answer is over 5,000 bytes; at "
                                          r"most 5,000 bytes \(4\.9 KiB\) are read$"):
        client(settings=AsmApiSettings(api_url=url), max_body_bytes=5000).list_checks()


@pytest.mark.parametrize(
    ("response", "ending"),
    [
        (Response("<html>Bad gateway</html>", status_code=400, media_type="text/html"),
         "GET /checks: ASM refused the request (400)"),
        (JSONResponse({"Message": f"Invalid request 'auth_ticket={ASM_TICKET}'\n"},
                      status_code=400),
         "GET /checks: ASM refused the request (400): Invalid request 'auth_ticket=...06CC'"),
        (Response("not json", media_type="application/json"),
         "GET /checks: the answer is not JSON"),
        (Response(status_code=302,
                  headers={"Location": f"https://other.example/v3/checks?auth_ticket={ASM_TICKET}"}),
         "GET /checks: ASM redirects to https://other.example (302); set APICA_PD_ASM_API_URL "
         "to the API's own URL"),
        (JSONResponse({"id": 1}), "GET /checks: unexpected answer: Input should be a valid list"),
    ],
)
def test_answers_that_cannot_be_used(canned, client, response, ending):
    url = canned(lambda request: response)
    with pytest.raises(AsmApiError) as caught:
        client(settings=AsmApiSettings(api_url=url)).list_checks()
    assert type(caught.value) is AsmApiError
    assert str(caught.value) == f"ASM API {url[7:-3]}: {ending}"


# -- the short-deadline variant ---------------------------------------------------------------


def test_deadline_client_answers(seeded):
    quick = AsmDeadlineClient(AsmApiSettings(api_url=seeded.api_url),
                              TicketCredential(ASM_TICKET), deadline=5)
    assert quick.most_recent_result(101).severity == "E"
    assert quick.get_check(102).name == "Search"


def test_deadline_client_passes_errors_on(seeded):
    quick = AsmDeadlineClient(AsmApiSettings(api_url=seeded.api_url),
                              TicketCredential("00000000-0000-0000-0000-00000000BEEF"))
    with pytest.raises(AsmAuthError, match="ASM refused the credential"):
        quick.get_check(101)
    seeded.faults.fail(status=500, count=1)
    with pytest.raises(AsmUnavailable, match=r"ASM answered 500: An error has occurred\. "
                                             r"\(1 attempt\)$"):
        AsmDeadlineClient(AsmApiSettings(api_url=seeded.api_url),
                          TicketCredential(ASM_TICKET)).get_check(101)


class _HeldSession(requests.Session):
    """A session whose requests wait until `release` is set: ASM hanging, on demand."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def get(self, *args: Any, **kwargs: Any) -> requests.Response:
        self.release.wait(30)
        raise requests.ConnectionError("[Errno 111] Connection refused")


def test_deadline_client_never_waits_longer_and_never_piles_up(seeded):
    release = threading.Event()
    quick = AsmDeadlineClient(AsmApiSettings(api_url=seeded.api_url),
                              TicketCredential(ASM_TICKET), deadline=0.05, max_in_flight=1,
                              session_factory=lambda: _HeldSession(release))
    try:
        with pytest.raises(AsmUnavailable) as caught:
            quick.most_recent_result(101)
        assert str(caught.value) == (f"ASM API 127.0.0.1:{seeded.port}: GET /checks/101/"
                                     "results: no answer within 0.05 s")
        with pytest.raises(AsmUnavailable, match=r"GET /checks/101: 1 earlier calls are still "
                                                 r"waiting for ASM; not adding another$"):
            quick.get_check(101)
    finally:
        release.set()


def test_deadline_must_be_positive(asm):
    with pytest.raises(ValueError, match="deadline must be in"):
        AsmDeadlineClient(AsmApiSettings(api_url=asm.api_url), TicketCredential(ASM_TICKET),
                          deadline=0)
