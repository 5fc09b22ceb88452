"""The worker: lanes (routes), keys chosen at send time, leases, retries, dead letters,
pacing per key.

First with a scripted sender and a fake clock (deterministic, no sleeping), then
end to end against the PagerDuty sandbox on loopback.
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from bridge.delivery.pacing import WINDOW, Pacing
from bridge.delivery.retry import Backoff
from bridge.delivery.sender import Dead, Delivered, RetryLater, Sender
from bridge.delivery.worker import Worker
from bridge.intake.accept import accept_alert
from bridge.metrics import BridgeMetrics
from bridge.store.base import Store
from bridge.store.records import Claim
from bridge.store.sqlite import SqliteStore, outbox_path
from contract.routes_file import Route, RoutesFile
from tests.bridge.conftest import FakeClock, enqueue, new_event, plain_alert, routes_with_keys

KEY_A = "a" * 32
KEY_B = "b" * 32
# Lanes are routes: route "a" sends to KEY_A, route "b" to KEY_B (and so on for c..z).
ROUTES = routes_with_keys(**{chr(c): chr(c) * 32 for c in range(ord("a"), ord("z") + 1)})
FAST = Pacing(limit=6000)


class ScriptedSender:
    """Answers per routing key from a script (default: delivered); records what was sent."""

    def __init__(self) -> None:
        self.script: dict[str, list] = defaultdict(list)
        self.sent: list[dict] = []
        self.gate: dict[str, threading.Event] = {}
        self.longest_request = 1.0

    def send(self, event: dict):
        key = event["routing_key"]
        if key in self.gate:
            self.gate[key].wait(5)
        self.sent.append(event)
        answers = self.script[key]
        answer = answers.pop(0) if answers else Delivered(202)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def sender() -> ScriptedSender:
    return ScriptedSender()


@pytest.fixture
def make_worker(outbox, sender, clock, metrics):
    workers = []

    def make(**kwargs) -> Worker:
        options = dict(pacing=FAST, metrics=metrics, clock=clock, validate=lambda body: [],
                       backoff=Backoff(base=1.0, cap=60.0), rng=random.Random(7))
        options.update(kwargs)
        routes = options.pop("routes", ROUTES)
        source = routes if callable(routes) else (lambda: routes)
        worker = Worker(outbox, sender, source, **options)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop(timeout=5)


def store(box: Store, key: str, *dedups: str, action: str = "trigger") -> None:
    """Events on the lane (route) whose key is `key` (route "a" for KEY_A)."""
    enqueue(box, *(new_event(action, d) for d in dedups), route=key[0])


def sent(sender: ScriptedSender, key: str | None = None) -> list[str]:
    return [e["dedup_key"] for e in sender.sent if key is None or e["routing_key"] == key]


def sample(metrics: BridgeMetrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_delivers_each_lane_in_order(outbox, sender, make_worker, metrics):
    store(outbox, KEY_A, "a1", "a2", "a3")
    store(outbox, KEY_B, "b1")
    worker = make_worker()
    while worker.step():
        pass
    assert sent(sender, KEY_A) == ["a1", "a2", "a3"]
    assert sent(sender, KEY_B) == ["b1"]
    assert outbox.pending() == []
    assert sample(metrics, "apica_bridge_events_delivered_total", action="trigger") == 4
    assert sample(metrics, "apica_bridge_delivery_latency_seconds_count") == 4


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        (None, 60.0),  # no Retry-After (PagerDuty documents none): the key's window decides
        (90.0, 90.0),  # a longer Retry-After is honoured
        (5.0, 60.0),  # a shorter one does not shorten the window's wait
    ],
)
def test_a_429_waits_for_the_keys_window_and_honours_retry_after(
        outbox, sender, make_worker, clock, metrics, retry_after, wait):
    store(outbox, KEY_A, "a1")
    sender.script[KEY_A] = [RetryLater(retry_after, "rate_limited", 429)]
    worker = make_worker(pacing=Pacing(limit=120, window=60))
    assert worker.step() == 1
    (event,) = outbox.pending()
    assert (event.attempts, event.next_attempt_at) == (1, clock.now + wait)
    assert event.last_error == "429 rate_limited"
    # One send in the window got a 429: the key's limit drops to one.
    assert outbox.key_window(KEY_A, 60).throttle.limit == 1
    clock.now += wait - 1
    assert worker.step() == 0
    clock.now += 1
    assert worker.step() == 1
    assert outbox.pending() == []
    assert sample(metrics, "apica_bridge_delivery_retries_total", reason="rate_limited") == 1


def test_a_429_holds_every_lane_on_that_key(outbox, sender, make_worker, clock):
    """Two routes on one integration key share its window and its throttle."""
    shared = routes_with_keys(x=KEY_A, y=KEY_A, b=KEY_B)
    enqueue(outbox, new_event(dedup="x1"), route="x")
    sender.script[KEY_A] = [RetryLater(None, "rate_limited", 429)]
    worker = make_worker(routes=shared, pacing=Pacing(limit=120, window=60))
    worker.step()
    enqueue(outbox, new_event(dedup="y1"), route="y")
    enqueue(outbox, new_event(dedup="b1"), route="b")
    clock.now += 1
    assert worker.step() == 1  # b: another key
    assert sent(sender) == ["x1", "b1"]
    clock.now += 59
    while worker.step():
        pass
    assert sent(sender) == ["x1", "b1", "x1", "y1"]


def test_backoff_grows_with_attempts_and_never_gives_up(outbox, sender, make_worker, clock):
    store(outbox, KEY_A, "a1")
    sender.script[KEY_A] = [RetryLater(None, "server_error", 500)] * 20
    worker = make_worker(backoff=Backoff(base=1.0, cap=60.0))
    for attempt in range(1, 21):
        assert worker.step() == 1
        (event,) = outbox.pending()
        assert event.attempts == attempt
        assert 0 <= event.next_attempt_at - clock.now <= min(60.0, 2 ** (attempt - 1))
        clock.now = event.next_attempt_at
    assert worker.step() == 1
    assert outbox.pending() == []


def test_failing_head_blocks_its_lane_only(outbox, sender, make_worker, clock):
    store(outbox, KEY_A, "a1", "a2")
    store(outbox, KEY_B, "b1", "b2")
    sender.script[KEY_A] = [RetryLater(None, "server_error", 503)] * 3
    worker = make_worker(backoff=Backoff(base=0.001, cap=0.001))
    for _ in range(3):
        worker.step()
        clock.now += 1
    assert sent(sender, KEY_B) == ["b1", "b2"]
    assert sent(sender, KEY_A) == ["a1", "a1", "a1"]
    while worker.step():
        clock.now += 1
    assert sent(sender, KEY_A) == ["a1", "a1", "a1", "a1", "a2"]


def test_dead_letter_then_lane_moves_on(outbox, sender, make_worker, metrics):
    store(outbox, KEY_A, "a1", "a2")
    sender.script[KEY_A] = [Dead("invalid_event", "Event object is invalid", 400)]
    worker = make_worker()
    while worker.step():
        pass
    (letter,) = outbox.dead_letters()
    assert (letter.dedup_key, letter.status, letter.message) == (
        "a1", 400, "Event object is invalid")
    assert sent(sender) == ["a1", "a2"]
    assert sample(metrics, "apica_bridge_events_dead_lettered_total",
                  reason="invalid_event") == 1


@pytest.mark.parametrize("reason", ["unauthorized", "forbidden", "not_found"])
def test_loud_dead_letter_logs_error_with_last4_only(outbox, sender, make_worker, caplog,
                                                      reason):
    store(outbox, KEY_A, "a1")
    sender.script[KEY_A] = [Dead(reason, "nope", 401, loud=True)]
    with caplog.at_level("WARNING", logger="bridge.worker"):
        make_worker().step()
    (record,) = [r for r in caplog.records if getattr(r, "event", "") == "dead_lettered"]
    assert record.levelname == "ERROR"
    assert (record.routing_key, record.reason) == ("...aaaa", reason)
    assert KEY_A not in caplog.text
    assert all(KEY_A not in str(value) for value in vars(record).values())


def test_invalid_event_is_never_sent(outbox, sender, make_worker):
    store(outbox, KEY_A, "a1")
    worker = make_worker(validate=lambda body: ["payload.summary is required"])
    worker.step()
    assert sender.sent == []
    (letter,) = outbox.dead_letters()
    assert (letter.reason, letter.status, letter.attempts) == (
        "invalid_event", None, 0)
    assert letter.message == "payload.summary is required"


def test_pacing_queues_a_burst_per_window(outbox, sender, make_worker, clock):
    store(outbox, KEY_A, *[f"a{i}" for i in range(5)])
    worker = make_worker(pacing=Pacing(limit=2, window=60))
    sent_at = []
    while outbox.pending():
        if worker.step():
            sent_at.append(clock.now)
        clock.now += 0.5
    assert sent(sender) == [f"a{i}" for i in range(5)]
    # Two per 60 s look-back window, each pair a minute after the one before.
    start = sent_at[0]
    assert [t - start for t in sent_at] == [0.0, 0.5, 60.0, 60.5, 120.0]
    assert outbox.dead_letters() == []


def test_sender_crash_keeps_the_event(outbox, sender, make_worker, clock, caplog):
    store(outbox, KEY_A, "a1")
    sender.script[KEY_A] = [RuntimeError("bug")]
    worker = make_worker()
    worker.step()
    (event,) = outbox.pending()
    assert event.next_attempt_at > clock.now
    clock.now = event.next_attempt_at
    worker.step()
    assert outbox.pending() == []


# -- keys chosen at send time (issue 9 item 2) -----------------------------------------

K_OLD = "O" * 28 + "0ld1"
K_NEW = "N" * 28 + "n3w2"


def key_routes(current: str, *previous: str) -> RoutesFile:
    return RoutesFile.model_validate({"version": 2, "stack": "t", "routes": {"web": {
        "service_name": "Web", "service_id": "PWEB", "integration_name": "Apica-Web",
        "routing_key": current,
        "previous_routing_keys": [{"routing_key": key} for key in previous]}}})


class SwitchableRoutes:
    def __init__(self, routes: RoutesFile) -> None:
        self.now = routes

    def __call__(self) -> RoutesFile:
        return self.now


def drain(worker: Worker, box: SqliteStore) -> None:
    """Rounds until nothing is pending (a round that only dead-letters sends nothing)."""
    for _ in range(100):
        if not box.pending():
            return
        worker.step()
    raise AssertionError(f"still pending: {box.pending()}")


def keys_sent(sender: ScriptedSender) -> list[tuple[str, str, str]]:
    return [(e["event_action"], e["dedup_key"], e["routing_key"][-4:]) for e in sender.sent]


def test_the_key_is_chosen_when_sent_from_the_routes_in_force(outbox, sender, clock,
                                                              make_worker, metrics):
    routes = SwitchableRoutes(key_routes(K_OLD))
    worker = make_worker(routes=routes)
    enqueue(outbox, new_event("trigger", "open"), route="web")
    worker.step()  # delivered through K_old: the incident was opened there
    for action, dedup in [("trigger", "queued"), ("resolve", "open"), ("resolve", "queued")]:
        enqueue(outbox, new_event(action, dedup), route="web")
    routes.now = key_routes(K_NEW, K_OLD)  # a new integration; the old one still listed
    drain(worker, outbox)
    assert keys_sent(sender) == [
        ("trigger", "open", "0ld1"),
        ("trigger", "queued", "n3w2"),  # a new incident: the current key at send time
        ("resolve", "open", "0ld1"),  # the integration that opened it
        ("resolve", "queued", "n3w2"),
    ]
    assert outbox.open_incidents() == []


def test_a_resolve_whose_integration_is_gone_is_a_loud_dead_letter(outbox, sender, clock,
                                                                    make_worker, metrics,
                                                                    caplog):
    routes = SwitchableRoutes(key_routes(K_OLD))
    worker = make_worker(routes=routes)
    enqueue(outbox, new_event("trigger", "open"), route="web")
    worker.step()
    enqueue(outbox, new_event("resolve", "open"), new_event("trigger", "next"), route="web")
    routes.now = key_routes(K_NEW)  # K_old no longer listed (its integration deleted)
    with caplog.at_level("INFO", logger="bridge.worker"):
        drain(worker, outbox)
    assert keys_sent(sender) == [("trigger", "open", "0ld1"), ("trigger", "next", "n3w2")]
    (letter,) = outbox.dead_letters()
    message = ("incident open was opened through ...0ld1, which the routes file no longer "
               "lists for route 'web'; resolve it in PagerDuty by hand")
    assert (letter.reason, letter.routing_key, letter.status, letter.attempts,
            letter.message) == ("integration_gone", K_OLD, None, 0, message)
    assert sample(metrics, "apica_bridge_events_dead_lettered_total",
                  reason="integration_gone") == 1
    (problem,) = outbox.route_problems()
    assert (problem.route, problem.reason, problem.count, problem.message) == (
        "web", "integration_gone", 1, message)
    gone = [r for r in caplog.records if getattr(r, "dedup_key", "") == "open"
            and getattr(r, "action", "") == "resolve"]
    assert [(r.levelname, r.event, r.routing_key) for r in gone] == [
        ("ERROR", "dead_lettered", "...0ld1")]  # never "delivered"
    assert K_OLD not in caplog.text and K_NEW not in caplog.text


def test_a_trigger_whose_incident_key_is_gone_still_pages_and_is_reported(
        outbox, sender, make_worker, caplog):
    routes = SwitchableRoutes(key_routes(K_OLD))
    worker = make_worker(routes=routes)
    enqueue(outbox, new_event("trigger", "open"), route="web")
    worker.step()
    enqueue(outbox, new_event("trigger", "open"), route="web")  # again, same incident
    routes.now = key_routes(K_NEW)
    with caplog.at_level("ERROR", logger="bridge.worker"):
        worker.step()
    assert keys_sent(sender)[-1] == ("trigger", "open", "n3w2")
    assert outbox.dead_letters() == []
    (problem,) = outbox.route_problems()
    assert problem.message == (
        "incident open was opened through ...0ld1, which the routes file no longer lists for "
        "route 'web'; resolve it in PagerDuty by hand (a new trigger for it went through "
        "...n3w2 and opened a new incident)")
    (record,) = [r for r in caplog.records if r.event == "incident_orphaned"]
    assert record.routing_key == "...0ld1"
    assert [(i.routing_key, i.open) for i in outbox.open_incidents()] == [(K_NEW, 1)]


def test_events_of_a_removed_route_are_dead_lettered(outbox, sender, make_worker, metrics):
    enqueue(outbox, new_event("trigger", "t1"), new_event("resolve", "t1"), route="gone")
    enqueue(outbox, new_event("trigger", "a1"), route="a")
    worker = make_worker()
    drain(worker, outbox)
    assert sent(sender) == ["a1"]
    assert [(d.reason, d.dedup_key, d.routing_key) for d in outbox.dead_letters()] == [
        ("route_removed", "t1", None), ("route_removed", "t1", None)]
    assert outbox.dead_letters()[0].message.startswith(
        "route 'gone' is not in the routes file any more; the trigger of t1 was not sent")
    assert [(p.route, p.reason, p.count) for p in outbox.route_problems()] == [
        ("gone", "route_removed", 2)]
    assert sample(metrics, "apica_bridge_events_dead_lettered_total",
                  reason="route_removed") == 2


@pytest.mark.parametrize("outcome", [
    Dead("unauthorized", "nope", 401, loud=True),
    Dead("routing_key_refused", "Event object is invalid: Invalid routing key", 400,
         loud=True),
])
def test_a_refused_key_is_on_the_routes_health(outbox, sender, make_worker, outcome):
    store(outbox, KEY_A, "a1")
    sender.script[KEY_A] = [outcome]
    make_worker().step()
    assert [(p.route, p.reason, p.count, p.message) for p in outbox.route_problems()] == [
        ("a", outcome.reason, 1, outcome.message)]


def test_a_plain_400_is_not_a_route_problem(outbox, sender, make_worker):
    store(outbox, KEY_A, "a1")
    sender.script[KEY_A] = [Dead("invalid_event", "'payload.summary' is too long", 400)]
    make_worker().step()
    assert outbox.route_problems() == []


# -- leases (issue 9 item 15) ------------------------------------------------------------


def test_a_head_leased_by_a_previous_process_waits_out_its_lease(outbox, sender, make_worker,
                                                                 clock):
    store(outbox, KEY_A, "a1", "a2")
    (head,) = [h.id for h in outbox.lane_heads()]
    outbox.claim([Claim(head, KEY_A)], owner="crashed", lease_seconds=15, pace=FAST)
    worker = make_worker(owner="restarted")
    _, wake_at = worker._dispatch()
    assert (sender.sent, wake_at) == ([], clock.now + 1.0)  # polls, then the lease ends
    clock.now += 14.9
    assert worker.step() == 0
    clock.now += 0.1
    assert worker.step() == 1
    drain(worker, outbox)
    assert sent(sender) == ["a1", "a2"]


def test_a_lease_lasts_the_senders_longest_request_and_a_margin(outbox, sender, make_worker,
                                                                clock):
    sender.longest_request = 13.05
    worker = make_worker()
    assert worker.lease_seconds == 15.05
    sender.gate[KEY_A] = threading.Event()
    store(outbox, KEY_A, "a1")
    thread = threading.Thread(target=worker.step)
    thread.start()
    _wait_until(lambda: outbox.pending()[0].lease_owner == worker.owner)
    assert outbox.pending()[0].lease_until == clock.now + 15.05
    sender.gate[KEY_A].set()
    thread.join()


def test_a_clean_stop_releases_its_leases(stores, sender, metrics):
    with stores.open() as box:
        worker = Worker(box, sender, lambda: ROUTES, metrics=metrics,
                        validate=lambda body: [], pacing=FAST)
        store(box, KEY_A, "a1")
        (head,) = [h.id for h in box.lane_heads()]
        box.claim([Claim(head, KEY_A)], owner=worker.owner, lease_seconds=15, pace=FAST)
        assert worker.stop(timeout=1)
        assert box.pending()[0].lease_owner is None


def _wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


def test_background_thread_delivers_and_stops(stores, sender, metrics):
    with stores.open() as box:
        worker = Worker(box, sender, lambda: ROUTES, metrics=metrics,
                        validate=lambda body: [], pacing=FAST)
        worker.start()
        store(box, KEY_A, "a1", "a2")
        store(box, KEY_B, "b1")
        _wait_until(lambda: not box.pending())
        assert worker.stop(timeout=5)
    assert sent(sender, KEY_A) == ["a1", "a2"]


def test_slow_key_does_not_block_another(stores, sender, metrics):
    sender.gate[KEY_A] = threading.Event()
    with stores.open() as box:
        worker = Worker(box, sender, lambda: ROUTES, metrics=metrics,
                        validate=lambda body: [], pacing=FAST)
        worker.start()
        store(box, KEY_A, "a1")
        store(box, KEY_B, "b1", "b2")
        _wait_until(lambda: sent(sender, KEY_B) == ["b1", "b2"])
        assert sent(sender, KEY_A) == []
        sender.gate[KEY_A].set()
        _wait_until(lambda: not box.pending())
        assert worker.stop(timeout=5)


# -- end to end against the PagerDuty sandbox on loopback ----------------------------

BASE = "https://asm.example.com"


class LiveRoutes:
    """The routes in force for a live worker; tests add routes as they make them."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}

    def __call__(self) -> RoutesFile:
        return RoutesFile(version=1, stack="test", routes=dict(self.routes))


