"""The durable outbox: SQLite file holding every event until PagerDuty took it.

Durability: WAL with `synchronous=FULL`. In WAL mode NORMAL already survives a
process crash (`kill -9`), but it may lose the last commits on power loss or an OS
crash, and the bridge has told ASM "202" by then while ASM never retries. FULL
fsyncs the WAL on every commit, which costs well under 0.1 ms on the target
machines, so the 202 means "on disk".

Delivery is at least once: an event is deleted only after PagerDuty's 2xx, so a
crash between the 2xx and the delete sends it again, which PagerDuty absorbs by
dedup key (a repeated trigger merges, a repeated resolve is a no-op).

Order is the autoincrement id: per routing key, the worker only ever sends the
lowest pending id (head of line), so a resolve never overtakes its trigger.

Group commit: every write runs on one writer thread, which takes all writes
queued while it was busy and commits them in one transaction, so one fsync
covers a batch and each caller still returns only after its own commit. (One
transaction per caller made threads queue on the lock, and the holder had to win
the GIL back after each statement: the throughput ceiling under load.) A batch
whose unit fails is rolled back and replayed one unit per transaction, so one bad
alert never takes others down with it. Reads use a second connection (WAL:
readers and the writer never wait for each other).
Other processes (the CLI) may open the same file; `busy_timeout` makes them wait
for each other instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bridge.metrics import OutboxStats

OUTBOX_FILENAME = "outbox.sqlite3"
DEFAULT_DUPLICATE_WINDOW = 60.0
SCHEMA_VERSION = 2
MAX_BATCH = 256
# Forget duplicate fingerprints at most this often (seconds), not on every write.
PRUNE_EVERY = 1.0
# Webhooks refused because no route claims their check: the newest kept, bodies cut.
UNCLAIMED_KEEP = 1000
UNCLAIMED_BODY_CHARS = 4096
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
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
);
CREATE INDEX IF NOT EXISTS events_lane ON events (routing_key, id);
CREATE TABLE IF NOT EXISTS dead_letters (
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
);
CREATE TABLE IF NOT EXISTS check_state (
    route TEXT NOT NULL,
    check_key TEXT NOT NULL,
    open_keys TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (route, check_key)
);
-- The latest accepted alert of each check, for exact-duplicate suppression: a
-- webhook is a duplicate only if it repeats this one (F, I, F is three alerts).
CREATE TABLE IF NOT EXISTS last_alerts (
    route TEXT NOT NULL,
    check_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (route, check_key)
);
CREATE INDEX IF NOT EXISTS last_alerts_seen ON last_alerts (seen_at);
-- Schema 1 kept every fingerprint of the window, whatever came after it.
DROP TABLE IF EXISTS recent_alerts;
-- Webhooks refused (422) because no route claims the check: kept so a person can
-- add the check to a stack file (`apica-pd unclaimed`); the newest UNCLAIMED_KEEP.
CREATE TABLE IF NOT EXISTS unclaimed (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    check_id INTEGER,
    check_guid TEXT,
    check_name TEXT NOT NULL,
    severity TEXT NOT NULL,
    action TEXT NOT NULL,
    body TEXT NOT NULL,
    body_bytes INTEGER NOT NULL
);
"""

_EVENT_COLUMNS = (
    "id, route, routing_key, check_key, action, dedup_key, body, created_at, attempts, "
    "next_attempt_at, last_error"
)
# Skip-scan over the (routing_key, id) index: one index probe per routing key, so
# the worker's scan costs O(keys * log n) however long the backlog is (a GROUP BY
# would read the whole index on every wake-up).
_LANE_HEADS = """
WITH RECURSIVE lane(key) AS (
    SELECT MIN(routing_key) FROM events
    UNION ALL
    SELECT (SELECT MIN(routing_key) FROM events WHERE routing_key > lane.key)
    FROM lane WHERE lane.key IS NOT NULL
)
SELECT id, routing_key, next_attempt_at FROM events WHERE id IN (
    SELECT (SELECT id FROM events WHERE routing_key = lane.key ORDER BY id LIMIT 1)
    FROM lane WHERE lane.key IS NOT NULL
) ORDER BY id
"""


@dataclass(frozen=True)
class NewEvent:
    """An event to store: the full Events API body plus what the worker needs to route it."""

    routing_key: str
    action: str
    dedup_key: str
    body: dict[str, Any]


