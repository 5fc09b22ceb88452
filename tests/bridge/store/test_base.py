"""The `Store` interface and its promises, held by each backend (SQLite and PostgreSQL:
the `outbox` fixture runs every test here on both): storage, lanes, duplicates, stale
alerts, check state, incident keys, leases, the send log, dead letters, route health."""

from __future__ import annotations

import inspect

import pytest

from bridge.delivery.pacing import Pacing
from bridge.store.base import Store
from bridge.store.postgres import PostgresStore
from bridge.store.records import (
    Claim,
    Enqueued,
    HeldAlert,
    KeyIncidents,
    RouteProblem,
    Throttle,
)
from bridge.store.sqlite import SqliteStore
from tests.bridge.conftest import enqueue, incoming, new_event

INTERFACE = sorted(
    name for name, member in vars(Store).items()
    if callable(member) and (not name.startswith("_") or name in ("__enter__", "__exit__"))
)


def test_the_interface_is_what_its_users_need():
    assert INTERFACE == [
        "__enter__", "__exit__", "backlog", "claim", "close", "dead_letter", "dead_letters",
        "delivery_lock", "drop_held", "enqueue", "enqueue_async", "get", "held_alerts", "hold",
        "key_window", "lane_heads", "mark_delivered", "open_incidents", "open_keys", "pending",
        "record_route_problem", "record_unclaimed", "redrive", "release_leases", "reschedule",
        "route_problems", "stale_alerts", "stats", "subscribe", "unclaimed", "writable",
    ]


@pytest.mark.parametrize("implementation", [SqliteStore, PostgresStore])
@pytest.mark.parametrize("name", INTERFACE)
def test_a_backend_implements_each_method_as_declared(implementation, name):
    declared = inspect.signature(getattr(Store, name))
    implemented = inspect.signature(getattr(implementation, name))
    assert list(implemented.parameters) == list(declared.parameters)
    for param in declared.parameters.values():
        other = implemented.parameters[param.name]
        assert (other.kind, other.default) == (param.kind, param.default), param.name
    assert inspect.iscoroutinefunction(getattr(implementation, name)) == \
        inspect.iscoroutinefunction(getattr(Store, name))


# -- the promises, on each backend ------------------------------------------------------

KEY_A = "a" * 32
KEY_B = "b" * 32
PACE = Pacing(limit=120)


def claim(box: Store, *pairs: tuple[int, str], owner: str = "me",
          lease: float = 15.0, pace: Pacing = PACE):
    return box.claim([Claim(i, k) for i, k in pairs], owner=owner, lease_seconds=lease,
                     pace=pace)


def head_ids(box: Store) -> list[int]:
    return [h.id for h in box.lane_heads()]


def test_lane_heads_one_per_route_with_the_key_of_an_open_incident(outbox):
    enqueue(outbox, new_event(dedup="a1"), new_event(dedup="a2"), route="web")
    enqueue(outbox, new_event(dedup="b1"), route="api")

    def heads():
        return [(h.route, h.dedup_key, h.opened_through) for h in outbox.lane_heads()]

    assert heads() == [("web", "a1", None), ("api", "b1", None)]
    outbox.mark_delivered(outbox.lane_heads()[0].id, routing_key=KEY_A)
    assert heads() == [("web", "a2", None), ("api", "b1", None)]
    enqueue(outbox, new_event("resolve", "a1"), route="web")
    outbox.mark_delivered(outbox.lane_heads()[0].id, routing_key=KEY_A)
    assert heads() == [("api", "b1", None), ("web", "a1", KEY_A)]


@pytest.mark.parametrize(
    ("deliveries", "open_after"),
    [
        ([("trigger", KEY_A)], [KeyIncidents("web", KEY_A, 1)]),
        ([("trigger", KEY_A), ("trigger", KEY_B)], [KeyIncidents("web", KEY_B, 1)]),
        ([("trigger", KEY_A), ("resolve", KEY_A)], []),
        ([("resolve", KEY_B)], []),
    ],
)
def test_a_delivered_trigger_records_its_key_and_a_resolve_forgets_it(outbox, deliveries,
                                                                      open_after):
    for action, key in deliveries:
        enqueue(outbox, new_event(action, "d1"))
        outbox.mark_delivered(outbox.lane_heads()[0].id, routing_key=key)
    assert outbox.open_incidents() == open_after
    assert outbox.pending() == []