@pytest.fixture
def live_routes(pd_route) -> LiveRoutes:
    routes = LiveRoutes()
    routes.routes["web"] = pd_route[1]
    return routes


@pytest.fixture
def live(stores, pd, metrics, live_routes):
    """Outbox (each backend) + worker delivering to the sandbox with real time and short
    backoffs."""
    box = stores.open()
    sender = Sender(pd.events_url, timeout=2.0)
    worker = Worker(box, sender, live_routes, metrics=metrics,
                    backoff=Backoff(base=0.02, cap=0.1), pacing=Pacing(limit=60_000),
                    idle_poll=0.05)
    yield box, worker
    worker.stop(timeout=5)
    sender.close()
    box.close()


def accept(box, route, severity, action="trigger", check_id=42, name="web"):
    return accept_alert(box, name, route, plain_alert(severity, action, check_id=check_id),
                        asm_base_url=BASE)


def posted(pd, status: int | None = None) -> list[tuple[str, str]]:
    return [(e["body"]["event_action"], e["body"]["dedup_key"]) for e in pd.state.events()
            if status is None or e["status"] == status]


def test_pagerduty_down_then_back_loses_nothing_and_keeps_order(pd, pd_route, live):
    service, route = pd_route
    box, worker = live
    # Down for its next three answers, however long storing the alerts takes (a window
    # of seconds could end before the first send on a loaded machine: nothing failed).
    pd.faults.fail(status=500, count=3)
    for severity, action, check in [("W", "trigger", 1), ("W", "trigger", 2),
                                    ("F", "trigger", 1), ("I", "resolve", 2),
                                    ("I", "resolve", 1)]:
        accept(box, route, severity, action, check)
    expected = [(e.action, e.dedup_key) for e in box.pending()]
    worker.start()
    _wait_until(lambda: not box.pending())
    assert posted(pd, 202) == expected
    assert len(posted(pd, 500)) == 3
    assert box.dead_letters() == []
    incidents = pd.state.incidents(service_id=service["id"])
    assert len(incidents) == 3
    assert {i["status"] for i in incidents} == {"resolved"}


