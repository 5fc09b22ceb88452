"""Enrichment: ASM's latest result for a trigger, against the ASM sandbox on loopback,
never longer than the deadline and never a reason to fail."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bridge.asm_api import AsmDeadlineClient
from bridge.asm_config import AsmApiSettings, TicketCredential
from bridge.enrichment import DETAILS_KEY, Enricher
from sandbox.asm_api import AsmSandbox
from tests.bridge.conftest import FakeClock, incidents_by_check, webhook_time
from tests.bridge.test_serve import BridgeProcess, post, wait_until
from tests.conftest import ASM_START, ASM_TICKET

RESULT = "0bd93e97-4a7c-4f11-9957-1d7dac16b41d"
BASE = "https://wpm.apicasystem.com"


@pytest.fixture
def account(asm: AsmSandbox) -> AsmSandbox:
    asm.state.add_check("Checkout page", id=101)
    asm.state.set_severity(101, "E", value=4637, unit="ms", threshold_w=1500,
                           threshold_e=3000, result_id=RESULT, at=ASM_START)
    return asm


@pytest.fixture
def pause_clock() -> FakeClock:
    return FakeClock(0.0)


@pytest.fixture
def enricher(account, metrics, pause_clock):
    client = AsmDeadlineClient(AsmApiSettings(api_url=account.api_url),
                               TicketCredential(ASM_TICKET), deadline=1.0)
    made = Enricher(client, asm_base_url=BASE + "/", deadline=1.0, pause=30,
                    metrics=metrics, clock=pause_clock)
    yield made
    made.close()


def _asked(asm: AsmSandbox) -> int:
    return len(asm.state.requests())


def test_a_trigger_gets_the_latest_result_value_unit_thresholds_and_link(enricher, metrics):
    assert enricher.details(101) == {DETAILS_KEY: {
        "value": 4637, "unit": "ms", "severity": "E", "timestamp_utc": "2026-03-02T09:00:00Z",
        "threshold_w": 1500, "threshold_e": 3000, "result_id": RESULT,
        "link": f"{BASE}/Check/Details/101?resultGuid={RESULT}"}}
    assert metrics.enrichment.labels("enriched")._value.get() == 1


def test_the_event_loop_form_gives_the_same(enricher):
    details = asyncio.run(enricher.details_async(101))
    assert details is not None and details[DETAILS_KEY]["result_id"] == RESULT


def test_a_check_asm_does_not_know_adds_nothing_and_is_no_outage(enricher, account, metrics):
    assert enricher.details(555) is None
    assert metrics.enrichment.labels("unavailable")._value.get() == 1
    before = _asked(account)
    assert enricher.details(101) is not None  # not resting: a 404 is no sign of trouble
    assert _asked(account) == before + 2


def test_a_slow_asm_costs_one_deadline_then_enrichment_rests(enricher, account, metrics,
                                                             pause_clock, caplog):
    account.faults.latency(5)
    with caplog.at_level(logging.WARNING, logger="bridge.enrichment"):
        started = time.monotonic()
        assert enricher.details(101) is None
        # Far below ASM's 5 s: the trigger went on without waiting for ASM.
        assert time.monotonic() - started < 2.5
        asked = _asked(account)
        assert enricher.details(101) is None  # resting: ASM is not asked at all
        assert asyncio.run(enricher.details_async(101)) is None
    assert _asked(account) == asked
    [line] = caplog.records
    assert line.getMessage() == ("ASM did not answer for enrichment; triggers go without "
                                 "ASM's latest result for 30 s")
    assert line.reason.endswith("no answer within 1 s")  # type: ignore[attr-defined]
    assert metrics.enrichment.labels("paused")._value.get() == 2
    account.faults.clear()
    pause_clock.now = 31.0
    assert enricher.details(101) is not None


def test_an_asm_error_answer_rests_too(enricher, account):
    account.faults.fail(status=503, count=2)
    assert enricher.details(101) is None
    assert enricher.details(101) is None  # resting, ASM not asked again
    assert len([r for r in account.state.requests() if r["status"] == 503]) == 2


@pytest.mark.parametrize("deadline", [0, 1.5, float("nan")])
def test_the_deadline_is_at_most_one_second(deadline: float):
    with pytest.raises(ValueError, match=r"deadline must be in \(0, 1\] seconds"):
        Enricher(object(), asm_base_url=BASE, deadline=deadline)  # type: ignore[arg-type]


# -- the real bridge process ---------------------------------------------------------------


@pytest.mark.slow
def test_the_bridge_enriches_triggers_and_a_hanging_asm_costs_at_most_the_deadline(
        tmp_path, pd, pd_routes, live_asm):
    routes_file, service = pd_routes
    live_asm.state.add_check("Checkout page", id=101, tags={"Team": ["Checkout"]})
    live_asm.state.set_severity(101, "E", value=4637, unit="ms", threshold_e=3000,
                                result_id=RESULT)
    bridge = BridgeProcess(routes_file, tmp_path / "data", pd.events_url,
                           APICA_PD_ASM_ENRICH="true", APICA_PD_ASM_API_URL=live_asm.api_url,
                           APICA_PD_ASM_AUTH_TICKET=ASM_TICKET)
    try:
        url = bridge.wait_for("listening")["url"]
        assert post(url, {"S": "E", "CHECK_ID": "101", "UTC-T": webhook_time()}).status_code \
            == 202
        wait_until(lambda: incidents_by_check(pd, service).get(101) == [("high", "triggered")],
                   what="check 101 paged")
        [incident] = pd.state.incidents(service)
        assert incident["alerts"][0]["custom_details"][DETAILS_KEY]["result_id"] == RESULT
        live_asm.faults.latency(5)  # ASM hangs
        started = time.monotonic()
        assert post(url, {"S": "I", "CHECK_ID": "101", "UTC-T": webhook_time()}).status_code \
            == 202  # a resolve: not enriched, no wait at all
        time.sleep(1.1)  # the next webhook in a later second than the resolve
        assert post(url, {"S": "F", "CHECK_ID": "101", "UTC-T": webhook_time()}).status_code \
            == 202
        # Both answered although ASM hangs: the trigger waited its 1 s deadline at most.
        assert time.monotonic() - started < 1.1 + 2.0
        wait_until(lambda: len(pd.state.incidents(service)) == 2, what="the second page")
        newest = max(pd.state.incidents(service), key=lambda i: i["incident_number"])
        assert DETAILS_KEY not in newest["alerts"][0]["custom_details"]
        assert bridge.wait_for("enrichment_paused")["pause"] == 30
    finally:
        live_asm.faults.clear()
        assert bridge.stop() == 0
