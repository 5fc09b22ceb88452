"""Reconciliation: the bridge's check state against ASM's, repaired through the intake.

The decision (`repairs`) on typed checks; rounds against the ASM sandbox with the real
store and intake; and the real `python -m bridge` with the ASM and PagerDuty sandboxes:
webhooks refused while it was down are repaired when it is back, and an ASM outage
never holds a webhook up.
"""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from bridge.asm_api import NO_RETRY, AsmClient
from bridge.asm_config import AsmApiSettings, TicketCredential
from bridge.asm_model import AsmCheck
from bridge.intake.asm import AsmAlert
from bridge.intake.pipeline import Intake
from bridge.reconcile import Reconciler, alert_from_check, repairs
from contract.routes_file import RoutesFile, parse_routes
from sandbox.asm_api import AsmSandbox
from tests.bridge.conftest import FakeClock, incidents_by_check, routes_document, webhook_time
from tests.bridge.test_serve import BridgeProcess, post, wait_until
from tests.conftest import ASM_START, ASM_TICKET

GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"


def check(id: int, severity: str, **fields: object) -> AsmCheck:
    values: dict = {"id": id, "guid": f"00000000-0000-4000-8000-{id:012d}",
                    "name": f"Check {id}", "enabled": True, "severity": severity,
                    "timestamp_utc": "2026-03-02T09:00:00", "tags": {}}
    values.update(fields)
    return AsmCheck(**values)


def open_in(table: dict[tuple[str, str], frozenset[str]]):
    return lambda route, check_key: table.get((route, check_key), frozenset())


# -- the decision ------------------------------------------------------------------------


def test_repairs_are_the_missing_triggers_and_resolves_of_claimed_checks(routes: RoutesFile):
    checks = [
        check(101, "F"),                                           # failing, nothing open
        check(102, "W", last_result_details={"message": "slow"}),  # low class not open
        check(201, "W"),                  # search maps W to error: high, not open
        check(103, "I", tags={"Team": ["Checkout"]}),              # recovered, low open
        check(104, "I", tags={"team": [" checkout "]}),            # normal, nothing open
        check(105, "F", enabled=False, tags={"Team": ["Checkout"]}),
        check(106, "U", tags={"Team": ["Checkout"]}),
        check(999, "F"),                                           # only the catch-all
        check(107, "E", guid=GUID.upper()),                        # by GUID, high open
    ]
    state = {("checkout", "id:102"): frozenset({"high"}),
             ("checkout", "id:103"): frozenset({"low"}),
             ("checkout", "id:107"): frozenset({"high"})}
    found = repairs(checks, routes, open_in(state))
    assert [(r.route_name, r.alert.check_key, r.alert.action, r.alert.severity)
            for r in found] == [
        ("checkout", "id:101", "trigger", "F"),
        ("checkout", "id:102", "trigger", "W"),
        ("search", "id:201", "trigger", "W"),
        ("checkout", "id:103", "resolve", "I"),
    ]
    trigger, low, _, resolve = found
    # Checked again inside the store's transaction: a webhook may have come meanwhile.
    assert trigger.only_if(frozenset()) and not trigger.only_if(frozenset({"high"}))
    assert low.only_if(frozenset({"high"})) and not low.only_if(frozenset({"low"}))
    assert resolve.only_if(frozenset({"low"})) and not resolve.only_if(frozenset())


def test_severities_outside_the_setting_are_left_alone(routes: RoutesFile):
    checks = [check(101, "F"), check(102, "W"), check(103, "I", tags={"Team": ["Checkout"]})]
    state = {("checkout", "id:103"): frozenset({"low"})}
    found = repairs(checks, routes, open_in(state), severities="FE")
    assert [(r.alert.check_key, r.alert.action) for r in found] == [
        ("id:101", "trigger"), ("id:103", "resolve")]


def test_the_alert_is_what_asm_would_have_sent_stamped_with_its_last_result():
    alert = alert_from_check(check(
        101, "E", check_type="url", check_type_name="URL", location="Stockholm, Sweden",
        last_result_details={"message": "HTTP 500"}, tags={"Team": ["Checkout"]}))
    assert alert == AsmAlert(
        action="trigger", severity="E", old_severity=None, check_id=101,
        check_guid="00000000-0000-4000-8000-000000000101", check_name="Check 101",
        check_type="URL", message="HTTP 500", timestamp="2026-03-02T09:00:00Z",
        location="Stockholm, Sweden", groups=(), tags={"Team": ("Checkout",)},
        result_guid=None)
    assert alert_from_check(check(101, "I", timestamp_utc=None)).timestamp is None