@pytest.mark.parametrize("retry_after", [1, None])
def test_429_is_retried_with_or_without_retry_after(pd, pd_route, live, metrics, retry_after):
    """The sandbox's 429 from `faults.rate_limit` carries no Retry-After unless asked,
    as PagerDuty documents none: the key's own window says when to try again."""
    _, route = pd_route
    box, worker = live
    worker.pacing = Pacing(limit=120, window=0.3)
    pd.faults.rate_limit(count=1, retry_after=retry_after)
    accept(box, route, "E")
    worker.start()
    _wait_until(lambda: not box.pending())
    events = pd.state.events()
    assert [e["status"] for e in events] == [429, 202]
    assert sample(metrics, "apica_bridge_delivery_retries_total", reason="rate_limited") == 1
    if retry_after is not None:
        first, last = (datetime.fromisoformat(e["received_at"]) for e in events)
        # Whole-second stamps: a wait of >= 1 s always moves to a later second. (The
        # exact waits are pinned with a fake clock in test_a_429_waits_*.)
        assert last > first


def test_400_goes_to_dead_letters_with_pagerduty_message(pd, pd_route, live, metrics):
    _, route = pd_route
    box, worker = live
    pd.faults.fail(status=400, count=1, body={
        "status": "invalid event", "message": "Event object is invalid",
        "errors": ["'payload.summary' is too long"]})
    accept(box, route, "W", check_id=1)
    accept(box, route, "W", check_id=2)
    worker.start()
    _wait_until(lambda: not box.pending())
    (letter,) = box.dead_letters()
    assert (letter.status, letter.reason) == (400, "invalid_event")
    assert letter.message == "Event object is invalid: 'payload.summary' is too long"
    assert letter.check_key == "id:1"
    assert posted(pd, 202) == [("trigger", "apica-asm:web:id:2:low")]


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_errors_go_to_dead_letters(pd, pd_route, live, status):
    _, route = pd_route
    box, worker = live
    pd.faults.fail(status=status, count=1, body={"status": "error", "message": "no"})
    accept(box, route, "F")
    worker.start()
    _wait_until(lambda: not box.pending())
    (letter,) = box.dead_letters()
    assert letter.status == status


