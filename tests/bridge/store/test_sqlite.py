"""The SQLite outbox's own parts: a private file in WAL mode, reopening, closing, a full
disk and readiness. The promises every backend keeps are in test_base.py."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import stat

import pytest

from bridge.store.records import Enqueued
from bridge.store.sqlite import SqliteStore, outbox_path
from tests.bridge.conftest import enqueue, incoming, new_event
from tests.bridge.store.test_base import KEY_A, T0, claim, head_ids


@pytest.fixture
def backend() -> str:
    return "sqlite"


def test_file_is_private(outbox, tmp_path):
    enqueue(outbox, new_event())
    assert stat.S_IMODE(outbox.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(outbox.path.parent.stat().st_mode) == 0o700
    for side in outbox.path.parent.glob("*-wal"):
        assert stat.S_IMODE(side.stat().st_mode) == 0o600


def test_journal_is_wal(outbox):
    db = sqlite3.connect(outbox.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_events_keep_order_and_body_but_never_a_routing_key(outbox, clock):
    body = {"routing_key": KEY_A, "event_action": "trigger", "dedup_key": "d1"}
    from bridge.store.records import NewEvent

    assert enqueue(outbox, NewEvent("trigger", "d1", body),
                   new_event("resolve", "d2")) == Enqueued("stored", 2)
    pending = outbox.pending()
    assert [(e.action, e.dedup_key) for e in pending] == [("trigger", "d1"), ("resolve", "d2")]
    assert pending[0].body == {"event_action": "trigger", "dedup_key": "d1"}
    assert (pending[0].created_at, pending[0].attempts, pending[0].lease_owner) == (
        clock.now, 0, None)
    db = sqlite3.connect(outbox.path)
    assert KEY_A not in json.dumps(db.execute("SELECT * FROM events").fetchall())
    db.close()


def test_sends_past_the_window_are_forgotten(outbox, clock):
    enqueue(outbox, new_event())
    (head,) = head_ids(outbox)
    claim(outbox, (head, KEY_A))
    clock.now += 61
    assert outbox.key_window(KEY_A, 60).sent_at == ()
    claim(outbox, (head, KEY_A))  # prunes as it claims
    db = sqlite3.connect(outbox.path)
    assert db.execute("SELECT sent_at FROM sends").fetchall() == [(clock.now,)]
    db.close()


def test_listeners_hear_new_events_only(outbox):
    calls = []
    outbox.subscribe(lambda: calls.append(1))
    enqueue(outbox, new_event(), fingerprint="fp")
    enqueue(outbox, new_event(), fingerprint="fp")  # a duplicate adds nothing to send
    assert calls == [1]


def test_on_a_loop_listeners_hear_after_the_caller_has_answered(outbox):
    calls = []
    outbox.subscribe(lambda: calls.append(1))

    async def scenario() -> tuple[int, int]:
        await outbox.enqueue_async(incoming(), lambda _open: ([new_event()], frozenset()))
        answered = len(calls)  # the webhook handler writes its 202 here
        await asyncio.sleep(0)
        return answered, len(calls)

    assert asyncio.run(scenario()) == (0, 1)


def test_survives_reopen(tmp_path, clock):
    path = outbox_path(tmp_path)
    with SqliteStore(path, clock=clock) as box:
        enqueue(box, new_event(dedup="d1"), open_after={"low"})
        claim(box, (head_ids(box)[0], KEY_A), owner="before")
    with SqliteStore(path, clock=clock) as box:
        (event,) = box.pending()
        assert (event.dedup_key, event.lease_owner) == ("d1", "before")
        assert box.open_keys("web", "id:1") == {"low"}
        assert box.writable()


def test_close_is_final(tmp_path):
    box = SqliteStore(outbox_path(tmp_path))
    box.close()
    box.close()  # idempotent
    with pytest.raises(sqlite3.ProgrammingError):
        box.stats()
    with pytest.raises(sqlite3.ProgrammingError):
        box.mark_delivered(1, routing_key=KEY_A)


def _big_event(i: int):
    from bridge.store.records import NewEvent

    return NewEvent("trigger", f"d{i}", {"event_action": "trigger", "dedup_key": f"d{i}",
                                         "payload": {"summary": "x" * 8000}})


def test_a_full_outbox_is_not_writable_until_space_is_freed(tmp_path, monkeypatch):
    """`max_bytes` (SQLite's max_page_count) stands in for a full disk: past it, SQLite
    fails a commit with SQLITE_FULL, the very error a full disk gives; an unprivileged
    test cannot fill a real file system without disturbing the machine."""
    import bridge.store.rows as store_rows

    monkeypatch.setattr(store_rows, "PROBE_EVERY", 0.0)  # probe on every ask
    with SqliteStore(outbox_path(tmp_path), max_bytes=512 << 10) as box:
        assert box.writable()
        stored = 0
        with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
            while True:
                enqueue(box, _big_event(stored), check=f"id:{stored}")
                stored += 1
        assert stored > 10
        assert not box.writable()
        assert not box.writable()  # still full: the probe's row does not fit either
        for event in box.pending()[: stored // 2]:
            box.mark_delivered(event.id, routing_key=KEY_A)
        assert box.writable()
        enqueue(box, _big_event(stored), check="id:again")


def test_readiness_answers_from_the_last_alert_commit_within_a_second(tmp_path):
    with SqliteStore(outbox_path(tmp_path), max_bytes=256 << 10) as box:
        with pytest.raises(sqlite3.OperationalError):
            for i in range(1000):
                enqueue(box, _big_event(i), check=f"id:{i}")
        for event in box.pending():
            box.mark_delivered(event.id, routing_key=KEY_A)
        # The failed commit is under a second old: no probe yet, still not ready.
        assert not box.writable()


def test_delivery_bookkeeping_commits_without_an_fsync_of_its_own_and_alerts_with_one(outbox):
    # The mode each commit on the writer connection ran under (FULL fsyncs the WAL).
    modes: list[str] = []
    mode = ["FULL"]

    def trace(sql: str) -> None:
        if sql.startswith("PRAGMA synchronous="):
            mode[0] = sql.split("=", 1)[1]
        elif sql == "COMMIT":
            modes.append(mode[0])

    outbox._db.set_trace_callback(trace)
    enqueue(outbox, new_event(dedup="a1"))
    [head] = head_ids(outbox)
    claim(outbox, (head, KEY_A))
    outbox.mark_delivered(head, routing_key=KEY_A)
    enqueue(outbox, new_event(dedup="a2"))
    [second] = head_ids(outbox)
    outbox.reschedule(second, next_attempt_at=0.0, error="500 server_error")
    outbox.dead_letter(second, routing_key=KEY_A, status=400, reason="invalid_event",
                       message="bad")
    assert modes == ["FULL", "NORMAL", "NORMAL", "FULL", "NORMAL", "FULL"]


def test_held_alerts_survive_a_restart(tmp_path, clock):
    path = outbox_path(tmp_path / "data")
    with SqliteStore(path, clock=clock) as box:
        box.hold(incoming(fingerprint="a", asm_time=T0), window="w", record={"n": 1})
    with SqliteStore(path, clock=clock) as box:
        assert [h.alert for h in box.held_alerts()] == [{"n": 1}]
        assert box.hold(incoming(fingerprint="b", asm_time="2026-11-26T09:59:00Z"),
                        window="w", record={}).verdict == "stale"