# -- rounds against the ASM sandbox, the real store and intake ------------------------------


@pytest.fixture
def account(asm: AsmSandbox) -> AsmSandbox:
    asm.state.add_check("Checkout page", id=101, guid=GUID, tags={"Team": ["Checkout"]})
    asm.state.add_check("Basket", id=102, tags={"Team": ["Checkout"]})
    asm.state.add_check("Careers", id=999)
    return asm


@pytest.fixture
def round_clock() -> FakeClock:
    return FakeClock(0.0)


@pytest.fixture
def reconciler(account, outbox, routes, metrics, round_clock):
    client = AsmClient(AsmApiSettings(api_url=account.api_url), TicketCredential(ASM_TICKET),
                       policy=NO_RETRY)
    intake = Intake(outbox, asm_base_url="https://asm.example", metrics=metrics)
    yield Reconciler(client, lambda: routes, outbox.open_keys, intake.accept, metrics=metrics,
                     quiet=600, clock=round_clock)
    client.close()


def _bodies(outbox) -> list[tuple[str, str, dict]]:
    return [(e.action, e.dedup_key, e.body.get("payload", {}).get("custom_details", {}))
            for e in outbox.pending()]


def test_a_round_stores_the_missing_trigger_marked_reconciled(account, reconciler, outbox,
                                                              metrics):
    account.state.set_severity(101, "F", message="HTTP 503", at=ASM_START)
    account.state.set_severity(999, "F", at=ASM_START)  # the catch-all's: left alone
    assert reconciler.run_round() == 1
    [(action, dedup, details)] = _bodies(outbox)
    assert (action, dedup) == ("trigger", "apica-asm:checkout:id:101:high")
    assert details["reconciled"] is True
    assert (details["check_name"], details["message"], details["timestamp_utc"]) == (
        "Checkout page", "HTTP 503", "2026-03-02T09:00:00Z")
    assert outbox.open_keys("checkout", "id:101") == {"high"}
    # The next round agrees: nothing more.
    assert reconciler.run_round() == 0
    assert len(outbox.pending()) == 1
    assert metrics.reconciled.labels("checkout", "trigger")._value.get() == 1
    assert metrics.reconcile_rounds.labels("ok")._value.get() == 2


def test_a_check_that_recovered_unseen_is_resolved(account, reconciler, outbox, storing_alert):
    storing_alert(outbox, severity="E", timestamp="2026-03-02T08:55:00Z")
    account.state.set_severity(101, "I", at=ASM_START)
    assert reconciler.run_round() == 1
    assert [(a, d) for a, d, _ in _bodies(outbox)] == [
        ("trigger", "apica-asm:checkout:id:101:high"),
        ("resolve", "apica-asm:checkout:id:101:high")]
    assert outbox.open_keys("checkout", "id:101") == frozenset()


def test_a_webhook_newer_than_what_asm_showed_wins(account, reconciler, outbox, storing_alert):
    account.state.set_severity(101, "F", at=ASM_START)
    # ASM's webhook for the recovery, a minute after the result the round reads.
    storing_alert(outbox, action="resolve", severity="I", timestamp="2026-03-02T09:01:00Z")
    assert reconciler.run_round() == 0  # stale: older than the check's newest alert
    assert [a for a, _, _ in _bodies(outbox)] == ["resolve", "resolve"]
    assert [s.alert_at for s in outbox.stale_alerts()] == ["2026-03-02T09:00:00Z"]
    # Asking again for the same ASM result would change nothing: it is not asked.
    assert reconciler.run_round() == 0
    assert len(outbox.stale_alerts()) == 1
    # A newer result of ASM's is a new question.
    account.state.set_severity(101, "F", at=ASM_START.replace(minute=2))
    assert reconciler.run_round() == 1


