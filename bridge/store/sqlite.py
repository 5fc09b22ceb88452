"""The SQLite store: one file holding every event until PagerDuty took it.

Durability: WAL with `synchronous=FULL`. In WAL mode NORMAL already survives a
process crash (`kill -9`), but it may lose the last commits on power loss or an OS
crash, and the bridge has told ASM "202" by then while ASM never retries. FULL
fsyncs the WAL on every commit, which costs well under 0.1 ms on the target
machines, so the 202 means "on disk".

Delivery is at least once: an event is deleted only after PagerDuty's 2xx, so a
crash between the 2xx and the delete sends it again, which PagerDuty absorbs by
dedup key (a repeated trigger merges, a repeated resolve is a no-op). The delivery
bookkeeping (claims, delivered marks, reschedules) therefore commits with
`synchronous=NORMAL`, without an fsync of its own: like every WAL commit it survives a
crash of the process (`kill -9`), and it reaches the disk with the next alert's commit;
an OS crash before that re-sends an event at worst. That took two of the three fsyncs
per event off the path from a webhook to PagerDuty.

Order is the autoincrement id: per route (the lane), the worker only ever sends the
lowest pending id (head of line), so a resolve never overtakes its trigger, whatever
key each goes to.

Every write is a job of the group commit (`bridge.store.group_commit`) on the writer
connection. Reads use a second connection (WAL: readers and the writer never wait for
each other). Other processes (the CLI) may open the same file; `busy_timeout` makes
them wait for each other instead of failing. One process delivers at a time (a
`flock`, `delivery_lock`); the leases on lane heads carry over its restarts.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bridge.errors import StoreError
from bridge.store import rows
from bridge.store.base import EventsFor, Pace
from bridge.store.file_lock import FileLock
from bridge.store.group_commit import GroupCommit, Job
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
from bridge.store.sqlite_schema import migrate, require_current

OUTBOX_FILENAME = "outbox.sqlite3"
# The readiness probe's row: larger than an alert's events, so a probe that fits means an
# alert fits.
PROBE_BYTES = 64 << 10
T = TypeVar("T")

# Skip-scan over the (route, id) index: one index probe per route, so the worker's scan
# costs O(routes * log n) however long the backlog is (a GROUP BY would read the whole
# index on every wake-up). The incident's key comes along for choosing where to send.
_LANE_HEADS = """
WITH RECURSIVE lane(route) AS (
    SELECT MIN(route) FROM events
    UNION ALL
    SELECT (SELECT MIN(route) FROM events WHERE route > lane.route)
    FROM lane WHERE lane.route IS NOT NULL
)
SELECT e.id, e.route, e.action, e.dedup_key, e.next_attempt_at, e.lease_owner,
       e.lease_until, k.routing_key