def test_duplicate_within_window_is_stored_once(outbox, clock):
    assert enqueue(outbox, new_event(), fingerprint="fp").verdict == "stored"
    clock.now += 59
    assert enqueue(outbox, new_event(), fingerprint="fp") == Enqueued("duplicate")
    assert len(outbox.pending()) == 1
    clock.now += 2
    assert enqueue(outbox, new_event(), fingerprint="fp").verdict == "stored"
    assert len(outbox.pending()) == 2


def test_a_duplicate_repeats_the_checks_latest_alert_only(outbox, clock):
    """F, I, F within the window: the third is a re-trigger, not a copy of the first."""
    assert enqueue(outbox, new_event(), fingerprint="F").verdict == "stored"
    clock.now += 1
    assert enqueue(outbox, new_event("resolve"), fingerprint="I").verdict == "stored"
    clock.now += 1
    assert enqueue(outbox, new_event(), fingerprint="F").verdict == "stored"
    clock.now += 1
    assert enqueue(outbox, new_event(), fingerprint="F").verdict == "duplicate"
    # Another check's latest alert is its own.
    assert enqueue(outbox, new_event(), check="id:2", fingerprint="F").verdict == "stored"
    # An alert stored without a fingerprint is the latest too.
    assert enqueue(outbox, new_event("resolve")).verdict == "stored"
    assert enqueue(outbox, new_event(), fingerprint="F").verdict == "stored"
    assert len(outbox.pending()) == 6


T0, T5, T10 = "2026-11-26T10:00:00Z", "2026-11-26T10:05:00Z", "2026-11-26T10:10:00Z"


@pytest.mark.parametrize(
    ("alerts", "verdicts"),
    [
        # A resolve stamped 10:05 before the trigger stamped 10:00: the trigger is stale.
        ([("I", T5), ("F", T0)], ["stored", "stale"]),
        # F, I, then a byte-identical replay of the first F (after the duplicate window).
        ([("F", T0), ("I", T5), ("F", T0)], ["stored", "stored", "stale"]),
        # A replay of the newest alert itself, past the duplicate window: stale too.
        ([("F", T0), ("F", T0)], ["stored", "stale"]),
        # Two different alerts in the same second are both taken, then neither again.
        ([("F", T0), ("I", T0), ("F", T0), ("I", T0)], ["stored", "stored", "stale", "stale"]),
        # Newer alerts are always taken; an alert without a timestamp is never stale.
        ([("F", T0), ("I", T10), ("F", None), ("F", T5)], ["stored", "stored", "stored",
                                                            "stale"]),
    ],
)
def test_stale_alerts_are_recorded_and_not_stored(outbox, clock, alerts, verdicts):
    seen = []
    for severity, stamp in alerts:
        clock.now += 61  # past the duplicate window: only the stale rule decides
        action = "resolve" if severity == "I" else "trigger"
        seen.append(outbox.enqueue(
            incoming(fingerprint=f"{severity}@{stamp}", asm_time=stamp, action=action,
                     severity=severity),
            lambda _open, a=action: ([new_event(a)], frozenset())).verdict)
    assert seen == verdicts
    assert len(outbox.pending()) == verdicts.count("stored")
    stale = outbox.stale_alerts()
    assert [(s.severity, s.alert_at) for s in stale] == [
        alert for alert, verdict in zip(alerts, verdicts, strict=True) if verdict == "stale"]


def test_a_stale_answer_names_the_newest_time_and_another_check_is_its_own(outbox, clock):
    enqueue(outbox, new_event(), fingerprint="a", asm_time=T5)
    assert enqueue(outbox, new_event(), fingerprint="b", asm_time=T0) == Enqueued(
        "stale", newest_alert_at=T5)
    assert enqueue(outbox, new_event(), check="id:2", fingerprint="b",
                   asm_time=T0).verdict == "stored"
    (stale,) = outbox.stale_alerts()
    assert (stale.route, stale.check_key, stale.alert_at, stale.newest_alert_at,
            stale.received_at) == ("web", "id:1", T0, T5, clock.now)


def test_stale_alerts_keep_the_newest(outbox, clock, monkeypatch):
    import bridge.store.rows as store_rows

    monkeypatch.setattr(store_rows, "STALE_KEEP", 2)
    enqueue(outbox, new_event(), fingerprint="new", asm_time=T10)
    for minute in range(4):
        enqueue(outbox, new_event(), fingerprint=f"old{minute}",
                asm_time=f"2026-11-26T10:0{minute}:00Z")
    assert [s.alert_at for s in outbox.stale_alerts()] == [
        "2026-11-26T10:02:00Z", "2026-11-26T10:03:00Z"]