def test_throttled_key_does_not_block_another(pd, live, live_routes):
    box, worker = live
    pd.limiter.events_per_minute = 2
    routes = []
    for name in ("a", "b"):
        service = pd.state.create_service(name=f"Svc {name}", urgency="severity_based")
        key = pd.state.add_integration(service["id"], name=f"Apica-{name}")["integration_key"]
        routes.append(Route(service_name=service["name"], service_id=service["id"],
                            integration_name=f"Apica-{name}", routing_key=key))
        live_routes.routes[name] = routes[-1]
    for check in range(4):
        accept(box, routes[0], "W", check_id=check, name="a")
    for check in range(2):
        accept(box, routes[1], "W", check_id=100 + check, name="b")
    worker.start()
    key_b = routes[1].routing_key.get_secret_value()

    # B is fully delivered while A sits behind PagerDuty's 429 (its window: about 60 s).
    _wait_until(lambda: [e.route for e in box.pending()] == ["a", "a"]
                and any(e["status"] == 429 for e in pd.state.events()))
    delivered_b = [e for e in pd.state.events()
                   if e["status"] == 202 and e["body"]["routing_key"] == key_b]
    assert len(delivered_b) == 2


def test_w_e_i_gives_low_incident_resolved_and_high_incident(pd, pd_route, live):
    service, route = pd_route
    box, worker = live
    worker.start()
    accept(box, route, "W")
    _wait_until(lambda: not box.pending())
    accept(box, route, "E")
    _wait_until(lambda: not box.pending())
    low, high = pd.state.incidents(service_id=service["id"])
    assert (low["urgency"], low["status"]) == ("low", "resolved")
    assert (high["urgency"], high["status"]) == ("high", "triggered")
    accept(box, route, "I", "resolve")
    _wait_until(lambda: not box.pending())
    low, high = pd.state.incidents(service_id=service["id"])
    assert high["status"] == "resolved"
    assert posted(pd, 202) == [
        ("trigger", "apica-asm:web:id:42:low"),
        ("trigger", "apica-asm:web:id:42:high"),
        ("resolve", "apica-asm:web:id:42:low"),
        ("resolve", "apica-asm:web:id:42:high"),
    ]


