"""The SQLite outbox: storage, order, duplicates, check state, dead letters."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from bridge.store.sqlite import SqliteStore, outbox_path
from tests.bridge.conftest import enqueue, new_event

KEY_A = "a" * 32
KEY_B = "b" * 32


def test_file_is_private(outbox, tmp_path):
    enqueue(outbox, new_event(KEY_A))
    assert stat.S_IMODE(outbox.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(outbox.path.parent.stat().st_mode) == 0o700
    for side in outbox.path.parent.glob("*-wal"):
        assert stat.S_IMODE(side.stat().st_mode) == 0o600


def test_journal_is_wal(outbox):
    db = sqlite3.connect(outbox.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_events_keep_order_and_body(outbox, clock):
    assert enqueue(outbox, new_event(KEY_A, dedup="d1"),
                   new_event(KEY_A, action="resolve", dedup="d2")) == 2
    pending = outbox.pending()
    assert [(e.action, e.dedup_key) for e in pending] == [("trigger", "d1"), ("resolve", "d2")]
    assert pending[0].body["dedup_key"] == "d1"
    assert pending[0].created_at == clock.now
    assert pending[0].attempts == 0


def test_lane_heads_one_per_routing_key(outbox):
    enqueue(outbox, new_event(KEY_A, dedup="a1"), new_event(KEY_A, dedup="a2"))
    enqueue(outbox, new_event(KEY_B, dedup="b1"))
    def heads():
        return [(h.routing_key, outbox.get(h.id).dedup_key) for h in outbox.lane_heads()]

    assert heads() == [(KEY_A, "a1"), (KEY_B, "b1")]
    outbox.mark_delivered(outbox.lane_heads()[0].id)
    assert heads() == [(KEY_A, "a2"), (KEY_B, "b1")]


def test_duplicate_within_window_is_stored_once(outbox, clock):
    assert enqueue(outbox, new_event(KEY_A), fingerprint="fp") == 1
    clock.now += 59
    assert enqueue(outbox, new_event(KEY_A), fingerprint="fp") is None
    assert len(outbox.pending()) == 1
    clock.now += 2
    assert enqueue(outbox, new_event(KEY_A), fingerprint="fp") == 1
    assert len(outbox.pending()) == 2


def test_a_duplicate_repeats_the_checks_latest_alert_only(outbox, clock):
    """F, I, F within the window: the third is a re-trigger, not a copy of the first."""
    assert enqueue(outbox, new_event(KEY_A), fingerprint="F") == 1
    clock.now += 1
    assert enqueue(outbox, new_event(KEY_A, action="resolve"), fingerprint="I") == 1
    clock.now += 1
    assert enqueue(outbox, new_event(KEY_A), fingerprint="F") == 1
    clock.now += 1
    assert enqueue(outbox, new_event(KEY_A), fingerprint="F") is None  # a copy of the latest
    # Another check's latest alert is its own.
    assert enqueue(outbox, new_event(KEY_A), check="id:2", fingerprint="F") == 1
    # An alert stored without a fingerprint is the latest too.
    assert enqueue(outbox, new_event(KEY_A, action="resolve")) == 1
    assert enqueue(outbox, new_event(KEY_A), fingerprint="F") == 1
    assert len(outbox.pending()) == 6


def test_check_state_follows_events_for(outbox):
    seen = []

    def events_for(open_now):
        seen.append(open_now)
        return [new_event(KEY_A)], frozenset({"low"})

    outbox.enqueue(route="web", check_key="id:1", fingerprint=None, events_for=events_for)
    assert outbox.open_keys("web", "id:1") == {"low"}
    enqueue(outbox, new_event(KEY_A), open_after={"high", "low"})
    assert outbox.open_keys("web", "id:1") == {"high", "low"}
    enqueue(outbox, new_event(KEY_A, action="resolve"))
    assert outbox.open_keys("web", "id:1") == frozenset()
    assert seen == [frozenset()]
    assert outbox.open_keys("other", "id:1") == frozenset()


def test_events_for_failure_stores_nothing(outbox):
    def events_for(_open):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        outbox.enqueue(route="web", check_key="id:1", fingerprint="fp", events_for=events_for)
    assert outbox.pending() == []
    # The fingerprint was rolled back too: the retry is not mistaken for a duplicate.
    assert enqueue(outbox, new_event(KEY_A), fingerprint="fp") == 1


def test_reschedule_counts_attempts(outbox, clock):
    enqueue(outbox, new_event(KEY_A))
    head = outbox.lane_heads()[0]
    outbox.reschedule(head.id, next_attempt_at=clock.now + 5, error="500 boom")
    again = outbox.get(head.id)
    assert (again.attempts, again.next_attempt_at, again.last_error) == (
        1, clock.now + 5, "500 boom")


def test_dead_letter_and_redrive(outbox, clock):
    enqueue(outbox, new_event(KEY_A, dedup="d1"), new_event(KEY_A, dedup="d2"))
    first = outbox.get(outbox.lane_heads()[0].id)
    dead_id = outbox.dead_letter(first.id, status=400, reason="invalid_event",
                                 message="Event object is invalid")
    assert [e.dedup_key for e in outbox.pending()] == ["d2"]
    (letter,) = outbox.dead_letters()
    assert (letter.id, letter.event_id, letter.status, letter.message, letter.attempts) == (
        dead_id, first.id, 400, "Event object is invalid", 1)
    assert letter.body["dedup_key"] == "d1"
    assert outbox.dead_letter(first.id, status=400, reason="x", message="y") is None

    clock.now += 10
    assert outbox.redrive([dead_id, 999]) == [dead_id]
    assert outbox.dead_letters() == []
    redriven = outbox.pending()[-1]
    assert (redriven.dedup_key, redriven.attempts, redriven.created_at) == ("d1", 0, clock.now)


def test_redrive_all(outbox):
    enqueue(outbox, new_event(KEY_A, dedup="d1"), new_event(KEY_A, dedup="d2"))
    for event in outbox.pending():
        outbox.dead_letter(event.id, status=None, reason="invalid_event", message="m",
                           attempted=False)
    assert len(outbox.redrive()) == 2
    assert [e.dedup_key for e in outbox.pending()] == ["d1", "d2"]


def test_stats_and_backlog(outbox, clock):
    assert outbox.stats().pending == 0
    assert outbox.stats().oldest_pending_age_seconds == 0.0
    enqueue(outbox, new_event(KEY_A, dedup="d1"), route="web")
    clock.now += 30
    enqueue(outbox, new_event(KEY_B, dedup="d2"), route="api")
    outbox.reschedule(outbox.pending()[1].id, next_attempt_at=clock.now, error="503")
    clock.now += 10
    stats = outbox.stats()
    assert (stats.pending, stats.oldest_pending_age_seconds, stats.dead_letters) == (2, 40.0, 0)
    backlog = {b.route: b for b in outbox.backlog()}
    assert backlog["api"].max_attempts == 1
    assert backlog["api"].last_error == "503"
    assert backlog["web"].last_error is None


def test_listeners_hear_new_events(outbox):
    calls = []
    outbox.subscribe(lambda: calls.append(1))
    enqueue(outbox, new_event(KEY_A))
    assert calls == [1]


def test_survives_reopen(tmp_path, clock):
    path = outbox_path(tmp_path)
    with SqliteStore(path, clock=clock) as box:
        enqueue(box, new_event(KEY_A, dedup="d1"), open_after={"low"})
    with SqliteStore(path, clock=clock) as box:
        assert [e.dedup_key for e in box.pending()] == ["d1"]
        assert box.open_keys("web", "id:1") == {"low"}
        assert box.writable()


def test_concurrent_writers_batch_and_a_failing_job_fails_alone(outbox):
    """Many threads at once (group commit): every good alert stored, each bad one refused."""
    from concurrent.futures import ThreadPoolExecutor

    def accept(i: int) -> str:
        def events_for(_open):
            if i % 7 == 0:
                raise ValueError(f"bad {i}")
            return [new_event(KEY_A, dedup=f"d{i}")], frozenset()

        try:
            outbox.enqueue(route="web", check_key=f"id:{i}", fingerprint=f"fp{i}",
                           events_for=events_for)
        except ValueError:
            return "refused"
        return "stored"

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(accept, range(200)))
    bad = {i for i in range(200) if i % 7 == 0}
    assert outcomes == ["refused" if i in bad else "stored" for i in range(200)]
    stored = {e.dedup_key for e in outbox.pending()}
    assert stored == {f"d{i}" for i in range(200) if i not in bad}


def test_close_is_final(tmp_path):
    box = SqliteStore(outbox_path(tmp_path))
    box.close()
    box.close()  # idempotent
    with pytest.raises(sqlite3.ProgrammingError):
        box.stats()
    with pytest.raises(sqlite3.ProgrammingError):
        box.mark_delivered(1)


def test_unclaimed_webhooks_are_kept_cut_and_pruned(outbox, clock, monkeypatch):
    import bridge.store.sqlite as outbox_module

    monkeypatch.setattr(outbox_module, "UNCLAIMED_KEEP", 3)
    for i in range(5):
        clock.now += 1
        outbox.record_unclaimed(check_id=i, check_guid=None, check_name=f"Check {i}",
                                severity="F", action="trigger", body=b"x" * (5000 + i))
    kept = outbox.unclaimed()
    assert [u.check_id for u in kept] == [2, 3, 4]  # the newest three
    assert (len(kept[0].body), kept[0].body_bytes) == (4096, 5002)
    assert kept[-1].received_at == clock.now