def test_check_state_follows_events_for(outbox):
    seen = []

    def events_for(open_now):
        seen.append(open_now)
        return [new_event()], frozenset({"low"})

    outbox.enqueue(incoming(), events_for)
    assert outbox.open_keys("web", "id:1") == {"low"}
    enqueue(outbox, new_event(), open_after={"high", "low"})
    assert outbox.open_keys("web", "id:1") == {"high", "low"}
    enqueue(outbox, new_event("resolve"))
    assert outbox.open_keys("web", "id:1") == frozenset()
    assert seen == [frozenset()]
    assert outbox.open_keys("other", "id:1") == frozenset()


def test_events_for_failure_stores_nothing(outbox):
    def events_for(_open):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        outbox.enqueue(incoming(fingerprint="fp", asm_time=T0), events_for)
    assert outbox.pending() == []
    # Fingerprint and timestamp were rolled back too: the retry is neither duplicate nor stale.
    assert enqueue(outbox, new_event(), fingerprint="fp", asm_time=T0).verdict == "stored"


# -- maintenance windows: held alerts ------------------------------------------------------


def test_a_held_alert_stores_no_event_and_leaves_open_classes_alone(outbox, clock):
    enqueue(outbox, new_event(), open_after={"low"})
    heads = outbox.lane_heads()
    held = outbox.hold(incoming(fingerprint="F", asm_time=T5), window="deploy",
                       record={"severity": "F", "tags": {"Env": ["Prod"]}})
    assert held == Enqueued("stored")
    assert (len(outbox.pending()), outbox.open_keys("web", "id:1")) == (1, {"low"})
    assert outbox.lane_heads() == heads  # nothing for the worker
    (found,) = outbox.held_alerts()
    assert found == HeldAlert("web", "id:1", "deploy", {"severity": "F", "tags": {"Env": ["Prod"]}},
                              clock.now, clock.now, 1)


def test_the_latest_held_alert_of_a_check_replaces_the_one_before(outbox, clock):
    outbox.hold(incoming(fingerprint="F", asm_time=T0), window="deploy", record={"n": 1})
    first_at = clock.now
    clock.now += 30
    outbox.hold(incoming(fingerprint="I", asm_time=T5), window="move", record={"n": 2})
    outbox.hold(incoming(check="id:2", fingerprint="F"), window="deploy", record={"n": 3})
    one, two = outbox.held_alerts()
    assert (one.check_key, one.window, one.alert, one.held_at, one.updated_at, one.version) \
        == ("id:1", "move", {"n": 2}, first_at, clock.now, 2)
    assert (two.check_key, two.alert, two.version) == ("id:2", {"n": 3}, 1)


def test_holding_applies_the_duplicate_and_stale_rules_of_enqueue(outbox, clock):
    enqueue(outbox, new_event(), fingerprint="I", asm_time=T5)
    # Older than the check's newest accepted alert: stale, nothing held.
    assert outbox.hold(incoming(fingerprint="F", asm_time=T0), window="w", record={}) == \
        Enqueued("stale", newest_alert_at=T5)
    assert outbox.hold(incoming(fingerprint="F", asm_time=T10), window="w",
                       record={}).verdict == "stored"
    # A copy of the held alert is a duplicate, and later a replay (stale).
    assert outbox.hold(incoming(fingerprint="F", asm_time=T10), window="w",
                       record={}).verdict == "duplicate"
    clock.now += 61
    assert outbox.hold(incoming(fingerprint="F", asm_time=T10), window="w",
                       record={}).verdict == "stale"
    # The held alert advanced the check's newest time: an older webhook now is stale.
    assert enqueue(outbox, new_event(), fingerprint="x", asm_time=T5).verdict == "stale"
    assert [h.version for h in outbox.held_alerts()] == [1]


def test_drop_held_never_drops_a_newer_alert(outbox):
    outbox.hold(incoming(fingerprint="a"), window="w", record={"n": 1})
    (read,) = outbox.held_alerts()
    outbox.hold(incoming(fingerprint="b"), window="w", record={"n": 2})
    assert outbox.drop_held("web", "id:1", read.version) is False
    (newer,) = outbox.held_alerts()
    assert outbox.drop_held("web", "id:1", newer.version) is True
    assert outbox.held_alerts() == []
    assert outbox.drop_held("web", "id:1", newer.version) is False


