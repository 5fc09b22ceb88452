"""The intake's way in: held by a window, or enriched and stored (real store, the ASM
sandbox on loopback)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from bridge.asm_api import AsmDeadlineClient
from bridge.asm_config import AsmApiSettings, TicketCredential
from bridge.enrichment import DETAILS_KEY, Enricher
from bridge.intake.pipeline import Intake
from contract.routes_file import RoutesFile, parse_routes
from sandbox.asm_api import AsmSandbox
from sandbox.clock import ManualClock
from tests.bridge.conftest import make_alert, routes_document
from tests.conftest import ASM_START, ASM_TICKET

DURING = datetime(2026, 12, 5, 21, 30, tzinfo=UTC)  # 22:30 in Berlin
DEPLOY = {"name": "deploy", "time_zone": "Europe/Berlin",
          "once": {"start": "2026-12-05T22:00", "end": "2026-12-05T23:00"}}


@pytest.fixture
def routes() -> RoutesFile:
    doc = routes_document()
    doc["version"] = 3
    doc["routes"]["checkout"]["maintenance"] = [{**DEPLOY, "checks": {"ids": [202]}}]
    return parse_routes(json.dumps(doc), "routes.json")


@pytest.fixture
def enricher(asm: AsmSandbox):
    asm.state.add_check("Checkout page", id=101)
    asm.state.set_severity(101, "F", value=30000, unit="ms", threshold_e=3000, at=ASM_START)
    made = Enricher(AsmDeadlineClient(AsmApiSettings(api_url=asm.api_url),
                                      TicketCredential(ASM_TICKET)),
                    asm_base_url="https://asm.example")
    yield made
    made.close()


@pytest.fixture
def intake(outbox, enricher, metrics) -> Intake:
    return Intake(outbox, asm_base_url="https://asm.example", enricher=enricher,
                  metrics=metrics, clock=ManualClock(DURING))


def details(outbox) -> list[tuple[str, dict]]:
    return [(e.action, e.body.get("payload", {}).get("custom_details", {}))
            for e in outbox.pending()]


def webhook(intake: Intake, routes: RoutesFile, **fields: object):
    return asyncio.run(intake.accept_webhook("checkout", routes.routes["checkout"],
                                             make_alert(**fields)))


def test_a_webhook_trigger_carries_asms_latest_result(intake, routes, outbox):
    assert webhook(intake, routes, severity="F").event_count == 1
    [(action, fields)] = details(outbox)
    assert action == "trigger"
    assert fields[DETAILS_KEY]["value"] == 30000 and fields[DETAILS_KEY]["threshold_e"] == 3000
    assert fields[DETAILS_KEY]["link"].startswith("https://asm.example/Check/Details/101")


def test_a_resolve_is_stored_without_asking_asm(intake, routes, outbox, asm):
    webhook(intake, routes, severity="F")
    asked = len(asm.state.requests())
    webhook(intake, routes, action="resolve", severity="I")
    assert len(asm.state.requests()) == asked
    assert [a for a, _ in details(outbox)] == ["trigger", "resolve"]


def test_asm_down_stores_the_trigger_without_the_result(intake, routes, outbox, asm):
    asm.faults.fail(status=503, count=2)
    assert webhook(intake, routes, severity="E").event_count == 1
    [(_, fields)] = details(outbox)
    assert DETAILS_KEY not in fields and fields["new_severity"] == "E"


def test_a_check_a_window_covers_is_held_not_enriched_not_paged(intake, routes, outbox, asm,
                                                                metrics):
    held = webhook(intake, routes, severity="F", check_id=202)
    assert (held.event_count, held.duplicate, held.stale) == (0, False, False)
    assert outbox.pending() == [] and len(asm.state.requests()) == 0
    [kept] = outbox.held_alerts()
    assert (kept.check_key, kept.window) == ("id:202", "deploy")
    assert metrics.held.labels("checkout")._value.get() == 1
    # The window names check 202 only: check 101 pages as always.
    assert webhook(intake, routes, severity="F").event_count == 1


def test_the_bridges_own_alerts_take_the_same_way(intake, routes, outbox):
    accepted = intake.accept("checkout", routes.routes["checkout"], make_alert(severity="F"),
                             marks={"reconciled": True})
    assert accepted.event_count == 1
    [(_, fields)] = details(outbox)
    assert fields["reconciled"] is True and fields[DETAILS_KEY]["unit"] == "ms"