FROM events e LEFT JOIN incident_keys k ON k.route = e.route AND k.dedup_key = e.dedup_key
WHERE e.id IN (
    SELECT (SELECT id FROM events WHERE route = lane.route ORDER BY id LIMIT 1)
    FROM lane WHERE lane.route IS NOT NULL
) ORDER BY e.id
"""




def outbox_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / OUTBOX_FILENAME


def _create_private(path: Path) -> None:
    """Make the data dir (0700) and the file (0600) before SQLite touches them.

    SQLite gives its -wal and -shm files the main file's mode, so they stay private too.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)  # tighten a file created elsewhere with a looser umask


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that writes nothing (SQLite `mode=ro`).

    Reading a WAL database needs its -shm index; where that cannot be made (a full
    disk, a directory without write access) and the WAL holds no commits, the file is
    read as it is (`immutable=1`).
    """
    uri = path.absolute().as_uri()

    def connect(mode: str) -> sqlite3.Connection:
        db = sqlite3.connect(f"{uri}?{mode}", uri=True, isolation_level=None,
                             check_same_thread=False, timeout=10.0)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("PRAGMA user_version").fetchone()  # opens the file and its index
        except BaseException:
            db.close()
            raise
        return db

    try:
        return connect("mode=ro")
    except sqlite3.OperationalError as exc:
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size:
            raise StoreError(
                f"{path}: cannot be read without write access while its write-ahead log "
                f"holds commits ({exc}); run this as the bridge's user"
            ) from None
    return connect("immutable=1")


class SqliteStore(SqlStore):
    """The store in one SQLite file. Thread-safe; `close()` when done (or use `with`).

    `max_bytes` caps the file (SQLite's `max_page_count`): a full outbox then refuses
    writes with SQLITE_FULL, as a full disk does.
    """

    DRIVER_ERROR = sqlite3.Error
    LANE_HEADS = _LANE_HEADS

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        duplicate_window: float = rows.DEFAULT_DUPLICATE_WINDOW,
        read_only: bool = False,
        max_bytes: int | None = None,
    ) -> None:
        """`read_only`: for looking (the CLI): nothing is created, migrated or written."""
        self.path = Path(path)
        self.where = str(self.path)
        # (schema version found, version now), for `apica-pd store migrate`.
        self.migrated: tuple[int, int] | None = None
        self._clock = clock
        self._window = duplicate_window
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        if read_only:
            self._db = _connect_read_only(self.path)
        else:
            _create_private(self.path)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
        try:
            if read_only:
                require_current(self._db, str(self.path))
            else:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute("PRAGMA busy_timeout=10000")
                self.migrated = migrate(self._db, str(self.path))
            if max_bytes is not None:
                (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
                self._db.execute(f"PRAGMA max_page_count={max(int(max_bytes) // page_size, 1)}")
        except BaseException:
            self._db.close()
            raise
        self._last_prune = 0.0
        self._last_sends_prune = 0.0
        # The outcome of the latest alert commit or probe, for /readyz: (ok, monotonic time).
        self._commit_health: tuple[bool, float] | None = None
        self._synchronous = "FULL"
        self._writer = GroupCommit(
            self._transaction, closed_error=sqlite3.ProgrammingError,
            relaxed=functools.partial(self._transaction, synchronous="NORMAL"))
        # Reads (the worker's lane scans, /metrics) get their own connection: in WAL
        # mode they then never wait for a commit and never hold one up. Sharing the
        # writer's connection made the group commit wait behind each lane scan.
        self._read_lock = threading.Lock()
        self._reader = _connect_read_only(self.path) if read_only else sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._reader.execute("PRAGMA busy_timeout=10000")
        self._reader.execute("PRAGMA query_only=1")

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        """Commit what is queued, then close; later calls raise `sqlite3.ProgrammingError`."""
        self._writer.stop()
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._db.close()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after new events are committed (the worker wakes up)."""
        self._listeners.append(listener)

    def delivery_lock(self) -> FileLock:
        """A `flock` next to the database, shared by every process that opens it."""
        return FileLock(self.path.with_name(self.path.name + ".deliver.lock"))

    def _transaction(self, jobs: Sequence[Job[Any]], synchronous: str = "FULL") -> list[Any]:
        # BEGIN IMMEDIATE takes the write lock up front: no upgrade deadlocks with
        # another process, and read-then-write (check state) is atomic.
        with self._lock:
            if synchronous != self._synchronous:  # only outside a transaction
                self._db.execute(f"PRAGMA synchronous={synchronous}")
                self._synchronous = synchronous
            self._db.execute("BEGIN IMMEDIATE")
            try:
                results = [job(self._db) for job in jobs]
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return results

    def _write(self, job: Job[T], *, durable: bool = True) -> T:
        return self._writer.run(job, durable=durable)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    # -- intake ----------------------------------------------------------------

    def _enqueue_job(self, alert: IncomingAlert, events_for: EventsFor) -> Job[Enqueued]:
        now = self._clock()
        route, check_key = alert.route, alert.check_key

        def job(db: sqlite3.Connection) -> Enqueued:
            refused = self._admit(db, alert, now)
            if refused is not None:
                return refused
            open_now = self._open_keys(db, route, check_key)
            events, open_after = events_for(open_now)
            db.executemany(
                f"INSERT INTO events ({CARRIED}, created_at, next_attempt_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(route, check_key, e.action, e.dedup_key, dump_body(e.body), now, now)
                 for e in events],
            )
            if open_after:
                db.execute(
                    "INSERT OR REPLACE INTO check_state (route, check_key, open_keys, updated_at)"
                    " VALUES (?, ?, ?, ?)",
                    (route, check_key, ",".join(sorted(open_after)), now),
                )
            else:
                db.execute(
                    "DELETE FROM check_state WHERE route = ? AND check_key = ?",
                    (route, check_key),
                )
            return Enqueued("stored", len(events))

        return job

    def _admit(self, db: sqlite3.Connection, alert: IncomingAlert, now: float
               ) -> Enqueued | None:
        """A duplicate or stale verdict for `alert`; None once it is taken as the check's
        latest alert (its fingerprint and ASM time recorded)."""
        route, check_key, fingerprint = alert.route, alert.check_key, alert.fingerprint
        if now - self._last_prune >= rows.PRUNE_EVERY:
            db.execute("DELETE FROM last_alerts WHERE seen_at < ?", (now - self._window,))
            self._last_prune = now
        # A duplicate repeats the check's *latest* accepted alert: F, I, F within the
        # window is a re-trigger after a resolve, not a copy of the first F.
        last = db.execute(
            "SELECT fingerprint, seen_at FROM last_alerts WHERE route = ? AND check_key = ?",
            (route, check_key),
        ).fetchone()
        if (fingerprint is not None and last is not None and last[0] == fingerprint
                and last[1] >= now - self._window):
            return Enqueued("duplicate")
        newest = self._newer_alert(db, alert, now)
        if newest is not None:
            return Enqueued("stale", newest_alert_at=newest)
        if fingerprint is not None:
            db.execute(
                "INSERT OR REPLACE INTO last_alerts (route, check_key, fingerprint, seen_at)"
                " VALUES (?, ?, ?, ?)",
                (route, check_key, fingerprint, now),
            )
        elif last is not None:  # an alert without a fingerprint is still the latest
            db.execute("DELETE FROM last_alerts WHERE route = ? AND check_key = ?",
                       (route, check_key))
        return None

    # -- maintenance windows ---------------------------------------------------

    def hold(self, alert: IncomingAlert, *, window: str, record: dict[str, Any]) -> Enqueued:
        """Keep `record` as the check's held alert in the alert's transaction: duplicate and
        stale rules as for `enqueue`; no event, open urgency classes unchanged."""
        now = self._clock()
        text = rows.dump_held(record)

        def job(db: sqlite3.Connection) -> Enqueued:
            refused = self._admit(db, alert, now)
            if refused is not None:
                return refused
            db.execute(
                "INSERT INTO held_alerts (route, check_key, window_name, alert, held_at,"
                " updated_at, version) VALUES (?, ?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (route, check_key) DO UPDATE SET"
                " window_name = excluded.window_name, alert = excluded.alert,"
                " updated_at = excluded.updated_at, version = version + 1",
                (alert.route, alert.check_key, window, text, now, now),
            )
            return Enqueued("stored")

        try:
            result = self._write(job)
        except sqlite3.Error:
            self._note_commit(False)
            raise
        self._note_commit(True)
        return result

    def drop_held(self, route: str, check_key: str, version: int) -> bool:
        """Forget the check's held alert if it is still at `version`."""
        return bool(self._write(lambda db: db.execute(
            "DELETE FROM held_alerts WHERE route = ? AND check_key = ? AND version = ?",
            (route, check_key, version)).rowcount))

    @staticmethod
    def _newer_alert(db: sqlite3.Connection, alert: IncomingAlert, now: float) -> str | None:
        """The check's newest ASM timestamp if `alert` is stale (and recorded as such);
        else None, with `alert` taken as the check's newest where it is."""
        if alert.asm_time is None:
            return None  # no timestamp: it cannot be told, so it is never stale
        key = (alert.route, alert.check_key)
        row = db.execute(
            "SELECT newest_at, fingerprints FROM check_alerts WHERE route = ? AND check_key = ?",
            key,
        ).fetchone()
        seen = row[1].split(",") if row and row[1] else []
        if row is not None and (alert.asm_time < row[0] or (
                alert.asm_time == row[0] and alert.fingerprint in seen)):
            db.execute(
                "INSERT INTO stale_alerts (received_at, route, check_key, action, severity,"
                " alert_at, newest_alert_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, *key, alert.action, alert.severity, alert.asm_time, row[0]),
            )
            db.execute(
                "DELETE FROM stale_alerts WHERE id <= (SELECT id FROM stale_alerts ORDER BY id"
                " DESC LIMIT 1 OFFSET ?)",
                (rows.STALE_KEEP,),
            )
            return row[0]
        if row is None or alert.asm_time > row[0]:
            seen = []
        if alert.fingerprint is not None:
            seen = [*seen, alert.fingerprint][-rows.FINGERPRINTS_AT_NEWEST:]
        db.execute(
            "INSERT OR REPLACE INTO check_alerts (route, check_key, newest_at, fingerprints)"
            " VALUES (?, ?, ?, ?)",
            (*key, alert.asm_time, ",".join(seen)),
        )
        return None

    @staticmethod
    def _open_keys(db: sqlite3.Connection, route: str, check_key: str) -> frozenset[str]:
        row = db.execute(
            "SELECT open_keys FROM check_state WHERE route = ? AND check_key = ?",
            (route, check_key),
        ).fetchone()
        return frozenset(row[0].split(",")) if row and row[0] else frozenset()

    def open_keys(self, route: str, check_key: str) -> frozenset[str]:
        """Urgency classes the bridge believes open for a check."""
        with self._read_lock:
            return self._open_keys(self._reader, route, check_key)

    # -- worker ----------------------------------------------------------------

    def claim(
        self, claims: Sequence[Claim], *, owner: str, lease_seconds: float, pace: Pace
    ) -> Claimed:
        """Lease these heads to `owner` where their key has room: one transaction."""
        if not claims:
            return Claimed([], {})

        def job(db: sqlite3.Connection) -> Claimed:
            now = self._clock()
            if now - self._last_sends_prune >= rows.PRUNE_EVERY:
                db.execute("DELETE FROM sends WHERE sent_at <= ?", (now - pace.window,))
                self._last_sends_prune = now
            leased: list[int] = []
            waits: dict[int, float] = {}
            held: dict[int, float] = {}
            for claim in claims:
                row = db.execute("SELECT lease_owner, lease_until FROM events WHERE id = ?",
                                 (claim.event_id,)).fetchone()
                if row is None:  # gone meanwhile (delivered, re-driven elsewhere)
                    continue
                holder, until = row
                if until is not None and holder != owner and until > now:
                    held[claim.event_id] = until
                    continue
                slot = pace.next_slot(self._key_window(db, claim.routing_key, now,
                                                       pace.window), now)
                if slot > now:
                    waits[claim.event_id] = slot
                    continue
                db.execute("UPDATE events SET lease_owner = ?, lease_until = ? WHERE id = ?",
                           (owner, now + lease_seconds, claim.event_id))
                db.execute("INSERT INTO sends (routing_key, sent_at) VALUES (?, ?)",
                           (claim.routing_key, now))
                leased.append(claim.event_id)
            marks = ", ".join("?" * len(leased))
            events = [from_row(PendingEvent, row) for row in db.execute(
                f"{rows.PENDING} WHERE id IN ({marks}) ORDER BY id", leased)] if leased else []
            return Claimed(events, waits, held)

        return self._write(job, durable=False)

    def release_leases(self, owner: str) -> None:
        self._write(lambda db: db.execute(
            f"UPDATE events SET {NO_LEASE} WHERE lease_owner = ?", (owner,)))

    @staticmethod
    def _key_window(db: sqlite3.Connection, routing_key: str, now: float,
                    window: float) -> KeyWindow:
        sent = tuple(at for (at,) in db.execute(
            "SELECT sent_at FROM sends WHERE routing_key = ? AND sent_at > ? ORDER BY sent_at",
            (routing_key, now - window)))
        row = db.execute(
            "SELECT key_limit, since, not_before FROM key_throttles WHERE routing_key = ?",
            (routing_key,),
        ).fetchone()
        return KeyWindow(sent, Throttle(*row) if row else None)

    def key_window(self, routing_key: str, window: float) -> KeyWindow:
        """A key's sends in the last `window` seconds and its throttle."""
        with self._read_lock:
            return self._key_window(self._reader, routing_key, self._clock(), window)

    def get(self, event_id: int) -> PendingEvent | None:
        found = self._read(f"{rows.PENDING} WHERE id = ?", (event_id,))
        return from_row(PendingEvent, found[0]) if found else None

    def mark_delivered(self, event_id: int, *, routing_key: str) -> None:
        """Remove it; a trigger notes the key its incident opened through, a resolve forgets."""
        now = self._clock()

        def job(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT route, action, dedup_key FROM events WHERE id = ?",
                             (event_id,)).fetchone()
            if row is None:
                return
            route, action, dedup_key = row
            if action == "trigger":
                db.execute(
                    "INSERT OR REPLACE INTO incident_keys (route, dedup_key, routing_key,"
                    " opened_at) VALUES (?, ?, ?, COALESCE((SELECT opened_at FROM"
                    " incident_keys WHERE route = ? AND dedup_key = ? AND routing_key = ?),"
                    " ?))",
                    (route, dedup_key, routing_key, route, dedup_key, routing_key, now),
                )
            elif action == "resolve":
                db.execute("DELETE FROM incident_keys WHERE route = ? AND dedup_key = ?",
                           (route, dedup_key))
            db.execute("DELETE FROM events WHERE id = ?", (event_id,))

        self._write(job, durable=False)

    def reschedule(
        self,
        event_id: int,
        *,
        next_attempt_at: float,
        error: str,
        throttle: tuple[str, Throttle] | None = None,
    ) -> None:
        """Count a failed attempt and set when to try again; a 429 throttles its key."""

        def job(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE events SET attempts = attempts + 1, next_attempt_at = ?,"
                f" last_error = ?, {NO_LEASE} WHERE id = ?",
                (next_attempt_at, error, event_id),
            )
            if throttle is not None:
                key, limits = throttle
                db.execute(
                    "INSERT OR REPLACE INTO key_throttles (routing_key, key_limit, since,"
                    " not_before) VALUES (?, ?, ?, ?)",
                    (key, limits.limit, limits.since, limits.not_before),
                )

        self._write(job, durable=False)

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
        now = self._clock()

        def job(db: sqlite3.Connection) -> int | None:
            cursor = db.execute(
                f"INSERT INTO dead_letters (event_id, routing_key, {CARRIED}, created_at,"
                " attempts, status, reason, message, dead_at)"
                f" SELECT id, ?, {CARRIED}, created_at, attempts + ?, ?, ?, ?, ?"
                " FROM events WHERE id = ?",
                (routing_key, 1 if attempted else 0, status, reason, message, now, event_id),
            )
            if cursor.rowcount == 0:
                return None
            db.execute("DELETE FROM events WHERE id = ?", (event_id,))
            return cursor.lastrowid

        return self._write(job)

    def record_route_problem(self, route: str, reason: str, message: str) -> None:
        now = self._clock()
        self._write(lambda db: db.execute(
            "INSERT INTO route_problems (route, reason, count, last_at, message)"
            " VALUES (?, ?, 1, ?, ?) ON CONFLICT (route, reason) DO UPDATE SET"
            " count = count + 1, last_at = excluded.last_at, message = excluded.message",
            (route, reason, now, message),
        ))

    # -- operators -------------------------------------------------------------

    def backlog(self) -> list[RouteBacklog]:
        """Pending events per route, with the error of each route's latest failing event."""
        rows = self._read(
            "SELECT route, COUNT(*), MIN(created_at), MAX(attempts),"
            " (SELECT last_error FROM events e2 WHERE e2.route = e.route"
            "  AND e2.last_error IS NOT NULL ORDER BY e2.id DESC LIMIT 1)"
            " FROM events e GROUP BY route ORDER BY route"
        )
        return [RouteBacklog(*row) for row in rows]

    def redrive(self, ids: Iterable[int] | None = None) -> list[int]:
        """Put dead letters back at the end of their lane; returns the ids re-driven.

        `ids=None` re-drives all of them. Each goes behind anything already pending,
        with its attempts reset: a person decided it is worth sending again. Its key is
        chosen again when it is sent.
        """
        now = self._clock()
        wanted = None if ids is None else sorted(set(ids))

        def job(db: sqlite3.Connection) -> list[int]:
            if wanted is None:
                found = [r[0] for r in db.execute("SELECT id FROM dead_letters ORDER BY id")]
            else:
                found = [
                    i for i in wanted
                    if db.execute("SELECT 1 FROM dead_letters WHERE id = ?", (i,)).fetchone()
                ]
            for dead_id in found:
                # Letters of a version 3 store still carry their key in the body.
                db.execute(
                    f"INSERT INTO events ({CARRIED}, created_at, next_attempt_at)"
                    " SELECT route, check_key, action, dedup_key,"
                    " json_remove(body, '$.routing_key'), ?, ? FROM dead_letters WHERE id = ?",
                    (now, now, dead_id),
                )
                db.execute("DELETE FROM dead_letters WHERE id = ?", (dead_id,))
            return found

        found = self._write(job)
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
        now = self._clock()
        text = body.decode("utf-8", errors="replace")[:rows.UNCLAIMED_BODY_CHARS]

        def job(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO unclaimed (received_at, check_id, check_guid, check_name, severity,"
                " action, body, body_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (now, check_id, check_guid, check_name, severity, action, text, len(body)),
            )
            db.execute(
                "DELETE FROM unclaimed WHERE id <= (SELECT id FROM unclaimed ORDER BY id DESC"
                " LIMIT 1 OFFSET ?)",
                (rows.UNCLAIMED_KEEP,),
            )

        self._write(job)

    def unclaimed(self) -> list[Unclaimed]:
        """Refused unclaimed webhooks, oldest first."""
        return [Unclaimed(*row) for row in self._read(
            f"SELECT {columns(Unclaimed)} FROM unclaimed ORDER BY id"
        )]

    def stale_alerts(self) -> list[StaleAlert]:
        """Stale webhooks, oldest first (the newest STALE_KEEP)."""
        return [StaleAlert(*row) for row in self._read(
            f"SELECT {columns(StaleAlert)} FROM stale_alerts ORDER BY id"
        )]

    def route_problems(self) -> list[RouteProblem]:
        return [RouteProblem(*row) for row in self._read(
            f"SELECT {columns(RouteProblem)} FROM route_problems ORDER BY route, reason"
        )]

    def open_incidents(self) -> list[KeyIncidents]:
        return [KeyIncidents(*row) for row in self._read(
            "SELECT route, routing_key, COUNT(*) FROM incident_keys"
            " GROUP BY route, routing_key ORDER BY route, routing_key"
        )]

    def stats(self) -> OutboxStats:
        """Queue depth for /metrics (`metrics.watch_outbox(store.stats)`)."""
        with self._read_lock:
            pending, oldest = self._reader.execute(
                "SELECT COUNT(*), MIN(created_at) FROM events"
            ).fetchone()
            (dead,) = self._reader.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        age = max(self._clock() - oldest, 0.0) if oldest is not None else 0.0
        return OutboxStats(pending=pending, oldest_pending_age_seconds=age, dead_letters=dead)

    # -- readiness -------------------------------------------------------------

    def writable(self) -> bool:
        """For /readyz: can an alert be committed now?

        The outcome of the latest alert commit answers when it is under PROBE_EVERY old;
        else a probe commits a row of PROBE_BYTES and deletes it in one transaction (a
        rolled-back write would not find a full disk: SQLite writes at commit).
        """
        health = self._commit_health
        if health is not None and time.monotonic() - health[1] < rows.PROBE_EVERY:
            return health[0]
        now = self._clock()

        def probe(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO probe (id, at, pad) VALUES (1, ?, zeroblob(?))",
                       (now, PROBE_BYTES))
            db.execute("DELETE FROM probe")

        try:
            self._write(probe)
        except sqlite3.ProgrammingError:
            raise  # closed: not a disk problem
        except sqlite3.Error:
            self._note_commit(False)
            return False
        self._note_commit(True)
        return True
