"""accept_alert: escalation steps stored atomically, duplicates and stale alerts dropped."""

from __future__ import annotations

import dataclasses

import pytest

from bridge.errors import InvalidEvent
from bridge.intake.accept import Accepted, accept_alert, fingerprint
from bridge.intake.events import check_event
from bridge.store.sqlite import SqliteStore
from contract.routes_file import Route
from tests.bridge.conftest import plain_alert

KEY = "R" * 28 + "abcd"
BASE = "https://asm.example.com"


@pytest.fixture
def route() -> Route:
    return Route(service_name="Web", service_id="PWEB", integration_name="Apica-Web",
                 routing_key=KEY)


def stored(box: SqliteStore) -> list[tuple[str, str]]:
    return [(e.action, e.dedup_key.rsplit(":", 1)[1]) for e in box.pending()]


def test_trigger_stores_one_valid_event(outbox, route):
    assert accept_alert(outbox, "web", route, plain_alert("W"),
                        asm_base_url=BASE) == Accepted(1, False)
    (event,) = outbox.pending()
    assert (event.route, event.check_key, event.action) == ("web", "id:42", "trigger")
    assert event.dedup_key == "apica-asm:web:id:42:low"
    assert event.body["dedup_key"] == event.dedup_key
    assert event.body["payload"]["severity"] == "warning"
    # The key is chosen at send time: the stored body has none, and is valid with one.
    assert "routing_key" not in event.body
    assert check_event({**event.body, "routing_key": KEY}) == []
    assert outbox.open_keys("web", "id:42") == {"low"}


def test_w_e_i_escalates_then_resolves_everything(outbox, route):
    accept_alert(outbox, "web", route, plain_alert("W"), asm_base_url=BASE)
    assert accept_alert(outbox, "web", route, plain_alert("E"), asm_base_url=BASE).event_count == 2
    assert accept_alert(outbox, "web", route, plain_alert("I", "resolve"),
                        asm_base_url=BASE).event_count == 1
    assert stored(outbox) == [
        ("trigger", "low"), ("trigger", "high"), ("resolve", "low"), ("resolve", "high")]
    assert outbox.open_keys("web", "id:42") == frozenset()


def test_route_severity_map_decides_the_class(outbox):
    strict = Route(service_name="S", service_id="PS", integration_name="Apica-S",
                   routing_key=KEY, severity_map={"W": "error"})
    accept_alert(outbox, "strict", strict, plain_alert("W"), asm_base_url=BASE)
    assert stored(outbox) == [("trigger", "high")]


def test_exact_duplicate_within_window_is_dropped(outbox, route, clock):
    first = plain_alert("F")
    assert accept_alert(outbox, "web", route, first, asm_base_url=BASE) == Accepted(1, False)
    clock.now += 30
    assert accept_alert(outbox, "web", route, first, asm_base_url=BASE) == Accepted(0, True)
    # A different message is a different alert, not a duplicate.
    other = dataclasses.replace(first, message="still down")
    assert accept_alert(outbox, "web", route, other, asm_base_url=BASE) == Accepted(1, False)
    assert len(outbox.pending()) == 2


def test_a_re_trigger_after_a_resolve_is_not_a_duplicate(outbox, route, clock):
    """F, I, F for one check within the window: the check is failing again (ASM stamps
    each result anew), so its incident must open again. Only a repeat of the latest alert
    is a duplicate."""
    results = []
    for minute, (severity, action) in enumerate([("F", "trigger"), ("I", "resolve"),
                                                 ("F", "trigger"), ("F", "trigger")]):
        clock.now += 5
        stamp = f"2026-11-26T11:0{min(minute, 2)}:00"
        results.append(accept_alert(outbox, "web", route,
                                    plain_alert(severity, action, timestamp=stamp),
                                    asm_base_url=BASE))
    assert results == [Accepted(1, False), Accepted(1, False), Accepted(1, False),
                       Accepted(0, True)]
    assert stored(outbox) == [("trigger", "high"), ("resolve", "high"), ("trigger", "high")]
    assert outbox.open_keys("web", "id:42") == {"high"}


