"""The PostgreSQL store: one outbox shared by several bridges (issue 12).

Every bridge on the database accepts webhooks and delivers. The promises of
`bridge.store.base` hold across them:

- Durability: every connection sets `synchronous_commit = on` (whatever the database's
  default), so a commit returns only once its WAL is flushed (and, where the operator
  configured synchronous standbys, confirmed by them): the 202 to ASM comes only after
  that commit. The delivery bookkeeping (claims, delivered marks, reschedules) commits
  with `SET LOCAL synchronous_commit = off`, as SQLite commits it without an fsync of
  its own: on disk with the next alert's commit; lost only in a crash of the database,
  which re-sends an event at worst.
- Writes go through the group commit (`bridge.store.group_commit`), as in SQLite: one
  transaction per batch, its statements pipelined. A transaction first takes, in one
  sorted order, the advisory locks its jobs declare: one per check an alert belongs to
  (so two bridges decide duplicate, stale and open keys of a check one after the
  other, and a check's events get ids in commit order) and one per routing key a claim
  counts a send on (the send window is read and written under it).
- Claims (a transaction of their own, beside the group commit): a lane (route) is
  claimed under `pg_try_advisory_xact_lock` (another bridge claiming that lane now:
  skipped, never waited for), its head row `FOR UPDATE SKIP LOCKED` (a head being
  delivered or moved right now: skipped), then only if it is still the lane's oldest
  event and no other event of the lane holds a live lease.
  Leases and the send window use the database's clock, so a replica's skewed clock
  cannot shorten a lease or widen a window.
- Wake-ups: a commit that adds work `NOTIFY`s; every bridge `LISTEN`s (the worker
  polls as well, for leases running out).
- The database down or failing over: a commit fails (no connection within
  `POOL_WAIT`), the webhook gets 503, `writable()` is False, and the pool connects
  again by itself once the database is back.

SQLite's flock has no counterpart: the store's `delivery_lock` is always free (leases
keep one event in flight per lane). The URL's password never reaches a log or an
error: messages are `scrub`bed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from bridge.errors import StoreError
from bridge.store import rows
from bridge.store.base import EventsFor, Pace
from bridge.store.group_commit import GroupCommit
from bridge.store.location import redact_url, scrub
from bridge.store.postgres_schema import migrate, require_current
from bridge.store.records import (
    Claim,
    Claimed,
    Enqueued,
    IncomingAlert,
    KeyIncidents,
    KeyWindow,
    OutboxStats,
    PendingEvent,
    RouteBacklog,
    RouteProblem,
    StaleAlert,
    Throttle,
    Unclaimed,
)
from bridge.store.rows import CARRIED, NO_LEASE, columns, dump_body, from_row
from bridge.store.sql_store import SqlStore

log = logging.getLogger("bridge.store")

CHANNEL = "apica_pd_outbox"
# Advisory lock classes (pg_advisory_xact_lock(int, int)); the second int is hashtext()
# of the name. A hash collision only makes two names share a lock.
CHECK_LOCK = 0x41504401
KEY_LOCK = 0x41504402
LANE_LOCK = 0x41504403
# Longest a caller waits for a connection: a webhook is answered 503 after this when the
# database cannot be reached.
POOL_WAIT = 3.0
POOL_SIZE = 6
# The writer's own connection, idle longer than this (seconds), is checked before a batch.
WRITER_IDLE_CHECK = 1.0
# /readyz asks with a shorter wait: a load balancer's health check must not time out.
PROBE_WAIT = 1.5
# Libpq settings the bridge uses unless the URL sets them: fail fast, notice a dead peer.
CONNECTION_DEFAULTS = {
    "connect_timeout": "3", "keepalives": "1", "keepalives_idle": "10",
    "keepalives_interval": "3", "keepalives_count": "3", "tcp_user_timeout": "15000",
    "application_name": "apica-pd bridge",
}
# Per session: durable commits, and nothing that waits unbounded.
SESSION_SETTINGS = {
    "synchronous_commit": "on",
    "statement_timeout": "10s",
    "idle_in_transaction_session_timeout": "30s",
}

_NOW = "extract(epoch FROM clock_timestamp())::float8"
_LANE_HEADS = """
WITH RECURSIVE lane(route) AS (
    (SELECT route FROM events ORDER BY route LIMIT 1)
    UNION ALL
    SELECT (SELECT e.route FROM events e WHERE e.route > lane.route ORDER BY e.route LIMIT 1)
    FROM lane WHERE lane.route IS NOT NULL
)
SELECT h.id, h.route, h.action, h.dedup_key, h.next_attempt_at, h.lease_owner,
       h.lease_until, k.routing_key