def test_claim_leases_heads_and_counts_a_send_per_key(outbox, clock):
    enqueue(outbox, new_event(dedup="a1"), route="web")
    enqueue(outbox, new_event(dedup="b1"), route="api")
    web, api = head_ids(outbox)
    claimed = claim(outbox, (web, KEY_A), (api, KEY_B), lease=15)
    assert [e.dedup_key for e in claimed.events] == ["a1", "b1"]
    assert {(e.lease_owner, e.lease_until) for e in claimed.events} == {("me", clock.now + 15)}
    assert claimed.waits == {}
    assert outbox.key_window(KEY_A, 60).sent_at == (clock.now,)


def test_a_head_leased_by_another_process_waits_for_its_lease(outbox, clock):
    enqueue(outbox, new_event(dedup="a1"))
    (head,) = head_ids(outbox)
    claim(outbox, (head, KEY_A), owner="old", lease=15)
    held = claim(outbox, (head, KEY_A), owner="new")
    assert (held.events, held.waits, held.held) == ([], {}, {head: clock.now + 15})
    assert claim(outbox, (head, KEY_A), owner="old").events  # its own lease: claimed again
    clock.now += 15
    (event,) = claim(outbox, (head, KEY_A), owner="new").events
    assert (event.lease_owner, event.lease_until) == ("new", clock.now + 15)


@pytest.mark.parametrize(
    ("outcome", "lease_left"),
    [
        (lambda box, i: box.reschedule(i, next_attempt_at=0, error="500"), False),
        (lambda box, i: box.release_leases("me"), False),
        (lambda box, i: box.release_leases("someone else"), True),
    ],
)
def test_leases_end_with_the_outcome_or_a_clean_stop(outbox, outcome, lease_left):
    enqueue(outbox, new_event())
    (head,) = head_ids(outbox)
    claim(outbox, (head, KEY_A))
    outcome(outbox, head)
    (event,) = outbox.pending()
    assert (event.lease_owner is not None) == lease_left


def test_a_key_without_room_is_not_claimed_and_says_when(outbox, clock):
    pace = Pacing(limit=2, window=60)
    for route in ("r1", "r2", "r3"):
        enqueue(outbox, new_event(dedup=route), route=route)
    first, second, third = head_ids(outbox)
    claim(outbox, (first, KEY_A), pace=pace)
    clock.now += 10
    claimed = claim(outbox, (second, KEY_A), (third, KEY_A), pace=pace)
    assert [e.id for e in claimed.events] == [second]
    assert claimed.waits == {third: clock.now - 10 + 60}  # when the first send leaves
    clock.now += 50
    assert [e.id for e in claim(outbox, (third, KEY_A), pace=pace).events] == [third]


def test_a_throttle_is_kept_with_the_reschedule_and_read_back(outbox, clock):
    enqueue(outbox, new_event())
    (head,) = head_ids(outbox)
    claim(outbox, (head, KEY_A))
    throttle = Throttle(limit=3, since=clock.now, not_before=clock.now + 30)
    outbox.reschedule(head, next_attempt_at=clock.now + 30, error="429 rate_limited",
                      throttle=(KEY_A, throttle))
    window = outbox.key_window(KEY_A, 60)
    assert (window.sent_at, window.throttle) == ((clock.now,), throttle)
    assert outbox.key_window(KEY_B, 60).throttle is None
    assert claim(outbox, (head, KEY_A)).waits == {head: clock.now + 30}


def test_claim_of_an_event_gone_meanwhile_is_nothing(outbox):
    enqueue(outbox, new_event())
    (head,) = head_ids(outbox)
    outbox.mark_delivered(head, routing_key=KEY_A)
    assert claim(outbox, (head, KEY_A)).events == []
    assert claim(outbox).events == []


def test_reschedule_counts_attempts(outbox, clock):
    enqueue(outbox, new_event())
    (head,) = head_ids(outbox)
    outbox.reschedule(head, next_attempt_at=clock.now + 5, error="500 boom")
    again = outbox.get(head)
    assert (again.attempts, again.next_attempt_at, again.last_error) == (
        1, clock.now + 5, "500 boom")


