"""Schema migrations by `PRAGMA user_version`: old stores are brought up, newer ones refused."""

from __future__ import annotations

import json
import sqlite3

import pytest

from bridge.delivery.pacing import Pacing
from bridge.errors import StoreError
from bridge.store.records import Claim, NewEvent
from bridge.store.sqlite import SqliteStore, outbox_path
from bridge.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version
from tests.bridge.conftest import incoming

KEY = "a" * 32


def _tables(db: sqlite3.Connection) -> set[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {name for (name,) in rows} - {"sqlite_sequence"}


def _store_at(path, version: int) -> None:
    """A store as a bridge of `version` left it: the first `version` migrations applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    for steps in MIGRATIONS[:version]:
        for statement in steps:
            db.execute(statement)
    db.execute(f"PRAGMA user_version={version}")
    db.commit()
    db.close()


def _enqueue(box: SqliteStore, fingerprint: str) -> str:
    event = NewEvent("trigger", "d1", {"event_action": "trigger"})
    return box.enqueue(incoming(fingerprint=fingerprint),
                       lambda _open: ([event], frozenset())).verdict


def test_a_new_store_gets_every_migration(tmp_path):
    path = outbox_path(tmp_path)
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    assert schema_version(db) == SCHEMA_VERSION == 5
    assert _tables(db) == {"events", "dead_letters", "check_state", "last_alerts", "unclaimed",
                           "incident_keys", "sends", "key_throttles", "route_problems",
                           "check_alerts", "stale_alerts", "probe", "held_alerts"}
    db.close()


def test_an_outbox_of_schema_1_opens(tmp_path):
    path = outbox_path(tmp_path / "old")
    _store_at(path, 1)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO recent_alerts VALUES ('fp', 0)")
    db.commit()
    db.close()
    with SqliteStore(path) as box:
        assert _enqueue(box, "fp") == "stored"
        assert _enqueue(box, "fp") == "duplicate"
    db = sqlite3.connect(path)
    assert "recent_alerts" not in _tables(db)
    db.close()


@pytest.mark.parametrize("had_unclaimed", [False, True])
def test_a_version_2_store_gets_the_unclaimed_table(tmp_path, had_unclaimed):
    """Version 2 bridges made `unclaimed` without counting it: both kinds migrate."""
    path = outbox_path(tmp_path)
    _store_at(path, 2)
    if had_unclaimed:
        db = sqlite3.connect(path)
        for statement in MIGRATIONS[2]:
            db.execute(statement)
        db.commit()
        db.close()
    with SqliteStore(path) as box:
        box.record_unclaimed(check_id=1, check_guid=None, check_name="c", severity="F",
                             action="trigger", body=b"{}")
        assert [u.check_id for u in box.unclaimed()] == [1]


def test_a_store_newer_than_this_bridge_is_refused_and_left_alone(tmp_path):
    path = outbox_path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE future (x)")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError) as caught:
        SqliteStore(path)
    assert str(caught.value) == (
        f"{path}: the outbox has schema version 6, and this bridge knows up to 5; run the "
        "bridge that wrote it (or a newer one)")
    db = sqlite3.connect(path)
    assert (schema_version(db), _tables(db)) == (SCHEMA_VERSION + 1, {"future"})
    db.close()


def test_a_current_store_is_not_written_on_open(tmp_path):
    """Opening a store already at the current version only reads its version."""
    path = outbox_path(tmp_path)
    SqliteStore(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    migrate(db, str(path))
    db.close()
    assert statements == ["PRAGMA user_version"]


def test_a_failing_migration_leaves_the_store_as_it_was(tmp_path):
    path = outbox_path(tmp_path)
    _store_at(path, 1)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE last_alerts (broken)")  # migration 2's index cannot be made
    with pytest.raises(sqlite3.OperationalError):
        migrate(db, str(path))
    assert schema_version(db) == 1
    assert "recent_alerts" in _tables(db)
    assert not db.in_transaction
    db.close()


def _version_3_store_with_work(path) -> None:
    """What a version 3 bridge left: events in two lanes (keys in their rows and bodies),
    a dead letter, open check state."""
    _store_at(path, 3)
    db = sqlite3.connect(path)
    rows = [("web", KEY, "id:1", "trigger", "apica-asm:web:id:1:high"),
            ("web", KEY, "id:1", "resolve", "apica-asm:web:id:1:high"),
            ("api", "b" * 32, "id:2", "trigger", "apica-asm:api:id:2:low")]
    for route, key, check, action, dedup in rows:
        body = json.dumps({"routing_key": key, "event_action": action, "dedup_key": dedup})
        db.execute("INSERT INTO events (route, routing_key, check_key, action, dedup_key,"
                   " body, created_at, attempts, next_attempt_at, last_error)"
                   " VALUES (?, ?, ?, ?, ?, ?, 100, 2, 200, '503 server_error')",
                   (route, key, check, action, dedup, body))
    db.execute("INSERT INTO dead_letters (event_id, route, routing_key, check_key, action,"
               " dedup_key, body, created_at, attempts, status, reason, message, dead_at)"
               " VALUES (7, 'web', ?, 'id:3', 'trigger', 'd3', ?, 50, 1, 400, 'invalid_event',"
               " 'bad', 60)", (KEY, json.dumps({"routing_key": KEY, "dedup_key": "d3"})))
    db.execute("INSERT INTO check_state VALUES ('web', 'id:1', 'high', 100)")
    db.commit()
    db.close()


def test_a_version_3_store_keeps_its_pending_events_order_and_dead_letters(tmp_path):
    path = outbox_path(tmp_path)
    _version_3_store_with_work(path)
    with SqliteStore(path) as box:
        pending = box.pending()
        assert [(e.id, e.route, e.action, e.attempts, e.next_attempt_at, e.last_error)
                for e in pending] == [
            (1, "web", "trigger", 2, 200, "503 server_error"),
            (2, "web", "resolve", 2, 200, "503 server_error"),
            (3, "api", "trigger", 2, 200, "503 server_error")]
        # Bodies lose their key (it is chosen at send time); lanes are routes now.
        assert all("routing_key" not in e.body for e in pending)
        assert [(h.id, h.route) for h in box.lane_heads()] == [(1, "web"), (3, "api")]
        assert box.open_keys("web", "id:1") == {"high"}
        (letter,) = box.dead_letters()
        assert (letter.id, letter.routing_key, letter.reason) == (1, KEY, "invalid_event")
        # The dead letters' id sequence carried over the table's rebuild.
        box.dead_letter(1, routing_key=None, status=None, reason="route_removed",
                        message="m", attempted=False)
        assert [d.id for d in box.dead_letters()] == [1, 2]
        assert box.redrive([1]) == [1]
        assert "routing_key" not in box.pending()[-1].body
        claimed = box.claim([Claim(3, KEY)], owner="me", lease_seconds=5, pace=Pacing())
        assert [e.id for e in claimed.events] == [3]


def test_migrating_twice_is_a_no_op(tmp_path):
    path = outbox_path(tmp_path)
    _version_3_store_with_work(path)
    SqliteStore(path).close()
    with SqliteStore(path) as box:
        assert len(box.pending()) == 3