@dataclass(frozen=True)
class PendingEvent:
    id: int
    route: str
    routing_key: str
    check_key: str
    action: str
    dedup_key: str
    body: dict[str, Any]
    created_at: float
    attempts: int
    next_attempt_at: float
    last_error: str | None


@dataclass(frozen=True)
class LaneHead:
    """Just enough to schedule a lane; the body is read only when it is sent."""

    id: int
    routing_key: str
    next_attempt_at: float


@dataclass(frozen=True)
class DeadLetter:
    id: int
    event_id: int
    route: str
    routing_key: str
    check_key: str
    action: str
    dedup_key: str
    body: dict[str, Any]
    created_at: float
    attempts: int
    status: int | None
    reason: str
    message: str
    dead_at: float


@dataclass(frozen=True)
class Unclaimed:
    """A webhook refused because no route claims its check (body cut to a few KB)."""

    id: int
    received_at: float
    check_id: int | None
    check_guid: str | None
    check_name: str
    severity: str
    action: str
    body: str
    body_bytes: int


@dataclass(frozen=True)
class RouteBacklog:
    route: str
    pending: int
    oldest_created_at: float
    max_attempts: int
    last_error: str | None


# Given the check's open urgency classes, return the events to store and the
# classes open afterwards. Runs inside the write transaction.
Planner = Callable[[frozenset[str]], tuple[Sequence[NewEvent], frozenset[str]]]


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


_STOP = object()
# A committed (or failed) unit: its future, its result, its exception.
_Outcome = tuple[Any, Any, BaseException | None]


def _settle(outcomes: list[_Outcome]) -> None:
    """Resolve the futures of committed units; asyncio ones with one call per loop."""
    on_loops: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        future, value, exc = outcome
        if isinstance(future, asyncio.Future):
            on_loops.setdefault(future.get_loop(), []).append(outcome)
        elif exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)
    for loop, settled in on_loops.items():
        # RuntimeError: the loop is closed, nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle_on_loop, settled)


def _settle_on_loop(outcomes: list[_Outcome]) -> None:
    for future, value, exc in outcomes:
        if future.done():  # the waiting request was cancelled; the unit committed anyway
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)


