"""The PostgreSQL store's schema, as the migrations that build it (table `apica_pd_schema`).

The same tables as the SQLite store (`bridge.store.sqlite_schema`; its version 4 is
this backend's 1, its 5 this backend's 2), in PostgreSQL's types; the version numbers
are this backend's own. `MIGRATIONS[n]`
takes a store from version n to n + 1; a released migration is history: never edit
it, append the next one. A store newer than this bridge knows is refused.

Several bridges may start at once against one database: `migrate` takes an advisory
lock, reads the version again under it and runs the missing steps in one transaction
(PostgreSQL's DDL is transactional: a failed step leaves the schema as it was). The
tables live in the first schema of the connection's `search_path` (`public` unless the
URL's `options` say otherwise).
"""

from __future__ import annotations

from typing import Any

from bridge.store.schema_versions import too_new, too_old

# pg_advisory_xact_lock(bigint) key for migrations ("APD" + 0): one bridge migrates at once.
MIGRATION_LOCK = 0x41504400
VERSION_TABLE = "apica_pd_schema"

_TIME = "double precision"  # seconds since the epoch, as the records carry them

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the outbox as the SQLite store has it at its version 4: lanes are routes, leases,
    # the send log per key, incident keys, route health, stale alerts, unclaimed webhooks.
    (
        f"""CREATE TABLE events (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            route text NOT NULL,
            check_key text NOT NULL,
            action text NOT NULL,
            dedup_key text NOT NULL,
            body text NOT NULL,
            created_at {_TIME} NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at {_TIME} NOT NULL,
            last_error text,
            lease_owner text,
            lease_until {_TIME}
        )""",
        "CREATE INDEX events_lane ON events (route, id)",
        # A claim asks whether another event of the lane is leased: only leased rows here.
        "CREATE INDEX events_leased ON events (route) WHERE lease_owner IS NOT NULL",
        f"""CREATE TABLE dead_letters (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id bigint NOT NULL,
            route text NOT NULL,
            routing_key text,
            check_key text NOT NULL,
            action text NOT NULL,
            dedup_key text NOT NULL,
            body text NOT NULL,
            created_at {_TIME} NOT NULL,
            attempts integer NOT NULL,
            status integer,
            reason text NOT NULL,
            message text NOT NULL,
            dead_at {_TIME} NOT NULL
        )""",
        f"""CREATE TABLE check_state (
            route text NOT NULL,
            check_key text NOT NULL,
            open_keys text NOT NULL,
            updated_at {_TIME} NOT NULL,
            PRIMARY KEY (route, check_key)
        )""",
        f"""CREATE TABLE last_alerts (
            route text NOT NULL,
            check_key text NOT NULL,
            fingerprint text NOT NULL,
            seen_at {_TIME} NOT NULL,
            PRIMARY KEY (route, check_key)
        )""",
        "CREATE INDEX last_alerts_seen ON last_alerts (seen_at)",
        f"""CREATE TABLE unclaimed (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            received_at {_TIME} NOT NULL,
            check_id bigint,
            check_guid text,
            check_name text NOT NULL,
            severity text NOT NULL,
            action text NOT NULL,
            body text NOT NULL,
            body_bytes integer NOT NULL
        )""",
        f"""CREATE TABLE incident_keys (
            route text NOT NULL,
            dedup_key text NOT NULL,
            routing_key text NOT NULL,
            opened_at {_TIME} NOT NULL,
            PRIMARY KEY (route, dedup_key)
        )""",
        f"""CREATE TABLE sends (
            routing_key text NOT NULL,
            sent_at {_TIME} NOT NULL
        )""",
        "CREATE INDEX sends_key ON sends (routing_key, sent_at)",
        "CREATE INDEX sends_at ON sends (sent_at)",
        f"""CREATE TABLE key_throttles (
            routing_key text PRIMARY KEY,
            key_limit integer NOT NULL,
            since {_TIME} NOT NULL,
            not_before {_TIME} NOT NULL
        )""",
        f"""CREATE TABLE route_problems (
            route text NOT NULL,
            reason text NOT NULL,
            count integer NOT NULL,
            last_at {_TIME} NOT NULL,
            message text NOT NULL,
            PRIMARY KEY (route, reason)
        )""",
        """CREATE TABLE check_alerts (
            route text NOT NULL,
            check_key text NOT NULL,
            newest_at text NOT NULL,
            fingerprints text NOT NULL,
            PRIMARY KEY (route, check_key)
        )""",
        f"""CREATE TABLE stale_alerts (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            received_at {_TIME} NOT NULL,
            route text NOT NULL,
            check_key text NOT NULL,
            action text NOT NULL,
            severity text NOT NULL,
            alert_at text NOT NULL,
            newest_alert_at text NOT NULL
        )""",
        f"""CREATE TABLE probe (
            id integer PRIMARY KEY,
            at {_TIME} NOT NULL
        )""",
    ),
    # 2: alerts held by maintenance windows (issue 14), as the SQLite store's version 5:
    # per check the latest, paged or resolved when no window covers the check any more.
    (
        f"""CREATE TABLE held_alerts (
            route text NOT NULL,
            check_key text NOT NULL,
            window_name text NOT NULL,
            alert text NOT NULL,
            held_at {_TIME} NOT NULL,
            updated_at {_TIME} NOT NULL,
            version integer NOT NULL,
            PRIMARY KEY (route, check_key)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: Any) -> int:
    """The store's version at `db` (a psycopg connection); 0 for an empty schema."""
    # pg_class read as a table, not through to_regclass(): the catalog cache of a session
    # that waited on an advisory lock may not have seen another bridge's CREATE yet.
    (exists,) = db.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = %s AND n.nspname = current_schema())", (VERSION_TABLE,)).fetchone()
    if not exists:
        return 0
    row = db.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
    return row[0] if row else 0


def require_current(db: Any, where: str) -> None:
    """For a store opened read-only, which cannot be migrated: its schema must be ours."""
    found = schema_version(db)
    if found > SCHEMA_VERSION:
        raise too_new(found, SCHEMA_VERSION, where)
    if found < SCHEMA_VERSION:
        raise too_old(found, SCHEMA_VERSION, where)


def migrate(db: Any, where: str) -> tuple[int, int]:
    """Bring the store at `db` (an autocommit connection) up to `SCHEMA_VERSION`;
    (version found, version now). A store already there costs one read and no lock."""
    found = schema_version(db)
    if found == SCHEMA_VERSION:
        return found, found
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s::bigint)", (MIGRATION_LOCK,))
        found = schema_version(db)  # another bridge may have migrated meanwhile
        if found > SCHEMA_VERSION:
            raise too_new(found, SCHEMA_VERSION, where)
        if found == 0:
            db.execute(f"CREATE TABLE {VERSION_TABLE} (version integer NOT NULL)")
            db.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (0)")
        for steps in MIGRATIONS[found:]:
            for statement in steps:
                db.execute(statement)
        db.execute(f"UPDATE {VERSION_TABLE} SET version = %s", (SCHEMA_VERSION,))
    return found, SCHEMA_VERSION
