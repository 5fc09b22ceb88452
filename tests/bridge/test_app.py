"""The HTTP app on a real loopback port, with a recording intake."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import httpx
import pytest

from bridge.app import Hook, create_app
from bridge.errors import InvalidEvent
from bridge.intake.accept import Accepted
from bridge.intake.auth import Authenticator, Credentials
from bridge.route_table import RouteTable
from tests.bridge.conftest import CHECKOUT_KEY, OLD_TOKEN, TOKEN, routes_document

LIMIT = 4096


@dataclass
class RecordingIntake:
    """Stands in for the real intake (accept_alert): records calls, can fail, block or
    report duplicates."""

    calls: list = field(default_factory=list)
    fail: Exception | None = None
    duplicate: bool = False
    gate: threading.Event | None = None

    def __call__(self, route_name, route, alert):
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        self.calls.append((route_name, route, alert))
        return Accepted(event_count=2 if alert.action == "trigger" else 1,
                        duplicate=self.duplicate)


@dataclass
class Bridge:
    url: str
    intake: RecordingIntake
    metrics: object
    events: list
    writable: dict
    problems: list

    def post(self, path="/v1/asm/checkout", body=None, *, token=TOKEN, content_type=None,
             **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["X-Apica-Token"] = token
        if isinstance(body, dict):
            body = json.dumps(body)
        headers.setdefault("Content-Type", content_type or "application/json")
        return httpx.post(self.url + path, content=body, headers=headers, timeout=10, **kwargs)

    def sample(self, name, **labels):
        return self.metrics.registry.get_sample_value(name, labels) or 0


@pytest.fixture
def table(routes_file, metrics):
    table = RouteTable(routes_file, metrics)
    table.load()
    return table


@pytest.fixture
def bridge(table, metrics, loopback):
    intake = RecordingIntake()
    events: list = []
    writable = {"ok": True}
    problems: list = []
    hooks = [Hook("probe", lambda: events.append("start"), lambda: events.append("stop"))]
    app = create_app(
        routes=table, accept=intake, metrics=metrics, body_limit=LIMIT,
        auth=Authenticator(Credentials(tokens=(TOKEN, OLD_TOKEN))),
        store_ready=lambda: writable["ok"], route_problems=lambda: problems, hooks=hooks,
    )
    with loopback(app) as server:
        yield Bridge(server.url, intake, metrics, events, writable, problems)
    assert events == ["start", "stop"]


def alert_body(**fields):
    doc = {"action": "trigger", "severity": "E", "check_id": "101", "check_name": "Shop",
           "message": "HTTP 500"}
    doc.update(fields)
    return doc


def test_named_route_accepts_and_answers_after_storing(bridge):
    response = bridge.post("/v1/asm/search", alert_body())
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "route": "search", "action": "trigger",
                               "events": 2, "duplicate": False}
    [(name, route, alert)] = bridge.intake.calls
    assert (name, route.service_id, alert.check_id) == ("search", "PSEARCH", 101)
    assert bridge.sample("apica_bridge_webhooks_received_total", route="search") == 1
    assert bridge.sample("apica_bridge_alerts_accepted_total", route="search") == 1


@pytest.mark.parametrize(
    ("fields", "route"),
    [({"check_id": "201"}, "search"),
     ({"check_id": "", "check_guid": "6f9619ff-8b86-d011-b42d-00c04fc964ff"}, "checkout"),
     ({"check_id": "5", "tags": "Team: Search"}, "search"),
     ({"check_id": "5"}, "fallback")],
)
def test_auto_route(bridge, fields, route):
    response = bridge.post("/v1/asm", alert_body(**fields))
    assert response.status_code == 202
    assert response.json()["route"] == route
    assert bridge.sample("apica_bridge_webhooks_received_total", route="auto") == 1


def test_form_body_and_resolve(bridge):
    response = bridge.post("/v1/asm/checkout", "action=resolve&check_id=101&check_name=Shop",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 202
    assert response.json()["action"] == "resolve"


def test_recovered_broken_json_is_accepted(bridge):
    raw = '{"severity": "F", "check_id": "101", "check_name": "Shop", "message": "C:\\x\nend"}'
    assert bridge.post(body=raw).status_code == 202
    assert bridge.intake.calls[0][2].message == "C:\\x\nend"


@pytest.mark.parametrize(
    ("request_kwargs", "status", "reason", "message"),
    [
        ({"body": '{"severity": "E", "message": "a", "check_name": "b", "check_name": "c"}'},
         400, "ambiguous_json",
         "cannot be recovered unambiguously"),
        ({"body": "{"}, 400, "broken_json", "body is not valid JSON (line 1 column 2"),
        ({"body": alert_body(), "content_type": "text/plain"}, 415, "unsupported_media_type",
         "content type 'text/plain' is not accepted"),
        ({"body": "x" * (LIMIT + 1)}, 413, "too_large", "larger than the limit of 4096 bytes"),
        ({"body": alert_body(), "path": "/v1/asm/nope"}, 404, "unknown_route",
         "no route named 'nope' in the routes file"),
        ({"body": alert_body(), "path": "/v1/asm/" + "n" * 5000}, 404, "unknown_route",
         "no route named '" + "n" * 99 + "…' in the routes file"),
        ({"body": alert_body(check_name="x" * 1025)}, 400, "field_too_long",
         "field 'check_name' is 1025 characters; the limit is 1024"),
    ],
)
def test_refusals_say_what_was_wrong_and_are_counted(bridge, request_kwargs, status, reason,
                                                     message):
    response = bridge.post(**request_kwargs)
    assert response.status_code == status
    assert response.json()["error"] == reason
    assert message in response.json()["message"]
    assert bridge.sample("apica_bridge_webhooks_refused_total", reason=reason) == 1
    assert bridge.intake.calls == []


def test_chunked_body_over_the_limit_is_cut_off(bridge):
    def chunks():
        for _ in range(10):
            yield b"x" * 1000

    response = bridge.post(body=chunks())
    assert response.status_code == 413


def test_unclaimed_check_without_catch_all_is_422_and_logged(routes_file, metrics, loopback,
                                                            caplog):
    routes_file.write_text(json.dumps(routes_document(catch_all=None)))
    table = RouteTable(routes_file, metrics)
    table.load()
    app = create_app(routes=table, accept=RecordingIntake(), metrics=metrics,
                     auth=Authenticator(Credentials(tokens=(TOKEN,))))
    with loopback(app) as server, caplog.at_level("ERROR", logger="bridge.http"):
        response = httpx.post(server.url + "/v1/asm", json=alert_body(check_id="999"),
                              headers={"X-Apica-Token": TOKEN})
    assert response.status_code == 422
    assert response.json()["error"] == "unrouted"
    assert "no route claims check id:999" in response.json()["message"]
    assert metrics.registry.get_sample_value("apica_bridge_webhooks_refused_total",
                                             {"reason": "unrouted"}) == 1
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "webhook_refused"]
    assert (record.reason, record.check) == ("unrouted", "id:999")


def test_unclaimed_webhook_is_recorded_durably(routes_file, metrics, loopback, tmp_path):
    """Issue 3: an unclaimed check is refused with a 4xx *and recorded*."""
    from bridge.store.sqlite import SqliteStore, outbox_path

    routes_file.write_text(json.dumps(routes_document(catch_all=None)))
    table = RouteTable(routes_file, metrics)
    table.load()
    with SqliteStore(outbox_path(tmp_path / "data")) as box:
        app = create_app(routes=table, accept=RecordingIntake(), metrics=metrics,
                         auth=Authenticator(Credentials(tokens=(TOKEN,))),
                         record_unclaimed=box.record_unclaimed)
        body = json.dumps(alert_body(check_id="999", check_name="Login EU"))
        with loopback(app) as server:
            response = httpx.post(server.url + "/v1/asm", content=body,
                                  headers={"X-Apica-Token": TOKEN,
                                           "Content-Type": "application/json"})
        assert response.status_code == 422
        [kept] = box.unclaimed()
    assert (kept.check_id, kept.check_guid, kept.check_name, kept.severity, kept.action) == (
        999, None, "Login EU", "E", "trigger")
    assert (kept.body, kept.body_bytes) == (body, len(body))


def test_unclaimed_webhook_is_refused_even_if_recording_fails(routes_file, metrics, loopback,
                                                              caplog):
    routes_file.write_text(json.dumps(routes_document(catch_all=None)))
    table = RouteTable(routes_file, metrics)
    table.load()

    def broken(**_fields):
        raise OSError("disk full")

    app = create_app(routes=table, accept=RecordingIntake(), metrics=metrics,
                     auth=Authenticator(Credentials(tokens=(TOKEN,))), record_unclaimed=broken)
    with loopback(app) as server, caplog.at_level("ERROR", logger="bridge.http"):
        response = httpx.post(server.url + "/v1/asm", json=alert_body(check_id="999"),
                              headers={"X-Apica-Token": TOKEN})
    assert (response.status_code, response.json()["error"]) == (422, "unrouted")
    assert any(getattr(r, "event", "") == "unclaimed_not_recorded" for r in caplog.records)


@pytest.mark.parametrize(
    ("token", "headers"),
    [(None, {}), ("wrong-token-0123456789", {}), (None, {"Authorization": "Basic Zm9vOmJhcg=="})],
)
def test_unauthorized_gets_401_without_detail(bridge, token, headers):
    response = bridge.post("/v1/asm/nope", alert_body(), token=token, headers=headers)
    assert response.status_code == 401  # before the route check: route names stay private
    assert response.json() == {"error": "unauthorized"}
    assert response.headers["WWW-Authenticate"] == 'Basic realm="apica-pd"'
    assert bridge.sample("apica_bridge_webhooks_refused_total", reason="unauthorized") == 1


def test_refusal_lines_are_cut_short_and_rate_limited(bridge, caplog):
    """20 unauthorized POSTs to a 60 KB route name grew the log by 1.2 MB."""
    with caplog.at_level("WARNING", logger="bridge.http"):
        for _ in range(20):
            assert bridge.post("/v1/asm/" + "r" * 10_000, alert_body(), token="").status_code \
                == 401
    lines = [r for r in caplog.records if getattr(r, "event", "") == "webhook_refused"]
    assert len(lines) == 10
    assert {r.route for r in lines} == {"r" * 99 + "…"}
    assert bridge.sample("apica_bridge_webhooks_refused_total", reason="unauthorized") == 20


def test_old_token_still_works_during_rotation(bridge):
    assert bridge.post(body=alert_body(), token=OLD_TOKEN).status_code == 202


def test_store_failure_is_503_and_counted(bridge):
    bridge.intake.fail = OSError("disk full")
    response = bridge.post(body=alert_body())
    assert response.status_code == 503
    assert response.json()["error"] == "store_error"
    assert bridge.sample("apica_bridge_webhooks_refused_total", reason="store_error") == 1


def test_invalid_event_is_422(bridge):
    bridge.intake.fail = InvalidEvent(["payload.source is required"], route_name="checkout")
    response = bridge.post(body=alert_body())
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_event",
        "message": "route 'checkout': event breaks the Events API rules: "
                   "payload.source is required",
    }


def test_duplicate_is_counted_not_accepted(bridge):
    bridge.intake.duplicate = True
    response = bridge.post(body=alert_body())
    assert response.json()["duplicate"] is True
    assert bridge.sample("apica_bridge_webhooks_duplicate_total", route="checkout") == 1
    assert bridge.sample("apica_bridge_alerts_accepted_total", route="checkout") == 0


def test_no_answer_before_the_intake_returns(bridge):
    bridge.intake.gate = threading.Event()
    answers: list = []
    thread = threading.Thread(target=lambda: answers.append(bridge.post(body=alert_body())))
    thread.start()
    thread.join(0.3)
    assert answers == [], "answered before the alert was stored"
    bridge.intake.gate.set()
    thread.join(10)
    assert answers[0].status_code == 202


def test_health_and_readiness(bridge):
    assert httpx.get(bridge.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(bridge.url + "/readyz").status_code == 200
    bridge.writable["ok"] = False
    response = httpx.get(bridge.url + "/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "problems": ["store not writable"]}


def test_readiness_shows_route_problems_and_stays_ready(bridge):
    """Route health needs a person, not another replica: shown in the body, still 200."""
    from bridge.store.records import RouteProblem

    bridge.problems.append(RouteProblem(
        "checkout", "integration_gone", 2, 1_764_151_333.0,
        "incident apica-asm:checkout:id:101:high was opened through ...0ld1, which the "
        "routes file no longer lists for route 'checkout'; resolve it in PagerDuty by hand"))
    bridge.problems.append(RouteProblem("search", "unauthorized", 1, 1_764_151_400.0,
                                        "key " + "K" * 32 + " refused"))
    response = httpx.get(bridge.url + "/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "routes": {
        "checkout": [{"reason": "integration_gone", "count": 2,
                      "last_at": "2025-11-26T10:02:13+00:00",
                      "message": bridge.problems[0].message}],
        "search": [{"reason": "unauthorized", "count": 1,
                    "last_at": "2025-11-26T10:03:20+00:00", "message": "key ...KKKK refused"}],
    }}
    bridge.writable["ok"] = False
    response = httpx.get(bridge.url + "/readyz")
    assert (response.status_code, response.json()["problems"]) == (503, ["store not writable"])
    assert set(response.json()["routes"]) == {"checkout", "search"}


def test_a_stale_alert_is_answered_202_stale_counted_and_not_stored(storing_bridge, caplog):
    """A resolve stamped 10:05 posted before the trigger stamped 10:00 (issue 9 item 8)."""
    resolve = {"check_id": 101, "severity": "I", "timestamp": "2026-11-26T10:05:00"}
    assert storing_bridge.post("/v1/asm/checkout", json.dumps(resolve)).status_code == 202
    trigger = {"check_id": 101, "severity": "F", "timestamp": "2026-11-26T10:00:00"}
    with caplog.at_level("WARNING", logger="bridge.http"):
        response = storing_bridge.post("/v1/asm/checkout", json.dumps(trigger))
    assert response.status_code == 202
    assert response.json() == {"status": "stale", "route": "checkout", "action": "trigger",
                               "events": 0, "alert_at": "2026-11-26T10:00:00Z",
                               "newest_alert_at": "2026-11-26T10:05:00Z"}
    assert [e.action for e in storing_bridge.outbox.pending()] == ["resolve", "resolve"]
    (stale,) = storing_bridge.outbox.stale_alerts()
    assert (stale.route, stale.check_key, stale.severity, stale.alert_at) == (
        "checkout", "id:101", "F", "2026-11-26T10:00:00Z")
    assert storing_bridge.metrics.registry.get_sample_value(
        "apica_bridge_alerts_stale_total", {"route": "checkout"}) == 1
    (record,) = [r for r in caplog.records if getattr(r, "event", "") == "alert_stale"]
    assert record.levelname == "WARNING"
    assert record.getMessage() == ("stale alert not sent: ASM stamped it 2026-11-26T10:00:00Z, "
                                   "the check's newest accepted alert is stamped "
                                   "2026-11-26T10:05:00Z")


def test_metrics_endpoint_exposes_the_registry(bridge):
    bridge.post(body=alert_body())
    response = httpx.get(bridge.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'apica_bridge_alerts_accepted_total{route="checkout"} 1.0' in response.text
    assert 'apica_bridge_routes_reloads_total{result="loaded"} 1.0' in response.text


def test_get_on_webhook_is_405(bridge):
    assert httpx.get(bridge.url + "/v1/asm/checkout").status_code == 405


def test_with_the_real_outbox_202_means_stored(storing_bridge):
    from bridge.asm_setup import SAMPLE_VALUES, body_template, render

    body = render(body_template("trigger"), dict(SAMPLE_VALUES, QM="C:\\temp\n2nd line"))
    response = storing_bridge.post("/v1/asm", body)
    assert response.status_code == 202
    assert response.json()["route"] == "checkout"  # check id 101 is claimed by checkout
    [event] = storing_bridge.outbox.pending()
    assert (event.route, event.check_key, event.action) == ("checkout", "id:101", "trigger")
    payload = event.body["payload"]
    assert payload["custom_details"]["message"] == "C:\\temp\n2nd line"
    assert payload["summary"] == "Checkout page: C:\\temp 2nd line"
    assert event.body["links"][0]["href"] == "https://asm.example/Check/Details/101"

    again = storing_bridge.post("/v1/asm", body)  # ASM sent the same webhook twice
    assert again.json()["duplicate"] is True
    assert len(storing_bridge.outbox.pending()) == 1


def test_a_name_of_control_characters_is_stored_as_a_valid_event(storing_bridge):
    """202 is a promise: the stored event must be one PagerDuty takes."""
    from bridge.intake.events import check_event

    body = '{"check_id": 1, "severity": "F", "check_name": "\\u0000"}'
    response = storing_bridge.post("/v1/asm/checkout", body)
    assert response.status_code == 202
    [event] = storing_bridge.outbox.pending()
    assert event.body["payload"]["summary"] == "ASM check 1"
    assert check_event({**event.body, "routing_key": CHECKOUT_KEY}) == []  # its key at send


@pytest.mark.parametrize(
    "body",
    [
        '{"check_id": 1, "severity": "F", "timestamp": "0001-01-01T00:00:00+14:00"}',
        '{"check_id": 1, "severity": "F", "message": "\\ud800"}',
    ],
    ids=["timestamp overflows in UTC", "lone surrogate"],
)
def test_hostile_bodies_are_stored_not_a_server_error(storing_bridge, body):
    from bridge.intake.events import check_event

    response = storing_bridge.post("/v1/asm/checkout", body)
    assert response.status_code == 202, response.text
    [event] = storing_bridge.outbox.pending()
    assert check_event({**event.body, "routing_key": CHECKOUT_KEY}) == []


def test_a_5000_digit_number_is_400_not_a_server_error(storing_bridge):
    """Python's int digit limit raised a ValueError inside json.loads: 500, traceback."""
    response = storing_bridge.post("/v1/asm/checkout",
                                   '{"severity": "F", "check_id": ' + "1" * 5000 + "}")
    assert (response.status_code, response.json()) == (400, {
        "error": "bad_number", "message": "body has a number of 5000 digits; the limit is 100 "
                                          "(ASM's numbers are check ids of at most 18 digits)"})
    assert storing_bridge.outbox.pending() == []