def test_fatal_after_pagerduty_closed_the_high_incident_pages_high(pd, pd_route, live):
    """F, then PagerDuty resolves it behind the bridge's back (auto-resolve, a person),
    then W, then F: the second F must open a high-urgency incident, not merge into a
    low-urgency one that W opened under the high key."""
    import httpx

    service, route = pd_route
    box, worker = live
    worker.start()
    accept(box, route, "F")
    _wait_until(lambda: not box.pending())
    high_key = "apica-asm:web:id:42:high"
    answer = httpx.post(pd.events_url, json={
        "routing_key": route.routing_key.get_secret_value(), "event_action": "resolve",
        "dedup_key": high_key}, timeout=5)
    assert answer.status_code == 202
    accept(box, route, "W")
    _wait_until(lambda: not box.pending())
    again = dataclasses.replace(plain_alert("F"), message="down again")  # not a duplicate
    accept_alert(box, "web", route, again, asm_base_url=BASE)
    _wait_until(lambda: not box.pending())
    incidents = [(i["incident_key"].rsplit(":", 1)[1], i["urgency"], i["status"])
                 for i in pd.state.incidents(service_id=service["id"])]
    assert incidents == [
        ("high", "high", "resolved"),   # the first F, closed behind the bridge's back
        ("low", "low", "resolved"),     # W, closed once F paged again
        ("high", "high", "triggered"),  # the second F: a new high-urgency incident
    ]
    assert box.open_keys("web", "id:42") == {"high"}