class _GroupCommit:
    """One writer thread running queued units of work, many per transaction."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._state = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="outbox-writer", daemon=True)
        self._thread.start()

    def run(self, unit: Callable[[sqlite3.Connection], T]) -> T:
        """Run `unit(db)` in a transaction; returns once that transaction is committed."""
        return self.submit(unit).result()

    def submit(self, unit: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Queue `unit`; the future resolves once its transaction is committed."""
        future: Future[T] = Future()
        self._put(unit, future)
        return future

    def submit_async(self, unit: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """`submit` from an event loop: an asyncio future of the running loop.

        A committed batch settles all its asyncio futures with one call into their
        loop. (One `asyncio.wrap_future` per caller woke the loop once per future, a
        self-pipe write each, and the writer thread lost the GIL at every one.)
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._put(unit, future)
        return future

    def _put(self, unit: Callable[[sqlite3.Connection], Any], future: Any) -> None:
        with self._state:
            if self._closed:
                # A late caller (a send finishing after shutdown) must fail, not wait forever.
                raise sqlite3.ProgrammingError("the outbox is closed")
            self._queue.put((unit, future))

    def stop(self) -> None:
        with self._state:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)  # after everything queued so far: that still commits
        self._thread.join()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stopping = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            _settle(self._commit(batch))
            if stopping:
                return

    def _commit(self, batch: list[tuple[Callable[[sqlite3.Connection], Any], Any]]
                ) -> list[_Outcome]:
        """Commit the batch's units; (future, result, exception) for each."""
        try:
            results = self._transaction([unit for unit, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                return [(batch[0][1], None, exc)]
            # Find the failing unit; the others still commit.
            return [outcome for single in batch for outcome in self._commit([single])]
        return [(future, value, None) for (_, future), value in zip(batch, results, strict=True)]

    def _transaction(self, units: list[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
        # BEGIN IMMEDIATE takes the write lock up front: no upgrade deadlocks with
        # another process, and read-then-write (check state) is atomic.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                results = [unit(self._db) for unit in units]
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return results


class Outbox:
    """Durable event store. Thread-safe; `close()` when done (or use `with`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._window = duplicate_window
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        _create_private(self.path)
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        with self._lock:
            # Idempotent DDL; executescript runs it in autocommit mode.
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._last_prune = 0.0
        self._writer = _GroupCommit(self._db, self._lock)
        # Reads (the worker's lane scans, /metrics) get their own connection: in WAL
        # mode they then never wait for a commit and never hold one up. Sharing the
        # writer's connection made the group commit wait behind each lane scan.
        self._read_lock = threading.Lock()
        self._reader = sqlite3.connect(
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

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after new events are committed (the worker wakes up)."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    def _write(self, unit: Callable[[sqlite3.Connection], T]) -> T:
        return self._writer.run(unit)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    # -- intake ----------------------------------------------------------------

    def enqueue(
        self, *, route: str, check_key: str, fingerprint: str | None, planner: Planner
    ) -> int | None:
        """Store the planned events in one transaction; None if an exact duplicate.

        Returns the number of events stored once they are committed to disk.
        """
        count = self._write(self._enqueue_unit(route, check_key, fingerprint, planner))
        if count is not None:
            self._notify()
        return count

    async def enqueue_async(
        self, *, route: str, check_key: str, fingerprint: str | None, planner: Planner
    ) -> int | None:
        """`enqueue` for an event loop: awaits the commit without holding a thread."""
        unit = self._enqueue_unit(route, check_key, fingerprint, planner)
        count = await self._writer.submit_async(unit)
        if count is not None:
            self._notify()
        return count

    def _enqueue_unit(
        self, route: str, check_key: str, fingerprint: str | None, planner: Planner
    ) -> Callable[[sqlite3.Connection], int | None]:
        now = self._clock()

        def unit(db: sqlite3.Connection) -> int | None:
            if now - self._last_prune >= PRUNE_EVERY:
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
                return None
            if fingerprint is not None:
                db.execute(
                    "INSERT OR REPLACE INTO last_alerts (route, check_key, fingerprint, seen_at)"
                    " VALUES (?, ?, ?, ?)",
                    (route, check_key, fingerprint, now),
                )
            elif last is not None:  # an alert without a fingerprint is still the latest
                db.execute("DELETE FROM last_alerts WHERE route = ? AND check_key = ?",
                           (route, check_key))
            open_now = self._open_keys(db, route, check_key)
            events, open_after = planner(open_now)
            db.executemany(
                "INSERT INTO events (route, routing_key, check_key, action, dedup_key, body,"
                " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (route, e.routing_key, check_key, e.action, e.dedup_key,
                     _dump(e.body), now, now)
                    for e in events
                ],
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
            return len(events)

        return unit

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

    def lane_heads(self) -> list[LaneHead]:
        """The oldest pending event of each routing key: the only one that may be sent."""
        return [LaneHead(*row) for row in self._read(_LANE_HEADS)]

    def get(self, event_id: int) -> PendingEvent | None:
        rows = self._read(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,))
        return _pending(rows[0]) if rows else None

    def mark_delivered(self, event_id: int) -> None:
        self._write(lambda db: db.execute("DELETE FROM events WHERE id = ?", (event_id,)))

    def reschedule(self, event_id: int, *, next_attempt_at: float, error: str) -> None:
        """Count a failed attempt and set when to try again."""
        self._write(lambda db: db.execute(
            "UPDATE events SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE id = ?",
            (next_attempt_at, error, event_id),
        ))

    def dead_letter(
        self,
        event_id: int,
        *,
        status: int | None,
        reason: str,
        message: str,
        attempted: bool = True,
    ) -> int | None:
        """Move an event to dead letters (atomically); returns the dead letter's id."""
        now = self._clock()

        def unit(db: sqlite3.Connection) -> int | None:
            cursor = db.execute(
                "INSERT INTO dead_letters (event_id, route, routing_key, check_key, action,"
                " dedup_key, body, created_at, attempts, status, reason, message, dead_at)"
                " SELECT id, route, routing_key, check_key, action, dedup_key, body, created_at,"
                " attempts + ?, ?, ?, ?, ? FROM events WHERE id = ?",
                (1 if attempted else 0, status, reason, message, now, event_id),
            )
            if cursor.rowcount == 0:
                return None
            db.execute("DELETE FROM events WHERE id = ?", (event_id,))
            return cursor.lastrowid

        return self._write(unit)

    # -- operators -------------------------------------------------------------

    def pending(self, limit: int | None = None) -> list[PendingEvent]:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_pending(r) for r in self._read(sql)]

    def backlog(self) -> list[RouteBacklog]:
        """Pending events per route, with the error of each route's oldest failing event."""
        rows = self._read(
            "SELECT route, COUNT(*), MIN(created_at), MAX(attempts),"
            " (SELECT last_error FROM events e2 WHERE e2.route = e.route"
            "  AND e2.last_error IS NOT NULL ORDER BY e2.id DESC LIMIT 1)"
            " FROM events e GROUP BY route ORDER BY route"
        )
        return [RouteBacklog(*row) for row in rows]

    def dead_letters(self, ids: Iterable[int] | None = None) -> list[DeadLetter]:
        rows = self._read(
            "SELECT id, event_id, route, routing_key, check_key, action, dedup_key, body,"
            " created_at, attempts, status, reason, message, dead_at FROM dead_letters"
            " ORDER BY id"
        )
        wanted = None if ids is None else set(ids)
        return [
            DeadLetter(*row[:7], json.loads(row[7]), *row[8:])
            for row in rows
            if wanted is None or row[0] in wanted
        ]

    def redrive(self, ids: Iterable[int] | None = None) -> list[int]:
        """Put dead letters back at the end of their lane; returns the ids re-driven.

        `ids=None` re-drives all of them. Each goes behind anything already pending,
        with its attempts reset: a person decided it is worth sending again.
        """
        now = self._clock()
        wanted = None if ids is None else sorted(set(ids))
        def unit(db: sqlite3.Connection) -> list[int]:
            if wanted is None:
                found = [r[0] for r in db.execute("SELECT id FROM dead_letters ORDER BY id")]
            else:
                found = [
                    i for i in wanted
                    if db.execute("SELECT 1 FROM dead_letters WHERE id = ?", (i,)).fetchone()
                ]
            for dead_id in found:
                db.execute(
                    "INSERT INTO events (route, routing_key, check_key, action, dedup_key, body,"
                    " created_at, next_attempt_at) SELECT route, routing_key, check_key, action,"
                    " dedup_key, body, ?, ? FROM dead_letters WHERE id = ?",
                    (now, now, dead_id),
                )
                db.execute("DELETE FROM dead_letters WHERE id = ?", (dead_id,))
            return found

        found = self._write(unit)
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
        text = body.decode("utf-8", errors="replace")[:UNCLAIMED_BODY_CHARS]

        def unit(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO unclaimed (received_at, check_id, check_guid, check_name, severity,"
                " action, body, body_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (now, check_id, check_guid, check_name, severity, action, text, len(body)),
            )
            db.execute(
                "DELETE FROM unclaimed WHERE id <= (SELECT id FROM unclaimed ORDER BY id DESC"
                " LIMIT 1 OFFSET ?)",
                (UNCLAIMED_KEEP,),
            )

        self._write(unit)

    def unclaimed(self) -> list[Unclaimed]:
        """Refused unclaimed webhooks, oldest first."""
        return [Unclaimed(*row) for row in self._read(
            "SELECT id, received_at, check_id, check_guid, check_name, severity, action, body,"
            " body_bytes FROM unclaimed ORDER BY id"
        )]

    def stats(self) -> OutboxStats:
        """Queue depth for /metrics (`metrics.watch_outbox(outbox.stats)`)."""
        with self._read_lock:
            pending, oldest = self._reader.execute(
                "SELECT COUNT(*), MIN(created_at) FROM events"
            ).fetchone()
            (dead,) = self._reader.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        age = max(self._clock() - oldest, 0.0) if oldest is not None else 0.0
        return OutboxStats(pending=pending, oldest_pending_age_seconds=age, dead_letters=dead)

    def writable(self) -> bool:
        """For /readyz: can a write transaction be opened right now?"""
        try:
            self._write(lambda db: db.execute("SELECT 1"))
        except sqlite3.Error:
            return False
        return True


def _dump(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _pending(row: tuple[Any, ...]) -> PendingEvent:
    return PendingEvent(*row[:6], json.loads(row[6]), *row[7:])