def test_fingerprint_depends_on_route_and_content():
    a = plain_alert("W")
    assert fingerprint("web", a) == fingerprint("web", plain_alert("W"))
    assert fingerprint("web", a) != fingerprint("api", a)
    assert fingerprint("web", a) != fingerprint("web", plain_alert("E"))


def test_checks_are_tracked_separately(outbox, route):
    accept_alert(outbox, "web", route, plain_alert("W", check_id=1), asm_base_url=BASE)
    accept_alert(outbox, "web", route, plain_alert("F", check_id=2), asm_base_url=BASE)
    assert outbox.open_keys("web", "id:1") == {"low"}
    assert outbox.open_keys("web", "id:2") == {"high"}


def test_async_accept_is_the_same_transaction(outbox, route):
    """`accept_alert_async` (for an event loop) stores and deduplicates like the sync one."""
    import asyncio

    from bridge.intake.accept import accept_alert_async

    async def scenario() -> list[Accepted]:
        return [
            await accept_alert_async(outbox, "web", route, plain_alert("W"), asm_base_url=BASE),
            await accept_alert_async(outbox, "web", route, plain_alert("W"), asm_base_url=BASE),
            await accept_alert_async(outbox, "web", route, plain_alert("F"), asm_base_url=BASE),
        ]

    assert asyncio.run(scenario()) == [Accepted(1, False), Accepted(0, True), Accepted(2, False)]
    assert stored(outbox) == [("trigger", "low"), ("trigger", "high"), ("resolve", "low")]
    assert outbox.open_keys("web", "id:42") == {"high"}


def test_an_event_pagerduty_would_refuse_is_refused_before_anything_is_stored(outbox, clock):
    """Checked at intake, inside the transaction: InvalidEvent (the webhook's 422), and
    no event, open key or duplicate fingerprint is left behind."""
    from pydantic import SecretStr

    broken = Route.model_construct(service_name="Web", service_id="PWEB",
                                   integration_name="Apica-Web", routing_key=SecretStr("short"),
                                   severity_map={"F": "critical", "E": "error",
                                                 "W": "warning", "I": "info"},
                                   links=())
    with pytest.raises(InvalidEvent) as caught:
        accept_alert(outbox, "web", broken, plain_alert("F"), asm_base_url=BASE)
    assert caught.value.reason == "invalid_event"
    assert "route 'web': event breaks the Events API rules: routing_key must be 32 letters " \
        "or digits" in str(caught.value)
    assert outbox.pending() == []
    assert outbox.open_keys("web", "id:42") == frozenset()
    # Not remembered as seen: the same webhook, once the route is fixed, is stored.
    fixed = Route(service_name="Web", service_id="PWEB", integration_name="Apica-Web",
                  routing_key=KEY)
    assert accept_alert(outbox, "web", fixed, plain_alert("F"),
                        asm_base_url=BASE) == Accepted(1, False)


def test_a_check_name_of_control_characters_still_pages(outbox, route):
    """`"check_name": "\\u0000"` cleans to an empty summary: it falls back to the check id
    instead of storing an event PagerDuty would refuse."""
    accept_alert(outbox, "web", route, plain_alert("F", check_name="\x00", message=""),
                 asm_base_url=BASE)
    (event,) = outbox.pending()
    assert event.body["payload"]["summary"] == "ASM check 42"
    assert check_event({**event.body, "routing_key": KEY}) == []


STALE_AT_10_05 = Accepted(0, False, True, "2026-11-26T10:05:00Z")