def test_a_repair_in_a_maintenance_window_is_held_once_and_paged_at_its_end(
        account, outbox, metrics, round_clock):
    from bridge.maintenance import CatchUp
    from sandbox.clock import ManualClock

    doc = routes_document()
    doc["version"] = 3
    doc["routes"]["checkout"]["maintenance"] = [{
        "name": "deploy", "time_zone": "UTC",
        "once": {"start": "2026-03-02T08:30", "end": "2026-03-02T09:30"}}]
    windowed = parse_routes(json.dumps(doc), "routes.json")
    now = ManualClock(ASM_START)
    intake = Intake(outbox, asm_base_url="https://asm.example", clock=now)
    client = AsmClient(AsmApiSettings(api_url=account.api_url), TicketCredential(ASM_TICKET),
                       policy=NO_RETRY)
    reconciler = Reconciler(client, lambda: windowed, outbox.open_keys, intake.accept,
                            metrics=metrics, clock=round_clock)
    account.state.set_severity(101, "F", at=ASM_START)
    assert (reconciler.run_round(), reconciler.run_round()) == (0, 0)
    [held] = outbox.held_alerts()
    assert (held.check_key, held.version) == ("id:101", 1)  # held once, not every round
    assert outbox.pending() == [] and outbox.stale_alerts() == []
    now.set(ASM_START.replace(minute=31))
    assert CatchUp(outbox, lambda: windowed, intake.accept, clock=now).run_once() == 1
    [(action, _, details)] = _bodies(outbox)
    assert (action, details["reconciled"], details["maintenance"]["window"]) == (
        "trigger", True, "deploy")
    client.close()


def test_an_asm_outage_skips_the_round_and_says_so_once(account, reconciler, outbox, metrics,
                                                        caplog, round_clock):
    account.state.set_severity(101, "F", at=ASM_START)
    account.faults.fail(status=503, count=3)
    with caplog.at_level(logging.INFO, logger="bridge.reconcile"):
        assert reconciler.run_round() is None
        round_clock.now = 60.0
        assert reconciler.run_round() is None  # within `quiet`: counted, not logged
        round_clock.now = 700.0
        assert reconciler.run_round() is None
        assert reconciler.run_round() == 1  # ASM answers: the repair happens
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines[0] == ("WARNING", f"reconciliation skipped (1 round so far): ASM API "
                        f"{account.url.removeprefix('http://')}: GET /checks: ASM answered "
                        "503: An error has occurred. (1 attempt); webhooks are taken as always")
    assert lines[1][1].startswith("reconciliation skipped (3 rounds so far)")
    assert lines[2] == ("INFO", "ASM answers again after 3 skipped reconciliation rounds")
    assert outbox.open_keys("checkout", "id:101") == {"high"}  # never "all recovered"
    assert metrics.reconcile_rounds.labels("asm_unavailable")._value.get() == 3


def test_a_refused_credential_skips_rounds_at_error_level(account, outbox, routes, caplog):
    client = AsmClient(AsmApiSettings(api_url=account.api_url),
                       TicketCredential("11111111-2222-3333-4444-555555555555"), policy=NO_RETRY)
    intake = Intake(outbox, asm_base_url="https://asm.example")
    with caplog.at_level(logging.WARNING, logger="bridge.reconcile"):
        assert Reconciler(client, lambda: routes, outbox.open_keys,
                          intake.accept).run_round() is None
    [record] = caplog.records
    assert record.levelname == "ERROR" and "ASM refused the credential (401)" in record.message
    assert "1111-2222" not in record.message  # the ticket by its last four only
    client.close()


@pytest.fixture
def storing_alert():
    """Store an alert of check 101 as a webhook would (the real intake)."""
    from tests.bridge.conftest import make_alert

    def store(outbox, **fields: object) -> None:
        routes = parse_routes(json.dumps(routes_document()), "r.json")
        alert = make_alert(**{"check_name": "Checkout page", **fields})
        Intake(outbox, asm_base_url="https://asm.example").accept(
            "checkout", routes.routes["checkout"], alert)

    return store


# -- the real bridge process ---------------------------------------------------------------


def _reconciling(asm: AsmSandbox, **env: str) -> dict[str, str]:
    return {"APICA_PD_ASM_RECONCILE": "true", "APICA_PD_ASM_API_URL": asm.api_url,
            "APICA_PD_ASM_AUTH_TICKET": ASM_TICKET, **env}


def _check_lists(asm: AsmSandbox) -> int:
    return sum(1 for r in asm.state.requests() if r["path"].lower() == "/v3/checks")


