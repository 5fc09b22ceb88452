"""The worker: lanes, retries, dead letters, rate limiting.

First with a scripted sender and a fake clock (deterministic, no sleeping), then
end to end against the PagerDuty sandbox on loopback.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict

import pytest
from prometheus_client import CollectorRegistry

from bridge.metrics import BridgeMetrics
from bridge.outbox import NewEvent, Outbox, outbox_path
from bridge.ratelimit import RateLimiter
from bridge.retry import Backoff
from bridge.sender import Dead, Delivered, RetryLater
from bridge.worker import Worker

KEY_A = "a" * 32
KEY_B = "b" * 32


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class ScriptedSender:
    """Answers per routing key from a script (default: delivered); records what was sent."""

    def __init__(self) -> None:
        self.script: dict[str, list] = defaultdict(list)
        self.sent: list[dict] = []
        self.gate: dict[str, threading.Event] = {}

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
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def outbox(tmp_path, clock):
    with Outbox(outbox_path(tmp_path), clock=clock) as box:
        yield box


@pytest.fixture
def sender() -> ScriptedSender:
    return ScriptedSender()


@pytest.fixture
def metrics() -> BridgeMetrics:
    return BridgeMetrics(CollectorRegistry())


@pytest.fixture
def make_worker(outbox, sender, clock, metrics):
    workers = []

    def make(**kwargs) -> Worker:
        options = dict(rate_limiter=RateLimiter(per_minute=6000, burst=100, clock=clock),
                       metrics=metrics, clock=clock, validate=lambda body: [],
                       backoff=Backoff(base=1.0, cap=60.0), rng=random.Random(7))
        options.update(kwargs)
        worker = Worker(outbox, sender, **options)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop(timeout=5)


def store(box: Outbox, key: str, *dedups: str, action: str = "trigger") -> None:
    events = [NewEvent(key, action, d, {"routing_key": key, "event_action": action,
                                        "dedup_key": d}) for d in dedups]
    box.enqueue(route="web", check_key="id:1", fingerprint=None,
                planner=lambda _open: (events, frozenset()))


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


def test_retry_after_is_honoured(outbox, sender, make_worker, clock, metrics):
    store(outbox, KEY_A, "a1")
    sender.script[KEY_A] = [RetryLater(30.0, "rate_limited", 429)]
    worker = make_worker()
    assert worker.step() == 1
    (event,) = outbox.pending()
    assert (event.attempts, event.next_attempt_at) == (1, clock.now + 30)
    assert event.last_error == "429 rate_limited"
    clock.now += 29
    assert worker.step() == 0
    clock.now += 1
    assert worker.step() == 1
    assert outbox.pending() == []
    assert sample(metrics, "apica_bridge_delivery_retries_total", reason="rate_limited") == 1


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
    (record,) = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert record.levelname == "ERROR"
    assert "...aaaa" in record.getMessage()
    assert KEY_A not in caplog.text


def test_invalid_event_is_never_sent(outbox, sender, make_worker):
    store(outbox, KEY_A, "a1")
    worker = make_worker(validate=lambda body: ["payload.summary is required"])
    worker.step()
    assert sender.sent == []
    (letter,) = outbox.dead_letters()
    assert (letter.reason, letter.status, letter.attempts) == (
        "invalid_event", None, 0)
    assert letter.message == "payload.summary is required"


def test_rate_limiter_queues_a_burst(outbox, sender, make_worker, clock):
    store(outbox, KEY_A, *[f"a{i}" for i in range(5)])
    worker = make_worker(rate_limiter=RateLimiter(per_minute=60, burst=2, clock=clock))
    steps = 0
    while outbox.pending():
        worker.step()
        clock.now += 0.5
        steps += 1
    assert sent(sender) == [f"a{i}" for i in range(5)]
    # 2 at once, then one per second: 3 more need 3 simulated seconds.
    assert steps >= 7
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


def _wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


def test_background_thread_delivers_and_stops(tmp_path, sender, metrics):
    with Outbox(outbox_path(tmp_path / "bg")) as box:
        worker = Worker(box, sender, metrics=metrics, validate=lambda body: [],
                        rate_limiter=RateLimiter(per_minute=6000, burst=100))
        worker.start()
        store(box, KEY_A, "a1", "a2")
        store(box, KEY_B, "b1")
        _wait_until(lambda: not box.pending())
        assert worker.stop(timeout=5)
    assert sent(sender, KEY_A) == ["a1", "a2"]


def test_slow_key_does_not_block_another(tmp_path, sender, metrics):
    sender.gate[KEY_A] = threading.Event()
    with Outbox(outbox_path(tmp_path / "slow")) as box:
        worker = Worker(box, sender, metrics=metrics, validate=lambda body: [],
                        rate_limiter=RateLimiter(per_minute=6000, burst=100))
        worker.start()
        store(box, KEY_A, "a1")
        store(box, KEY_B, "b1", "b2")
        _wait_until(lambda: sent(sender, KEY_B) == ["b1", "b2"])
        assert sent(sender, KEY_A) == []
        sender.gate[KEY_A].set()
        _wait_until(lambda: not box.pending())
        assert worker.stop(timeout=5)