def test_pacing_queues_a_burst_instead_of_429(stores, pd, pd_route, live_routes, metrics):
    _, route = pd_route
    pd.limiter.events_per_minute = 10
    with stores.open() as box:
        worker = Worker(box, Sender(pd.events_url), live_routes, metrics=metrics,
                        idle_poll=0.05, pacing=Pacing(limit=10))
        for check in range(12):
            accept(box, route, "W", check_id=check)
        worker.start()
        _wait_until(lambda: len(box.pending()) == 2)
        pending = box.pending()
        worker.stop(timeout=5)
    assert [e["status"] for e in pd.state.events()] == [202] * 10
    assert [e.check_key for e in pending] == ["id:10", "id:11"]


@pytest.mark.parametrize("late", [
    ("F", "2026-11-26T10:00:00"),  # a trigger stamped before the resolve, posted after it
    ("F", "2026-11-26T09:55:00"),  # a byte-identical replay of the first F
])
def test_a_late_or_replayed_trigger_leaves_the_incident_resolved(pd, pd_route, live, late):
    service, route = pd_route
    box, worker = live
    worker.start()
    for severity, stamp in [("F", "2026-11-26T09:55:00"), ("I", "2026-11-26T10:05:00"), late]:
        action = "resolve" if severity == "I" else "trigger"
        result = accept_alert(box, "web", route,
                              plain_alert(severity, action, timestamp=stamp, message="m"),
                              asm_base_url=BASE)
        _wait_until(lambda: not box.pending())
    assert (result.stale, result.event_count) == (True, 0)
    assert posted(pd, 202) == [("trigger", "apica-asm:web:id:42:high"),
                               ("resolve", "apica-asm:web:id:42:high")]
    (incident,) = pd.state.incidents(service_id=service["id"])
    assert incident["status"] == "resolved"