@pytest.mark.parametrize(
    ("alerts", "answers", "events"),
    [
        # A resolve stamped 10:05 posted before the trigger stamped 10:00.
        ([("F", "09:55:00"), ("I", "10:05:00"), ("F", "10:00:00")],
         [Accepted(1, False), Accepted(1, False), STALE_AT_10_05],
         [("trigger", "high"), ("resolve", "high")]),
        # A byte-identical replay of an old F after F, I.
        ([("F", "10:00:00"), ("I", "10:05:00"), ("F", "10:00:00")],
         [Accepted(1, False), Accepted(1, False), STALE_AT_10_05],
         [("trigger", "high"), ("resolve", "high")]),
        # ASM's zone-less %UTC-T% and an explicit Z are the same time.
        ([("F", "10:05:00"), ("I", "10:00:00Z")],
         [Accepted(1, False), STALE_AT_10_05], [("trigger", "high")]),
    ],
)
def test_an_alert_older_than_the_checks_newest_is_stale(outbox, route, clock, alerts, answers,
                                                        events):
    results = []
    for severity, time in alerts:
        clock.now += 120  # past the duplicate window
        action = "resolve" if severity == "I" else "trigger"
        alert = plain_alert(severity, action, timestamp=f"2026-11-26T{time}")
        results.append(accept_alert(outbox, "web", route, alert, asm_base_url=BASE))
    assert results == answers
    assert stored(outbox) == events


# -- alerts the bridge makes: marks, enrichment, only_if (issue 14) ---------------------


def test_marks_go_into_custom_details_and_the_fingerprint(outbox, route, clock):
    alert = plain_alert("F")
    assert fingerprint("web", alert) != fingerprint("web", alert, {"reconciled": True})
    assert fingerprint("web", alert, {}) == fingerprint("web", alert)
    accept_alert(outbox, "web", route, alert, asm_base_url=BASE)
    # The same alert made by reconciliation is not a copy of the webhook...
    made = accept_alert(outbox, "web", route, alert, asm_base_url=BASE,
                        marks={"reconciled": True})
    assert (made.duplicate, made.stale, made.event_count) == (False, False, 1)
    details = outbox.pending()[-1].body["payload"]["custom_details"]
    assert details["reconciled"] is True and details["check_id"] == 42
    # ...but a second one like it is.
    assert accept_alert(outbox, "web", route, alert, asm_base_url=BASE,
                        marks={"reconciled": True}).duplicate


def test_enrichment_goes_into_custom_details_only(outbox, route):
    alert = plain_alert("E")
    accept_alert(outbox, "web", route, alert, asm_base_url=BASE,
                 enrichment={"asm_result": {"value": 4637, "unit": "ms"}})
    assert outbox.pending()[0].body["payload"]["custom_details"]["asm_result"] == {
        "value": 4637, "unit": "ms"}
    # A copy of the webhook stays a copy, whatever ASM answered for it.
    assert accept_alert(outbox, "web", route, alert, asm_base_url=BASE,
                        enrichment={"asm_result": {"value": 1}}).duplicate
    # Marks win over enrichment where both name a field.
    accept_alert(outbox, "web", route, plain_alert("I", "resolve"), asm_base_url=BASE)
    accept_alert(outbox, "web", route, plain_alert("W"), asm_base_url=BASE,
                 enrichment={"reconciled": "no"}, marks={"reconciled": True})
    assert outbox.pending()[-1].body["payload"]["custom_details"]["reconciled"] is True


def test_only_if_is_asked_inside_the_transaction_with_the_open_classes(outbox, route):
    asked = []

    def only_if(open_now: frozenset[str]) -> bool:
        asked.append(open_now)
        return "high" not in open_now

    assert accept_alert(outbox, "web", route, plain_alert("F"), asm_base_url=BASE,
                        only_if=only_if).event_count == 1
    repeat = accept_alert(outbox, "web", route, plain_alert("F", message="again"),
                          asm_base_url=BASE, only_if=only_if)
    assert (repeat.event_count, repeat.duplicate) == (0, False)
    assert asked == [frozenset(), frozenset({"high"})]
    assert outbox.open_keys("web", "id:42") == {"high"}  # left as it was
    assert len(outbox.pending()) == 1