@pytest.mark.slow
def test_webhooks_refused_while_the_bridge_was_down_are_repaired_when_it_is_back(
        tmp_path, pd, pd_routes, live_asm):
    routes_file, service = pd_routes
    live_asm.state.add_check("Checkout page", id=101, tags={"Team": ["Checkout"]})
    live_asm.state.add_check("Basket", id=102, tags={"Team": ["Checkout"]})
    live_asm.state.set_severity(102, "I")
    data = tmp_path / "data"
    bridge = BridgeProcess(routes_file, data, pd.events_url, **_reconciling(live_asm))
    try:
        url = bridge.wait_for("listening")["url"]
        wait_until(lambda: _check_lists(live_asm) >= 1, what="the round at start")
        # Check 101 fails: ASM's state and its webhook agree, PagerDuty pages.
        live_asm.state.set_severity(101, "F", message="HTTP 503")
        assert post(url, {"S": "F", "CHECK_ID": "101", "UTC-T": webhook_time()}).status_code \
            == 202
        wait_until(lambda: incidents_by_check(pd, service).get(101) == [("high", "triggered")],
                   what="check 101 paged")
    finally:
        assert bridge.stop() == 0
    # While the bridge is down, 101 recovers and 102 fails; ASM's webhooks find no one.
    time.sleep(1.1)  # a later second than the webhook's, as ASM's next result would be
    live_asm.state.set_severity(101, "I", message="OK")
    live_asm.state.set_severity(102, "F", message="HTTP 500")
    with pytest.raises(httpx.ConnectError):
        post(url, {"S": "I", "CHECK_ID": "101", "UTC-T": webhook_time()})

    back = BridgeProcess(routes_file, data, pd.events_url, **_reconciling(live_asm))
    try:
        back.wait_for("listening")
        # The interval is the default 60 s: the round at start repairs both.
        wait_until(lambda: incidents_by_check(pd, service) == {101: [("high", "resolved")],
                                                       102: [("high", "triggered")]},
                   what="both repaired")
        repaired = sorted((r["check"], r["action"]) for r in
                          (back.wait_for("reconciled"), back.wait_for("reconciled")))
        assert repaired == [("id:101", "resolve"), ("id:102", "trigger")]
        [incident] = pd.state.incidents(service, status="triggered")
        assert incident["alerts"][0]["custom_details"]["reconciled"] is True
    finally:
        assert back.stop() == 0


@pytest.mark.slow
def test_an_asm_outage_never_holds_a_webhook_up(tmp_path, pd, pd_routes, live_asm):
    routes_file, service = pd_routes
    live_asm.state.add_check("Checkout page", id=101, tags={"Team": ["Checkout"]})
    live_asm.faults.latency(5)  # ASM hangs: every reconciliation call times out
    bridge = BridgeProcess(routes_file, tmp_path / "data", pd.events_url,
                           **_reconciling(live_asm, APICA_PD_ASM_TIMEOUT="2",
                                          APICA_PD_ASM_RECONCILE_INTERVAL="1"))
    try:
        url = bridge.wait_for("listening")["url"]
        assert httpx.get(url + "/readyz").json() == {"status": "ready"}
        answered = []
        for severity in ("W", "F", "I", "E"):
            started = time.monotonic()
            assert post(url, {"S": severity, "CHECK_ID": "101",
                              "UTC-T": webhook_time()}).status_code == 202
            answered.append(time.monotonic() - started)
        # The rounds wait for ASM in their own thread; a webhook waits for its commit only.
        assert max(answered) < 1.0, answered
        wait_until(lambda: sorted(incidents_by_check(pd, service).get(101, [])) == [
            ("high", "resolved"), ("high", "triggered"), ("low", "resolved")],
            what="every webhook delivered")
        skipped = bridge.wait_for("reconcile_skipped", timeout=20)
        assert "no answer within" in skipped["reason"] or "did not arrive" in skipped["reason"]
    finally:
        live_asm.faults.clear()
        assert bridge.stop() == 0


def test_the_bridge_refuses_to_start_reconciling_without_an_asm_credential(tmp_path, pd,
                                                                            pd_routes):
    routes_file, _ = pd_routes
    bridge = BridgeProcess(routes_file, tmp_path / "data", pd.events_url,
                           APICA_PD_ASM_RECONCILE="true")
    failed = bridge.wait_for("start_failed")
    assert failed["msg"] == (
        "cannot start: APICA_PD_ASM_RECONCILE needs ASM's API: no ASM credential: set "
        "APICA_PD_ASM_AUTH_TICKET, APICA_PD_ASM_BASIC_AUTH (user:password) or "
        "APICA_PD_ASM_CREDENTIALS_FILE (see docs/asm.md)")
    assert bridge.proc.wait(timeout=20) == 2