def test_url_route_wins_but_a_check_claimed_elsewhere_is_logged(bridge, caplog):
    with caplog.at_level("WARNING", logger="bridge.http"):
        response = bridge.post("/v1/asm/checkout", alert_body(check_id="201"))
    assert response.json()["route"] == "checkout"
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "route_mismatch"]
    assert record.getMessage() == "check posted to route checkout is claimed by route search"


def test_a_bug_while_reading_is_500_not_blamed_on_the_store(bridge, monkeypatch):
    def broken(body, content_type):
        raise KeyError("bug")

    monkeypatch.setattr("bridge.app.parse_webhook", broken)
    response = bridge.post(body=alert_body())
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error",
                               "message": "the bridge failed to read the alert"}
    assert bridge.sample("apica_bridge_webhooks_refused_total", reason="internal_error") == 1


def test_client_gone_mid_body_stores_nothing_and_the_bridge_keeps_serving(bridge, caplog,
                                                                         wait_until):
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(bridge.url)
    with caplog.at_level("WARNING", logger="bridge.http"):
        with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
            sock.sendall(b"POST /v1/asm/checkout HTTP/1.1\r\nHost: x\r\nX-Apica-Token: "
                         + TOKEN.encode() + b"\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 500\r\n\r\n{\"check_id\": ")
            wait_until(lambda: bridge.sample("apica_bridge_webhooks_received_total",
                                             route="checkout") == 1, what="the handler")
        assert bridge.post(body=alert_body()).status_code == 202
    assert len(bridge.intake.calls) == 1
    # Nothing was stored, so there is nothing to answer or to blame on the bridge.
    assert not [r for r in caplog.records if getattr(r, "event", "") == "webhook_failed"]