def test_dead_letter_and_redrive(outbox, clock):
    enqueue(outbox, new_event(dedup="d1"), new_event(dedup="d2"))
    first = outbox.get(head_ids(outbox)[0])
    dead_id = outbox.dead_letter(first.id, routing_key=KEY_A, status=400,
                                 reason="invalid_event", message="Event object is invalid")
    assert [e.dedup_key for e in outbox.pending()] == ["d2"]
    (letter,) = outbox.dead_letters()
    assert (letter.id, letter.event_id, letter.routing_key, letter.status, letter.message,
            letter.attempts) == (dead_id, first.id, KEY_A, 400, "Event object is invalid", 1)
    assert letter.body["dedup_key"] == "d1"
    assert outbox.dead_letter(first.id, routing_key=None, status=400, reason="x",
                              message="y") is None

    clock.now += 10
    assert outbox.redrive([dead_id, 999]) == [dead_id]
    assert outbox.dead_letters() == []
    redriven = outbox.pending()[-1]
    assert (redriven.dedup_key, redriven.attempts, redriven.created_at) == ("d1", 0, clock.now)


def test_redrive_all(outbox):
    enqueue(outbox, new_event(dedup="d1"), new_event(dedup="d2"))
    for event in outbox.pending():
        outbox.dead_letter(event.id, routing_key=None, status=None, reason="route_removed",
                           message="m", attempted=False)
    assert [d.routing_key for d in outbox.dead_letters()] == [None, None]
    assert len(outbox.redrive()) == 2
    assert [e.dedup_key for e in outbox.pending()] == ["d1", "d2"]


def test_route_problems_count_per_route_and_reason(outbox, clock):
    outbox.record_route_problem("web", "integration_gone", "first")
    clock.now += 5
    outbox.record_route_problem("web", "integration_gone", "second")
    outbox.record_route_problem("api", "unauthorized", "no")
    assert outbox.route_problems() == [
        RouteProblem("api", "unauthorized", 1, clock.now, "no"),
        RouteProblem("web", "integration_gone", 2, clock.now, "second"),
    ]


def test_stats_and_backlog(outbox, clock):
    assert outbox.stats().pending == 0
    assert outbox.stats().oldest_pending_age_seconds == 0.0
    enqueue(outbox, new_event(dedup="d1"), route="web")
    clock.now += 30
    enqueue(outbox, new_event(dedup="d2"), route="api")
    outbox.reschedule(outbox.pending()[1].id, next_attempt_at=clock.now, error="503")
    clock.now += 10
    stats = outbox.stats()
    assert (stats.pending, stats.oldest_pending_age_seconds, stats.dead_letters) == (2, 40.0, 0)
    backlog = {b.route: b for b in outbox.backlog()}
    assert backlog["api"].max_attempts == 1
    assert backlog["api"].last_error == "503"
    assert backlog["web"].last_error is None


def test_concurrent_writers_batch_and_a_failing_job_fails_alone(outbox):
    """Many threads at once (group commit): every good alert stored, each bad one refused."""
    from concurrent.futures import ThreadPoolExecutor

    def accept(i: int) -> str:
        def events_for(_open):
            if i % 7 == 0:
                raise ValueError(f"bad {i}")
            return [new_event(dedup=f"d{i}")], frozenset()

        try:
            outbox.enqueue(incoming(check=f"id:{i}", fingerprint=f"fp{i}"), events_for)
        except ValueError:
            return "refused"
        return "stored"

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(accept, range(200)))
    bad = {i for i in range(200) if i % 7 == 0}
    assert outcomes == ["refused" if i in bad else "stored" for i in range(200)]
    stored = {e.dedup_key for e in outbox.pending()}
    assert stored == {f"d{i}" for i in range(200) if i not in bad}


def test_unclaimed_webhooks_are_kept_cut_and_pruned(outbox, clock, monkeypatch):
    import bridge.store.rows as store_rows

    monkeypatch.setattr(store_rows, "UNCLAIMED_KEEP", 3)
    for i in range(5):
        clock.now += 1
        outbox.record_unclaimed(check_id=i, check_guid=None, check_name=f"Check {i}",
                                severity="F", action="trigger", body=b"x" * (5000 + i))
    kept = outbox.unclaimed()
    assert [u.check_id for u in kept] == [2, 3, 4]  # the newest three
    assert (len(kept[0].body), kept[0].body_bytes) == (4096, 5002)
    assert kept[-1].received_at == clock.now