def test_duplicates_within_window_are_delivered_once(pd, pd_route, live):
    _, route = pd_route
    box, worker = live
    assert not accept(box, route, "F").duplicate
    assert accept(box, route, "F").duplicate
    worker.start()
    _wait_until(lambda: not box.pending())
    assert posted(pd) == [("trigger", "apica-asm:web:id:42:high")]


def test_stop_with_sends_queued_frees_every_lane(outbox, sender, metrics, clock):
    """More due lanes than send threads: stop() cancels the queued sends, nothing leaks."""
    gate = threading.Event()
    keys = [chr(ord("c") + i) * 32 for i in range(4)]
    for key in keys:
        sender.gate[key] = gate
        store(outbox, key, f"{key[0]}1")
    worker = Worker(outbox, sender, lambda: ROUTES, metrics=metrics, clock=clock,
                    validate=lambda body: [], pacing=FAST, max_in_flight=1)
    worker._dispatch()  # one send running (held by the gate), three queued
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(worker.stop(timeout=5)))
    stopper.start()
    _wait_until(lambda: len(worker._busy) == 1)  # the queued three were cancelled and freed
    gate.set()
    stopper.join()
    assert stopped == [True]
    assert len(sender.sent) == 1
    # What was not sent is still pending, to be sent after a restart.
    assert len(outbox.pending()) == 3


OUTCOMES = st.sampled_from([
    Delivered(202),
    RetryLater(None, "server_error", 503),
    RetryLater(2.0, "rate_limited", 429),
    RetryLater(None, "timeout"),
    Dead("invalid_event", "bad", 400),
])


@settings(max_examples=25, deadline=None)
@given(
    lanes=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=3),
    answers=st.lists(OUTCOMES, max_size=40),
)
def test_any_answers_keep_order_and_lose_nothing(lanes, answers):
    """Whatever PagerDuty answers, each event ends delivered or dead, lanes in order."""
    clock = FakeClock()
    sender = ScriptedSender()
    keys = [chr(ord("a") + i) * 32 for i in range(len(lanes))]
    script = iter(answers)

    def send(event: dict):
        sender.sent.append(event)
        return next(script, Delivered(202))

    sender.send = send  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp, SqliteStore(outbox_path(tmp), clock=clock) as box:
        expected = {}
        for key, count in zip(keys, lanes, strict=True):
            expected[key] = [f"{key[0]}{i}" for i in range(count)]
            store(box, key, *expected[key])
        worker = Worker(box, sender, lambda: ROUTES, clock=clock, validate=lambda body: [],
                        metrics=BridgeMetrics(CollectorRegistry()), pacing=FAST,
                        backoff=Backoff(base=1.0, cap=4.0), rng=random.Random(1))
        # A 429 may hold its key for a whole pacing window (and the limit comes back one
        # a window), so the step budget (one simulated second each) grows with the 429s.
        budget = 500 + int(WINDOW + 5) * (len(answers) + sum(lanes))
        for _ in range(budget):
            if not box.pending():
                break
            worker.step()
            clock.now += 1.0
        worker.stop(timeout=5)
        assert box.pending() == []
        dead = {d.dedup_key for d in box.dead_letters()}
    for key in keys:
        attempts = [e["dedup_key"] for e in sender.sent if e["routing_key"] == key]
        # Each event is tried until it ends, and never after a later one was tried.
        firsts = [d for i, d in enumerate(attempts) if d not in attempts[:i]]
        assert firsts == expected[key]
        assert attempts == sorted(attempts, key=expected[key].index)
    assert dead <= {d for ds in expected.values() for d in ds}