def test_webhook_paths_outside_the_fast_path_behave_as_routes(bridge):
    # Trailing slash and nested paths are not webhook routes: Starlette answers them.
    assert bridge.post("/v1/asm/checkout/extra", alert_body()).status_code == 404
    assert httpx.put(bridge.url + "/v1/asm", content=b"{}").status_code == 405


def test_readyz_says_not_ready_while_the_store_cannot_commit(tmp_path, routes_file, metrics,
                                                             loopback, monkeypatch):
    """Issue 9 item 5. The outbox is capped with SQLite's max_page_count (`max_bytes`):
    past it SQLite fails the commit with SQLITE_FULL, the error a full disk gives, without
    filling a real file system. Webhooks get 503 and /readyz says not ready until commits
    succeed again (here: delivered events free their pages)."""
    import functools

    import bridge.store.rows as store_rows
    from bridge.intake.accept import accept_alert_async
    from bridge.store.sqlite import SqliteStore

    monkeypatch.setattr(store_rows, "PROBE_EVERY", 0.0)
    table = RouteTable(routes_file, metrics)
    table.load()
    with SqliteStore(tmp_path / "outbox.db", max_bytes=256 << 10) as outbox:
        app = create_app(
            routes=table, metrics=metrics, store_ready=outbox.writable,
            accept=functools.partial(accept_alert_async, outbox,
                                     asm_base_url="https://asm.example"),
            auth=Authenticator(Credentials(tokens=(TOKEN,))))
        with loopback(app) as server:
            def post(check: int) -> int:
                body = {"check_id": 101, "severity": "F", "check_name": f"Check {check}",
                        "message": "x" * 8000}
                return httpx.post(server.url + "/v1/asm/checkout", json=body, timeout=10,
                                  headers={"X-Apica-Token": TOKEN}).status_code

            assert httpx.get(server.url + "/readyz").status_code == 200
            answers = [post(check) for check in range(60)]
            assert 202 in answers and answers[-1] == 503  # the outbox filled up
            response = httpx.get(server.url + "/readyz")
            assert (response.status_code, response.json()) == (
                503, {"status": "not ready", "problems": ["store not writable"]})
            for event in outbox.pending():
                outbox.mark_delivered(event.id, routing_key=CHECKOUT_KEY)
            assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}
            assert post(99) == 202
