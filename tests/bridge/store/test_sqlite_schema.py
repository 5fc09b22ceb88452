"""Schema migrations by `PRAGMA user_version`: old stores are brought up, newer ones refused."""

from __future__ import annotations

import sqlite3

import pytest

from bridge.errors import StoreError
from bridge.store.records import NewEvent
from bridge.store.sqlite import SqliteStore, outbox_path
from bridge.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version

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


def _enqueue(box: SqliteStore, fingerprint: str) -> int | None:
    event = NewEvent(KEY, "trigger", "d1", {"routing_key": KEY})
    return box.enqueue(route="web", check_key="id:1", fingerprint=fingerprint,
                       events_for=lambda _open: ([event], frozenset()))


def test_a_new_store_gets_every_migration(tmp_path):
    path = outbox_path(tmp_path)
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    assert schema_version(db) == SCHEMA_VERSION == 3
    assert _tables(db) == {"events", "dead_letters", "check_state", "last_alerts", "unclaimed"}
    db.close()


def test_an_outbox_of_schema_1_opens(tmp_path):
    path = outbox_path(tmp_path / "old")
    _store_at(path, 1)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO recent_alerts VALUES ('fp', 0)")
    db.commit()
    db.close()
    with SqliteStore(path) as box:
        assert _enqueue(box, "fp") == 1
        assert _enqueue(box, "fp") is None
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
        f"{path}: the outbox has schema version 4, and this bridge knows up to 3; run the "
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