FROM lane
CROSS JOIN LATERAL (SELECT * FROM events e WHERE e.route = lane.route ORDER BY e.id LIMIT 1) h
LEFT JOIN incident_keys k ON k.route = h.route AND k.dedup_key = h.dedup_key
WHERE lane.route IS NOT NULL
ORDER BY h.id
"""
# The batch's time (after its locks: a lease starts when it is granted) and its checks'
# state, in one round trip; one row (the time) when it has no checks.
_BATCH_START = f"""
SELECT t.now, k.route, k.check_key, la.fingerprint, la.seen_at, ca.newest_at,
       ca.fingerprints, cs.open_keys
FROM (SELECT {_NOW} AS now) t
LEFT JOIN unnest(%s::text[], %s::text[]) AS k(route, check_key) ON true
LEFT JOIN last_alerts la ON la.route = k.route AND la.check_key = k.check_key
LEFT JOIN check_alerts ca ON ca.route = k.route AND ca.check_key = k.check_key
LEFT JOIN check_state cs ON cs.route = k.route AND cs.check_key = k.check_key
"""
# A delivered event leaves; a trigger notes the key its incident opened through (its
# time kept while the key stays the same), a resolve forgets it. `now`: the batch's
# time if it has one, else the database's.
_MARK_DELIVERED = f"""
WITH gone AS (DELETE FROM events WHERE id = %(id)s RETURNING route, action, dedup_key),
opened AS (
    INSERT INTO incident_keys (route, dedup_key, routing_key, opened_at)
    SELECT route, dedup_key, %(key)s, COALESCE(%(now)s::float8, {_NOW})
    FROM gone WHERE action = 'trigger'
    ON CONFLICT (route, dedup_key) DO UPDATE SET routing_key = excluded.routing_key,
        opened_at = CASE WHEN incident_keys.routing_key = excluded.routing_key
                         THEN incident_keys.opened_at ELSE excluded.opened_at END
)
DELETE FROM incident_keys k USING gone
WHERE gone.action = 'resolve' AND k.route = gone.route AND k.dedup_key = gone.dedup_key
"""


def _skip_locked_delete(table: str, where: str) -> str:
    """Delete old rows another bridge is not deleting right now (never wait for it)."""
    return (f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table}"
            f" WHERE {where} FOR UPDATE SKIP LOCKED))")


def _text(value: str) -> str:
    """PostgreSQL's text cannot hold NUL (a check named "\x00" has it in its key): the
    same replacement every time, so the key still names one check (bodies are JSON, where
    NUL is escaped)."""
    return value.replace("\x00", "\ufffd")


def unreachable(exc: BaseException) -> bool:
    """The database could not be reached or went away: not the fault of one job."""
    if isinstance(exc, PoolTimeout | PoolClosed):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        return state is None or state.startswith(("08", "57P"))
    return False


@dataclass
class _CheckState:
    """What a check's next alert is judged by: its latest accepted alert's fingerprint
    and time, its newest ASM time and the fingerprints at it, its open urgency classes."""

    last_fp: str | None = None
    seen_at: float | None = None
    newest_at: str | None = None
    fingerprints: str | None = None
    open_keys: str | None = None


@dataclass
class _Tx:
    """What a job gets: the batch's cursor, the time it runs at, and the state of the
    batch's checks, read in one statement before the first job (each job leaves it as
    its writes will: a later alert of the same check in the batch sees them).

    `now` is read from the database when a job first asks, unless the batch's first
    statement brought it: a batch that needs no time (a delivered event) costs no
    round trip before its commit.
    """

    cur: Any
    known_now: float | None
    checks: dict[tuple[str, str], _CheckState]

    @property
    def now(self) -> float:
        if self.known_now is None:
            (self.known_now,) = self.cur.execute(f"SELECT {_NOW}").fetchone()
        return self.known_now


def _never(result: Any) -> bool:
    return False


@dataclass(frozen=True)
class _Job:
    """A write, the advisory locks (class, name) it needs before it runs, the checks
    (route, check key) whose state it reads, and whether its result is new work for the
    other bridges (then the commit NOTIFYs them)."""

    run: Callable[[_Tx], Any]
    locks: tuple[tuple[int, str], ...] = ()
    wakes: Callable[[Any], bool] = _never
    checks: tuple[tuple[str, str], ...] = ()

    def __call__(self, tx: _Tx) -> Any:
        return self.run(tx)


class PostgresStore(SqlStore):
    """The store in a PostgreSQL database. Thread-safe; `close()` when done (or use `with`).

    `clock`: None takes the database's time (production); tests give a fake clock.
    """

    DRIVER_ERROR = psycopg.Error
    LANE_HEADS = _LANE_HEADS

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] | None = None,
        duplicate_window: float = rows.DEFAULT_DUPLICATE_WINDOW,
        read_only: bool = False,
        pool_size: int = POOL_SIZE,
    ) -> None:
        self.url = url
        self.where = redact_url(url)
        self.migrated: tuple[int, int] | None = None
        self._clock = clock
        self._window = duplicate_window
        self._read_only = read_only
        self._listeners: list[Callable[[], None]] = []
        self._closing = threading.Event()
        self._listen_thread: threading.Thread | None = None
        self._last_prune = 0.0
        self._last_sends_prune = 0.0
        self._commit_health: tuple[bool, float] | None = None
        self._conninfo = self._conninfo_of(url)
        settings = dict(SESSION_SETTINGS)
        if read_only:
            settings["default_transaction_read_only"] = "on"
        self._settings = settings
        try:
            with self._connect() as db:
                if read_only:
                    require_current(db, self.where)
                else:
                    self.migrated = migrate(db, self.where)
        except psycopg.Error as exc:
            raise StoreError(f"{self.where}: {self.scrub(exc)}") from None
        self._pool = ConnectionPool(
            self._conninfo, min_size=1, max_size=pool_size, open=False, name="outbox",
            kwargs={"autocommit": True}, configure=self._configure,
            check=ConnectionPool.check_connection, timeout=POOL_WAIT, reconnect_timeout=0,
        )
        self._pool.open(wait=False)
        # The writer thread's own connection (see `_writer_connection`); only it uses them.
        self._writer_db: psycopg.Connection[Any] | None = None
        self._writer_used = 0.0
        self._writer_pid = 0  # its server process: what its NOTIFYs come from
        self._writer = GroupCommit(self._commit_batch, closed_error=PoolClosed,
                                   unreachable=unreachable,
                                   relaxed=functools.partial(self._commit_batch, relaxed=True))

    # -- connections -------------------------------------------------------------

    @staticmethod
    def _conninfo_of(url: str) -> str:
        from psycopg.conninfo import make_conninfo

        given = conninfo_to_dict(url)
        extra = {k: v for k, v in CONNECTION_DEFAULTS.items() if k not in given}
        return make_conninfo(url, **extra)

    def _connect(self) -> psycopg.Connection[Any]:
        db = psycopg.connect(self._conninfo, autocommit=True)
        try:
            self._configure(db)
        except BaseException:
            db.close()
            raise
        return db

    def _configure(self, db: psycopg.Connection[Any]) -> None:
        names = list(self._settings)
        db.execute("SELECT " + ", ".join(["set_config(%s, %s, false)"] * len(names)),
                   [v for name in names for v in (name, self._settings[name])])

    def scrub(self, exc: BaseException | str) -> str:
        """A message about this store, without its password."""
        return scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else
                     type(exc).__name__, self.url)

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        """Commit what is queued, then close; later calls raise `PoolClosed`."""
        self._writer.stop()
        if self._writer_db is not None:  # the writer thread has ended: no one uses it
            self._writer_db.close()
        # The listener (a daemon) sees this within a second and ends; not waited for.
        self._closing.set()
        self._pool.close()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after new events are committed, by this bridge or another."""
        self._listeners.append(listener)
        if self._listen_thread is None and not self._read_only:
            self._listen_thread = threading.Thread(target=self._listen, name="outbox-listen",
                                                   daemon=True)
            self._listen_thread.start()

    def _listen(self) -> None:
        """LISTEN on a connection of its own; after a lost connection, again (and wake the
        listeners: a notification may have been missed meanwhile)."""
        failing = False
        while not self._closing.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as db:
                    db.execute(f"LISTEN {CHANNEL}")
                    if failing:
                        log.info("listening for other bridges' commits again",
                                 extra={"event": "store_listen_restored"})
                        failing = False
                    self._notify()
                    while not self._closing.is_set():
                        for note in db.notifies(timeout=1.0):
                            # This bridge's own commits woke its listeners already.
                            if note.pid != self._writer_pid:
                                self._notify()
            except psycopg.Error as exc:
                if not failing:
                    log.warning("lost the connection that listens for other bridges' "
                                "commits; polling until it is back: %s", self.scrub(exc),
                                extra={"event": "store_listen_lost"})
                    failing = True
                self._closing.wait(1.0)

    def delivery_lock(self) -> SharedDelivery:
        """Every bridge on the database delivers: leases keep one event in flight per lane."""
        return SharedDelivery(self.where)

    def _writer_connection(self) -> psycopg.Connection[Any]:
        """The writer thread's own connection: a pool's check before every batch would
        cost a round trip (a third of a webhook's); one idle for a while is checked
        first (the database may have restarted meanwhile), a broken one replaced."""
        db = self._writer_db
        if db is not None and not db.closed and not db.broken:
            if time.monotonic() - self._writer_used < WRITER_IDLE_CHECK:
                return db
            with contextlib.suppress(psycopg.Error):
                db.execute("")
                return db
        if db is not None:
            with contextlib.suppress(psycopg.Error):
                db.close()
            self._writer_db = None
        self._writer_db = db = self._connect()
        self._writer_pid = db.info.backend_pid
        return db

    def _commit_batch(self, jobs: Sequence[_Job], *, relaxed: bool = False) -> list[Any]:
        """The group commit's transaction, on the writer's connection."""
        db = self._writer_connection()
        try:
            return self._transaction(jobs, db, relaxed=relaxed)
        finally:
            self._writer_used = time.monotonic()

    def _transaction(self, jobs: Sequence[_Job], db: psycopg.Connection[Any] | None = None,
                     *, relaxed: bool = False) -> list[Any]:
        """Run `jobs` in one transaction on `db` (else a connection of the pool).

        `relaxed`: the delivery bookkeeping (claims, delivered marks, reschedules), whose
        commit need not wait for the WAL flush (`synchronous_commit = off` for it alone):
        it reaches the disk with the next alert's commit, and a crash of the database
        before that re-sends an event at worst, which PagerDuty merges by dedup key.
        Alerts always wait for the flush.
        """
        if db is None:
            with self._pool.connection() as pooled:
                return self._transaction(jobs, pooled, relaxed=relaxed)
        # One order for every lock: two bridges' batches never wait for each other in a
        # circle.
        locks = sorted({lock for job in jobs for lock in job.locks})
        with db.transaction(), db.pipeline(), db.cursor() as cur:
            if relaxed:
                cur.execute("SET LOCAL synchronous_commit = off")
            if locks:
                cur.executemany("SELECT pg_advisory_xact_lock(%s::integer, hashtext(%s))", locks)
            checks = sorted({key for job in jobs for key in job.checks})
            now = self._clock() if self._clock is not None else None
            state: dict[tuple[str, str], _CheckState] = {}
            if checks:
                for db_now, route, check_key, *found in cur.execute(
                        _BATCH_START, ([r for r, _ in checks], [c for _, c in checks])):
                    if route is not None:
                        state[(route, check_key)] = _CheckState(*found)
                    if now is None:
                        now = db_now
            tx = _Tx(cur, now, state)
            # The jobs' statements need no answer before the commit (but a claim's): the
            # pipeline sends them together, one round trip for the lot.
            results = [job(tx) for job in jobs]
            if any(job.wakes(result) for job, result in zip(jobs, results, strict=True)):
                cur.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        return results

    def _write(self, job: _Job, *, durable: bool = True) -> Any:
        return self._writer.run(job, durable=durable)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._pool.connection() as db:
            return db.execute(sql, params).fetchall()

    def _now(self) -> float | None:
        """The injected clock's time, or None for the database's (`_NOW_OR`)."""
        return self._clock() if self._clock is not None else None

    # -- intake ----------------------------------------------------------------

    def _enqueue_job(self, alert: IncomingAlert, events_for: EventsFor) -> _Job:
        route, check_key = alert.route, _text(alert.check_key)
        key = (route, check_key)

        def job(tx: _Tx) -> Enqueued:
            cur, now = tx.cur, tx.now
            refused, check = self._admit(tx, alert)
            if refused is not None:
                return refused
            open_keys = check.open_keys
            open_now = frozenset(open_keys.split(",")) if open_keys else frozenset()
            events, open_after = events_for(open_now)
            if events:
                cur.executemany(
                    f"INSERT INTO events ({CARRIED}, created_at, next_attempt_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [(route, check_key, e.action, _text(e.dedup_key), dump_body(e.body), now,
                      now)
                     for e in events])
            if open_after:
                cur.execute(
                    "INSERT INTO check_state (route, check_key, open_keys, updated_at)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (route, check_key) DO UPDATE SET"
                    " open_keys = excluded.open_keys, updated_at = excluded.updated_at",
                    (*key, ",".join(sorted(open_after)), now))
                check.open_keys = ",".join(sorted(open_after))
            elif open_keys is not None:
                cur.execute("DELETE FROM check_state WHERE route = %s AND check_key = %s", key)
                check.open_keys = None
            return Enqueued("stored", len(events))

        return _Job(job, ((CHECK_LOCK, f"{route}\x1f{check_key}"),),
                    wakes=lambda result: result.verdict == "stored", checks=(key,))

    def _admit(self, tx: _Tx, alert: IncomingAlert) -> tuple[Enqueued | None, _CheckState]:
        """A duplicate or stale verdict for `alert` (None once it is taken as the check's
        latest alert: fingerprint and ASM time recorded), and the check's state. Runs
        under the check's lock; the job declares `checks=(key,)` so the state is read."""
        cur, now = tx.cur, tx.now
        route, check_key, fingerprint = alert.route, _text(alert.check_key), alert.fingerprint
        key = (route, check_key)
        if now - self._last_prune >= rows.PRUNE_EVERY:
            cur.execute(_skip_locked_delete("last_alerts", "seen_at < %s"),
                        (now - self._window,))
            self._last_prune = now
        check = tx.checks.setdefault(key, _CheckState())
        last_fp, seen_at, newest_at = check.last_fp, check.seen_at, check.newest_at
        seen = check.fingerprints
        # A duplicate repeats the check's *latest* accepted alert (see SqliteStore).
        if (fingerprint is not None and last_fp == fingerprint
                and seen_at >= now - self._window):
            return Enqueued("duplicate"), check
        if alert.asm_time is not None:
            prints = seen.split(",") if seen else []
            if newest_at is not None and (alert.asm_time < newest_at or (
                    alert.asm_time == newest_at and alert.fingerprint in prints)):
                self._record_stale(cur, now, alert, key, newest_at)
                return Enqueued("stale", newest_alert_at=newest_at), check
            if newest_at is None or alert.asm_time > newest_at:
                prints = []
            if fingerprint is not None:
                prints = [*prints, fingerprint][-rows.FINGERPRINTS_AT_NEWEST:]
            cur.execute(
                "INSERT INTO check_alerts (route, check_key, newest_at, fingerprints)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (route, check_key) DO UPDATE SET"
                " newest_at = excluded.newest_at, fingerprints = excluded.fingerprints",
                (*key, alert.asm_time, ",".join(prints)))
            check.newest_at, check.fingerprints = alert.asm_time, ",".join(prints)
        if fingerprint is not None:
            cur.execute(
                "INSERT INTO last_alerts (route, check_key, fingerprint, seen_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (route, check_key) DO UPDATE SET"
                " fingerprint = excluded.fingerprint, seen_at = excluded.seen_at",
                (*key, fingerprint, now))
            check.last_fp, check.seen_at = fingerprint, now
        elif last_fp is not None:  # an alert without a fingerprint is still the latest
            cur.execute("DELETE FROM last_alerts WHERE route = %s AND check_key = %s", key)
            check.last_fp = check.seen_at = None
        return None, check

    # -- maintenance windows ---------------------------------------------------

    def hold(self, alert: IncomingAlert, *, window: str, record: dict[str, Any]) -> Enqueued:
        """Keep `record` as the check's held alert in the alert's transaction: duplicate and
        stale rules as for `enqueue`; no event, open urgency classes unchanged."""
        route, check_key = alert.route, _text(alert.check_key)
        text = rows.dump_held(record)

        def job(tx: _Tx) -> Enqueued:
            refused, _ = self._admit(tx, alert)
            if refused is not None:
                return refused
            tx.cur.execute(
                "INSERT INTO held_alerts (route, check_key, window_name, alert, held_at,"
                " updated_at, version) VALUES (%s, %s, %s, %s, %s, %s, 1)"
                " ON CONFLICT (route, check_key) DO UPDATE SET"
                " window_name = excluded.window_name, alert = excluded.alert,"
                " updated_at = excluded.updated_at, version = held_alerts.version + 1",
                (route, check_key, _text(window), _text(text), tx.now, tx.now))
            return Enqueued("stored")

        try:
            result = self._write(_Job(job, ((CHECK_LOCK, f"{route}\x1f{check_key}"),),
                                      checks=((route, check_key),)))
        except psycopg.Error:
            self._note_commit(False)
            raise
        self._note_commit(True)
        return result

    def drop_held(self, route: str, check_key: str, version: int) -> bool:
        """Forget the check's held alert if it is still at `version`."""
        # RETURNING, not rowcount: in a pipeline the count is not known until the sync.
        return self._write(_Job(lambda tx: tx.cur.execute(
            "DELETE FROM held_alerts WHERE route = %s AND check_key = %s AND version = %s"
            " RETURNING version", (route, _text(check_key), version)).fetchone() is not None))

    @staticmethod
    def _record_stale(cur: Any, now: float, alert: IncomingAlert, key: tuple[str, str],
                      newest_at: str) -> None:
        cur.execute(
            "INSERT INTO stale_alerts (received_at, route, check_key, action, severity,"
            " alert_at, newest_alert_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (now, *key, alert.action, alert.severity,
             alert.asm_time, newest_at))
        cur.execute(_skip_locked_delete(
            "stale_alerts", "id <= (SELECT id FROM stale_alerts ORDER BY id DESC LIMIT 1"
            " OFFSET %s)"), (rows.STALE_KEEP,))

    def open_keys(self, route: str, check_key: str) -> frozenset[str]:
        """Urgency classes the bridge believes open for a check."""
        found = self._read("SELECT open_keys FROM check_state WHERE route = %s AND"
                           " check_key = %s", (route, _text(check_key)))
        return frozenset(found[0][0].split(",")) if found and found[0][0] else frozenset()

    # -- worker ----------------------------------------------------------------

    def claim(
        self, claims: Sequence[Claim], *, owner: str, lease_seconds: float, pace: Pace
    ) -> Claimed:
        """Lease these heads to `owner` where their key has room: one transaction, a few
        statements for all the heads of the round (not a few per head)."""
        if not claims:
            return Claimed([], {})

        def job(tx: _Tx) -> Claimed:
            cur, now = tx.cur, tx.now
            if now - self._last_sends_prune >= rows.PRUNE_EVERY:
                cur.execute(_skip_locked_delete("sends", "sent_at <= %s"),
                            (now - pace.window,))
                self._last_sends_prune = now
            held: dict[int, float] = {}
            lanes = self._free_lanes(cur, now, claims, owner, held)
            keys = sorted({c.routing_key for c in claims if c.event_id in lanes})
            windows = self._key_windows(cur, keys, now, pace.window)
            leased: list[Claim] = []
            waits: dict[int, float] = {}
            for claim in claims:
                if claim.event_id not in lanes:
                    continue
                sent, throttle = windows[claim.routing_key]
                slot = pace.next_slot(KeyWindow(tuple(sent), throttle), now)
                if slot > now:
                    waits[claim.event_id] = slot
                    continue
                sent.append(now)  # the next head on this key counts this send
                leased.append(claim)
            if not leased:
                return Claimed([], waits, held)
            ids = [c.event_id for c in leased]
            cur.execute("UPDATE events SET lease_owner = %s, lease_until = %s"
                        " WHERE id = ANY(%s)", (owner, now + lease_seconds, ids))
            cur.execute("INSERT INTO sends (routing_key, sent_at) SELECT key, %s"
                        " FROM unnest(%s::text[]) AS key", (now, [c.routing_key for c in leased]))
            events = [from_row(PendingEvent, row) for row in cur.execute(
                f"{rows.PENDING} WHERE id = ANY(%s) ORDER BY id", (ids,)).fetchall()]
            return Claimed(events, waits, held)

        keys = tuple(sorted({(KEY_LOCK, c.routing_key) for c in claims}))
        # A transaction of its own on the worker's thread, not a job of the writer's: a
        # claim waits for the database a few times (it decides on what it reads), and the
        # webhooks' commits must not queue behind that. It never waits on the writer's
        # locks (rows SKIP LOCKED, key locks only claims take), so no cycle can form.
        return self._transaction([_Job(job, keys)], relaxed=True)[0]

    @staticmethod
    def _free_lanes(cur: Any, now: float, claims: Sequence[Claim], owner: str,
                    held: dict[int, float]) -> set[int]:
        """The claimed heads that may be leased now; a lane another holds goes into `held`.

        The head rows `FOR UPDATE SKIP LOCKED` (one being delivered or moved right now is
        skipped), then each lane under `pg_try_advisory_xact_lock` (another bridge claiming
        in it right now: skipped), then, in a statement of its own so that it sees what
        such a bridge committed, whether each head is still its lane's oldest event and
        no other event of the lane holds a live lease.
        """
        found = {row[0]: row[1:] for row in cur.execute(
            "SELECT id, route, lease_owner, lease_until FROM events WHERE id = ANY(%s)"
            " ORDER BY id FOR UPDATE SKIP LOCKED", ([c.event_id for c in claims],)).fetchall()}
        heads: dict[str, int] = {}
        for claim in claims:
            if claim.event_id not in found:  # gone, or someone is at it right now
                continue
            route, holder, until = found[claim.event_id]
            if until is not None and holder != owner and until > now:
                held[claim.event_id] = until
            else:
                heads[route] = claim.event_id
        if not heads:
            return set()
        routes = sorted(heads)
        mine = [route for route, locked in cur.execute(
            "SELECT route, pg_try_advisory_xact_lock(%s::integer, hashtext(route))"
            " FROM unnest(%s::text[]) AS route", (LANE_LOCK, routes)).fetchall() if locked]
        if not mine:
            return set()
        free: set[int] = set()
        for route, head, busy_until in cur.execute(
                "SELECT lane.route, (SELECT id FROM events WHERE route = lane.route"
                " ORDER BY id LIMIT 1), (SELECT max(lease_until) FROM events WHERE"
                " route = lane.route AND id <> lane.head AND lease_owner IS NOT NULL AND"
                " lease_until > %s) FROM unnest(%s::text[], %s::bigint[]) AS lane(route, head)",
                (now, mine, [heads[r] for r in mine])).fetchall():
            if head != heads[route]:
                continue  # an older event of the lane committed meanwhile: it goes first
            if busy_until is not None:  # another event of the lane is in flight
                held[heads[route]] = busy_until
                continue
            free.add(heads[route])
        return free

    @staticmethod
    def _key_windows(cur: Any, keys: Sequence[str], now: float, window: float
                     ) -> dict[str, tuple[list[float], Throttle | None]]:
        """Per key, its sends in the look-back window (oldest first) and its throttle."""
        found: dict[str, tuple[list[float], Throttle | None]] = {k: ([], None) for k in keys}
        if not keys:
            return found
        for key, at in cur.execute(
                "SELECT routing_key, sent_at FROM sends WHERE routing_key = ANY(%s) AND"
                " sent_at > %s ORDER BY sent_at", (list(keys), now - window)).fetchall():
            found[key][0].append(at)
        for key, *limits in cur.execute(
                "SELECT routing_key, key_limit, since, not_before FROM key_throttles"
                " WHERE routing_key = ANY(%s)", (list(keys),)).fetchall():
            found[key] = (found[key][0], Throttle(*limits))
        return found

    def release_leases(self, owner: str) -> None:
        self._write(_Job(lambda tx: tx.cur.execute(
            f"UPDATE events SET {NO_LEASE} WHERE lease_owner = %s", (owner,)),
            wakes=lambda _: True))
        self._notify()  # the NOTIFY wakes the other bridges only

    def key_window(self, routing_key: str, window: float) -> KeyWindow:
        """A key's sends in the last `window` seconds and its throttle."""
        with self._pool.connection() as db, db.cursor() as cur:
            now = self._now()
            if now is None:
                (now,) = cur.execute(f"SELECT {_NOW}").fetchone()
            sent, throttle = self._key_windows(cur, [routing_key], now, window)[routing_key]
            return KeyWindow(tuple(sent), throttle)

    def get(self, event_id: int) -> PendingEvent | None:
        found = self._read(f"{rows.PENDING} WHERE id = %s", (event_id,))
        return from_row(PendingEvent, found[0]) if found else None

    def mark_delivered(self, event_id: int, *, routing_key: str) -> None:
        """Remove it; a trigger notes the key its incident opened through, a resolve forgets."""

        def job(tx: _Tx) -> None:
            # One statement, nothing to wait for before the commit.
            tx.cur.execute(_MARK_DELIVERED,
                           {"id": event_id, "key": routing_key, "now": tx.known_now})

        self._write(_Job(job), durable=False)

    def reschedule(
        self,
        event_id: int,
        *,
        next_attempt_at: float,
        error: str,
        throttle: tuple[str, Throttle] | None = None,
    ) -> None:
        """Count a failed attempt and set when to try again; a 429 throttles its key."""

        def job(tx: _Tx) -> None:
            tx.cur.execute(
                "UPDATE events SET attempts = attempts + 1, next_attempt_at = %s,"
                f" last_error = %s, {NO_LEASE} WHERE id = %s",
                (next_attempt_at, error, event_id))
            if throttle is not None:
                key, limits = throttle
                tx.cur.execute(
                    "INSERT INTO key_throttles (routing_key, key_limit, since, not_before)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (routing_key) DO UPDATE SET"
                    " key_limit = excluded.key_limit, since = excluded.since,"
                    " not_before = excluded.not_before",
                    (key, limits.limit, limits.since, limits.not_before))

        self._write(_Job(job), durable=False)

    def dead_letter(
        self,
        event_id: int,
        *,
        routing_key: str | None,
        status: int | None,
        reason: str,
        message: str,
        attempted: bool = True,
    ) -> int | None:
        """Move an event to dead letters (atomically); returns the dead letter's id."""

        def job(tx: _Tx) -> int | None:
            row = tx.cur.execute(
                f"WITH moved AS (DELETE FROM events WHERE id = %s RETURNING *)"
                f" INSERT INTO dead_letters (event_id, routing_key, {CARRIED}, created_at,"
                " attempts, status, reason, message, dead_at)"
                f" SELECT id, %s, {CARRIED}, created_at, attempts + %s, %s, %s, %s, %s"
                " FROM moved RETURNING id",
                (event_id, routing_key, 1 if attempted else 0, status, reason, message,
                 tx.now)).fetchone()
            return row[0] if row else None

        return self._write(_Job(job))

    def record_route_problem(self, route: str, reason: str, message: str) -> None:
        self._write(_Job(lambda tx: tx.cur.execute(
            "INSERT INTO route_problems (route, reason, count, last_at, message)"
            " VALUES (%s, %s, 1, %s, %s) ON CONFLICT (route, reason) DO UPDATE SET"
            " count = route_problems.count + 1, last_at = excluded.last_at,"
            " message = excluded.message", (route, reason, tx.now, message))))

    # -- operators -------------------------------------------------------------

    def backlog(self) -> list[RouteBacklog]:
        """Pending events per route, with the error of each route's latest failing event."""
        found = self._read(
            "SELECT route, COUNT(*)::integer, MIN(created_at), MAX(attempts),"
            " (SELECT last_error FROM events e2 WHERE e2.route = e.route"
            "  AND e2.last_error IS NOT NULL ORDER BY e2.id DESC LIMIT 1)"
            " FROM events e GROUP BY route ORDER BY route")
        return [RouteBacklog(*row) for row in found]

    def redrive(self, ids: Iterable[int] | None = None) -> list[int]:
        """Put dead letters back at the end of their lane; returns the ids re-driven.

        `ids=None` re-drives all of them, each behind anything already pending, with its
        attempts reset; its key is chosen again when it is sent.
        """
        wanted = None if ids is None else sorted(set(ids))

        def job(tx: _Tx) -> list[int]:
            cur = tx.cur
            if wanted is None:
                found = [r[0] for r in cur.execute(
                    "SELECT id FROM dead_letters ORDER BY id FOR UPDATE").fetchall()]
            else:
                found = [r[0] for r in cur.execute(
                    "SELECT id FROM dead_letters WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                    (wanted,)).fetchall()]
            for dead_id in found:  # one by one: each goes behind the one before
                cur.execute(
                    f"WITH moved AS (DELETE FROM dead_letters WHERE id = %s RETURNING *)"
                    f" INSERT INTO events ({CARRIED}, created_at, next_attempt_at)"
                    f" SELECT {CARRIED}, %s, %s FROM moved", (dead_id, tx.now, tx.now))
            return found

        found = self._write(_Job(job, wakes=bool))
        if found:
            self._notify()
        return found

    def record_unclaimed(
        self,
        *,
        check_id: int | None,
        check_guid: str | None,
        check_name: str,
        severity: str,
        action: str,
        body: bytes,
    ) -> None:
        """Keep a webhook no route claims (durably), pruned to the newest UNCLAIMED_KEEP."""
        text = body.decode("utf-8", errors="replace")[:rows.UNCLAIMED_BODY_CHARS]
        text, check_name = _text(text), _text(check_name)
        check_guid = None if check_guid is None else _text(check_guid)

        def job(tx: _Tx) -> None:
            tx.cur.execute(
                "INSERT INTO unclaimed (received_at, check_id, check_guid, check_name,"
                " severity, action, body, body_bytes) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                " %s)", (tx.now, check_id, check_guid, check_name, severity, action, text,
                         len(body)))
            tx.cur.execute(_skip_locked_delete(
                "unclaimed", "id <= (SELECT id FROM unclaimed ORDER BY id DESC LIMIT 1"
                " OFFSET %s)"), (rows.UNCLAIMED_KEEP,))

        self._write(_Job(job))

    def unclaimed(self) -> list[Unclaimed]:
        """Refused unclaimed webhooks, oldest first."""
        return [Unclaimed(*row) for row in self._read(
            f"SELECT {columns(Unclaimed)} FROM unclaimed ORDER BY id")]

    def stale_alerts(self) -> list[StaleAlert]:
        """Stale webhooks, oldest first (the newest STALE_KEEP)."""
        return [StaleAlert(*row) for row in self._read(
            f"SELECT {columns(StaleAlert)} FROM stale_alerts ORDER BY id")]

    def route_problems(self) -> list[RouteProblem]:
        return [RouteProblem(*row) for row in self._read(
            f"SELECT {columns(RouteProblem)} FROM route_problems ORDER BY route, reason")]

    def open_incidents(self) -> list[KeyIncidents]:
        return [KeyIncidents(*row) for row in self._read(
            "SELECT route, routing_key, COUNT(*)::integer FROM incident_keys"
            " GROUP BY route, routing_key ORDER BY route, routing_key")]

    def stats(self) -> OutboxStats:
        """Queue depth for /metrics (`metrics.watch_outbox(store.stats)`)."""
        ((pending, oldest, dead, now),) = self._read(
            "SELECT COUNT(*)::integer, MIN(created_at), (SELECT COUNT(*)::integer FROM"
            f" dead_letters), COALESCE(%s::float8, {_NOW}) FROM events", (self._now(),))
        age = max(now - oldest, 0.0) if oldest is not None else 0.0
        return OutboxStats(pending=pending, oldest_pending_age_seconds=age, dead_letters=dead)

    # -- readiness -------------------------------------------------------------

    def writable(self) -> bool:
        """For /readyz: can an alert be committed now?

        The outcome of the latest alert commit answers when it is under PROBE_EVERY old;
        else a probe commits a row (on its own connection, waiting at most PROBE_WAIT for
        one: a health check must get its answer in time).
        """
        health = self._commit_health
        if health is not None and time.monotonic() - health[1] < rows.PROBE_EVERY:
            return health[0]
        try:
            with self._pool.connection(timeout=PROBE_WAIT) as db, db.transaction():
                db.execute(
                    f"INSERT INTO probe (id, at) VALUES (1, COALESCE(%s::float8, {_NOW}))"
                    " ON CONFLICT (id) DO UPDATE SET at = excluded.at", (self._now(),))
        except PoolClosed:
            raise  # closed: not the database's problem
        except psycopg.Error:
            self._note_commit(False)
            return False
        self._note_commit(True)
        return True


class SharedDelivery:
    """The PostgreSQL store's delivery lock: always free, every bridge delivers."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._held = False

    def __str__(self) -> str:
        return f"{self._where} (shared: leases per lane)"

    @property
    def held(self) -> bool:
        return self._held

    def try_acquire(self) -> bool:
        self._held = True
        return True

    def release(self) -> None:
        self._held = False