def test_second_worker_on_the_same_outbox_stands_by_then_takes_over(tmp_path, metrics, caplog):
    """Two bridges on one data dir: one delivers, the other waits for its lock."""
    path = outbox_path(tmp_path / "shared")
    first_sender, second_sender = ScriptedSender(), ScriptedSender()
    with SqliteStore(path) as box1, SqliteStore(path) as box2:
        options = dict(metrics=metrics, validate=lambda body: [], idle_poll=0.02,
                       pacing=FAST)
        first = Worker(box1, first_sender, lambda: ROUTES, **options)
        second = Worker(box2, second_sender, lambda: ROUTES, **options)
        first.start()
        _wait_until(lambda: first.delivery_lock.held)
        with caplog.at_level("WARNING", logger="bridge.worker"):
            second.start()
            _wait_until(lambda: any(getattr(r, "event", "") == "delivery_standby"
                                    for r in caplog.records))
        store(box2, KEY_A, "a1")  # accepted by the standby process, delivered by the first
        _wait_until(lambda: not box1.pending())
        assert first.stop(timeout=5)
        assert not first.delivery_lock.held
        store(box2, KEY_A, "a2")
        _wait_until(lambda: not box2.pending())
        assert second.stop(timeout=5)
    assert sent(first_sender) == ["a1"]
    assert sent(second_sender) == ["a2"]


def test_stop_keeps_the_delivery_lock_while_a_send_is_in_flight(tmp_path, sender, metrics):
    """A standby must not take over a lane whose head is still being sent: it could send
    the next event (a resolve) before the trigger in flight reaches PagerDuty."""
    from bridge.store.file_lock import FileLock

    sender.gate[KEY_A] = threading.Event()
    with SqliteStore(outbox_path(tmp_path / "inflight")) as box:
        worker = Worker(box, sender, lambda: ROUTES, metrics=metrics,
                        validate=lambda body: [], pacing=FAST, idle_poll=0.02)
        worker.start()
        store(box, KEY_A, "a1", "a2")
        _wait_until(lambda: worker._busy)  # a1 is being sent
        assert worker.stop(timeout=0.1) is False
        standby = FileLock(worker.delivery_lock.path)
        assert worker.delivery_lock.held
        assert not standby.try_acquire()
        sender.gate[KEY_A].set()  # the send finishes: now the lock goes
        _wait_until(lambda: not worker.delivery_lock.held)
        assert standby.try_acquire()
        standby.release()
        assert sent(sender, KEY_A) == ["a1"]


class LaneWatch:
    """A sender shared by several workers: how many sends of each lane are in flight at
    once (at most one, across the workers), and what each worker sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight: dict[str, int] = defaultdict(int)
        self.most = 0
        self.sent: list[tuple[str, str]] = []
        self.longest_request = 1.0

    def sender(self, name: str):
        watch = self

        class Named:
            longest_request = 1.0

            def send(self, event: dict):
                lane = event["dedup_key"].split("-")[0]
                with watch.lock:
                    watch.in_flight[lane] += 1
                    watch.most = max(watch.most, watch.in_flight[lane])
                time.sleep(0.002)  # long enough for the other worker to try the lane
                with watch.lock:
                    watch.in_flight[lane] -= 1
                    watch.sent.append((name, event["dedup_key"]))
                return Delivered(202)

        return Named()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_bridges_on_one_database_both_deliver_one_event_per_lane_at_a_time(
        stores, metrics):
    """Several replicas (each its own store, pool and worker) on one PostgreSQL outbox:
    every event once, each lane in order, never two of a lane in flight."""
    watch = LaneWatch()
    lanes = "abcdefgh"
    with stores.open() as box1, stores.open() as box2:
        workers = [Worker(box, watch.sender(name), lambda: ROUTES, metrics=metrics,
                          validate=lambda body: [], pacing=FAST, idle_poll=0.05)
                   for name, box in (("one", box1), ("two", box2))]
        for worker in workers:
            worker.start()
        for i in range(15):
            for lane in lanes:
                enqueue((box1, box2)[i % 2], new_event(dedup=f"{lane}-{i:02d}"), route=lane,
                        check=f"id:{lane}")
        _wait_until(lambda: not box1.pending(), timeout=30)
        for worker in workers:
            assert worker.stop(timeout=5)
    assert watch.most == 1
    for lane in lanes:
        assert [d for _, d in watch.sent if d.startswith(lane)] == [
            f"{lane}-{i:02d}" for i in range(15)]
    assert {name for name, _ in watch.sent} == {"one", "two"}
