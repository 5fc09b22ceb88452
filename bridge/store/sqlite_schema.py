"""The SQLite store's schema, as the migrations that build it (`PRAGMA user_version`).

`MIGRATIONS[n]` takes a store from version n to n + 1. A migration, once released, is
history: never edit it, append the next one. A store newer than this bridge knows is
refused (an older bridge could misread it), never "repaired".
"""

from __future__ import annotations

import sqlite3

from bridge.store.schema_versions import too_new, too_old

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: events, dead letters, open urgency classes, duplicate fingerprints.
    (
        """CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            route TEXT NOT NULL,
            routing_key TEXT NOT NULL,
            check_key TEXT NOT NULL,
            action TEXT NOT NULL,
            dedup_key TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS events_lane ON events (routing_key, id)",
        """CREATE TABLE IF NOT EXISTS dead_letters (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id INTEGER NOT NULL,
            route TEXT NOT NULL,
            routing_key TEXT NOT NULL,
            check_key TEXT NOT NULL,
            action TEXT NOT NULL,
            dedup_key TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL,
            status INTEGER,
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            dead_at REAL NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS check_state (
            route TEXT NOT NULL,
            check_key TEXT NOT NULL,
            open_keys TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (route, check_key)
        )""",
        """CREATE TABLE IF NOT EXISTS recent_alerts (
            fingerprint TEXT PRIMARY KEY,
            seen_at REAL NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS recent_alerts_seen ON recent_alerts (seen_at)",
    ),
    # 2: a duplicate repeats the check's *latest* accepted alert only (F, I, F is three
    # alerts); version 1 kept every fingerprint of the window, whatever came after it.
    (
        "DROP TABLE IF EXISTS recent_alerts",
        """CREATE TABLE IF NOT EXISTS last_alerts (
            route TEXT NOT NULL,
            check_key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            seen_at REAL NOT NULL,
            PRIMARY KEY (route, check_key)
        )""",
        "CREATE INDEX IF NOT EXISTS last_alerts_seen ON last_alerts (seen_at)",
    ),
    # 3: webhooks refused (422) because no route claims the check, kept so a person can
    # add the check to a stack file (`apica-pd unclaimed`). (Bridges of version 2 made
    # this table without counting it, hence IF NOT EXISTS.)
    (
        """CREATE TABLE IF NOT EXISTS unclaimed (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            received_at REAL NOT NULL,
            check_id INTEGER,
            check_guid TEXT,
            check_name TEXT NOT NULL,
            severity TEXT NOT NULL,
            action TEXT NOT NULL,
            body TEXT NOT NULL,
            body_bytes INTEGER NOT NULL
        )""",
    ),
    # 4: lanes are routes and the routing key is chosen at send time (issue 9 item 2);
    # leases on lane heads (item 15); pacing per key over a look-back window (issue 13);
    # route health; stale alerts (item 8); a write probe for /readyz (item 5).
    (
        # Events forget their key (old bodies too): the routes in force at send time say.
        "DROP INDEX IF EXISTS events_lane",
        "ALTER TABLE events DROP COLUMN routing_key",
        "UPDATE events SET body = json_remove(body, '$.routing_key')",
        "ALTER TABLE events ADD COLUMN lease_owner TEXT",
        "ALTER TABLE events ADD COLUMN lease_until REAL",
        "CREATE INDEX IF NOT EXISTS events_lane ON events (route, id)",
        # A dead letter of a removed route has no key: routing_key becomes nullable, which
        # SQLite only does by rebuilding the table (its id sequence carried over).
        """CREATE TABLE dead_letters_v4 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id INTEGER NOT NULL,
            route TEXT NOT NULL,
            routing_key TEXT,
            check_key TEXT NOT NULL,
            action TEXT NOT NULL,
            dedup_key TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL,
            status INTEGER,
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            dead_at REAL NOT NULL
        )""",
        """INSERT INTO dead_letters_v4 (id, event_id, route, routing_key, check_key, action,
            dedup_key, body, created_at, attempts, status, reason, message, dead_at)
           SELECT id, event_id, route, routing_key, check_key, action, dedup_key, body,
            created_at, attempts, status, reason, message, dead_at FROM dead_letters""",
        """UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence
            WHERE name = 'dead_letters') WHERE name = 'dead_letters_v4'""",
        "DROP TABLE dead_letters",
        "ALTER TABLE dead_letters_v4 RENAME TO dead_letters",
        # The key each open incident was opened through (a delivered trigger writes it, a
        # delivered resolve deletes it): its resolve goes there while the route lists it.
        """CREATE TABLE IF NOT EXISTS incident_keys (
            route TEXT NOT NULL,
            dedup_key TEXT NOT NULL,
            routing_key TEXT NOT NULL,
            opened_at REAL NOT NULL,
            PRIMARY KEY (route, dedup_key)
        )""",
        # One row per attempt per key, pruned past the look-back window.
        """CREATE TABLE IF NOT EXISTS sends (
            routing_key TEXT NOT NULL,
            sent_at REAL NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS sends_key ON sends (routing_key, sent_at)",
        "CREATE INDEX IF NOT EXISTS sends_at ON sends (sent_at)",
        """CREATE TABLE IF NOT EXISTS key_throttles (
            routing_key TEXT PRIMARY KEY,
            key_limit INTEGER NOT NULL,
            since REAL NOT NULL,
            not_before REAL NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS route_problems (
            route TEXT NOT NULL,
            reason TEXT NOT NULL,
            count INTEGER NOT NULL,
            last_at REAL NOT NULL,
            message TEXT NOT NULL,
            PRIMARY KEY (route, reason)
        )""",
        # Per check, the newest ASM timestamp accepted and the fingerprints accepted at it.
        """CREATE TABLE IF NOT EXISTS check_alerts (
            route TEXT NOT NULL,
            check_key TEXT NOT NULL,
            newest_at TEXT NOT NULL,
            fingerprints TEXT NOT NULL,
            PRIMARY KEY (route, check_key)
        )""",
        """CREATE TABLE IF NOT EXISTS stale_alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            received_at REAL NOT NULL,
            route TEXT NOT NULL,
            check_key TEXT NOT NULL,
            action TEXT NOT NULL,
            severity TEXT NOT NULL,
            alert_at TEXT NOT NULL,
            newest_alert_at TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS probe (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            pad BLOB NOT NULL
        )""",
    ),
    # 5: alerts held by maintenance windows (issue 14): per check the latest, paged or
    # resolved when no window covers the check any more.
    (
        """CREATE TABLE IF NOT EXISTS held_alerts (
            route TEXT NOT NULL,
            check_key TEXT NOT NULL,
            window_name TEXT NOT NULL,
            alert TEXT NOT NULL,
            held_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (route, check_key)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite3.Connection) -> int:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    return version


def require_current(db: sqlite3.Connection, where: str) -> None:
    """For a store opened read-only, which cannot be migrated: its schema must be ours."""
    found = schema_version(db)
    if found > SCHEMA_VERSION:
        raise too_new(found, SCHEMA_VERSION, where)
    if found < SCHEMA_VERSION:
        raise too_old(found, SCHEMA_VERSION, where)


def migrate(db: sqlite3.Connection, where: str) -> tuple[int, int]:
    """Bring the store at `db` (autocommit mode) up to `SCHEMA_VERSION` in one transaction;
    (version found, version now).

    A store already there costs one read and takes no lock. `where` names the store in
    the error for a schema newer than this bridge knows.
    """
    if schema_version(db) == SCHEMA_VERSION:
        return SCHEMA_VERSION, SCHEMA_VERSION
    # BEGIN IMMEDIATE: another process may be migrating the same file; read the version
    # again under the write lock so each step runs once.
    db.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(db)
        if found > SCHEMA_VERSION:
            raise too_new(found, SCHEMA_VERSION, where)
        for steps in MIGRATIONS[found:]:
            for statement in steps:
                db.execute(statement)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return found, SCHEMA_VERSION
