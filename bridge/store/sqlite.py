"""The SQLite store: one file holding every event until PagerDuty took it.

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

Every write is a job of the group commit (`bridge.store.group_commit`) on the writer
connection. Reads use a second connection (WAL: readers and the writer never wait for
each other). Other processes (the CLI) may open the same file; `busy_timeout` makes
them wait for each other instead of failing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from bridge.errors import StoreError
from bridge.store.base import EventsFor
from bridge.store.file_lock import FileLock
from bridge.store.group_commit import GroupCommit, Job
from bridge.store.records import (
    DeadLetter,
    LaneHead,
    OutboxStats,
    PendingEvent,
    RouteBacklog,
    StoredEvent,
    Unclaimed,
)
from bridge.store.sqlite_schema import migrate, require_current

OUTBOX_FILENAME = "outbox.sqlite3"
DEFAULT_DUPLICATE_WINDOW = 60.0
# Forget duplicate fingerprints at most this often (seconds), not on every write.
PRUNE_EVERY = 1.0
# Webhooks refused because no route claims their check: the newest kept, bodies cut.
UNCLAIMED_KEEP = 1000
UNCLAIMED_BODY_CHARS = 4096
T = TypeVar("T")
E = TypeVar("E", bound=StoredEvent)

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


def _columns(record: type[Any]) -> str:
    """The table's columns for a record: its fields, by name and in order."""
    return ", ".join(f.name for f in fields(record))


def _from_row(record: type[E], row: Sequence[Any]) -> E:
    values = dict(zip((f.name for f in fields(record)), row, strict=True))
    values["body"] = json.loads(values["body"])
    return record(**values)


_PENDING = f"SELECT {_columns(PendingEvent)} FROM events"
# What an event carries from table to table (events -> dead letters -> events).
_CARRIED = "route, routing_key, check_key, action, dedup_key, body"
_DEAD = f"SELECT {_columns(DeadLetter)} FROM dead_letters"


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


class SqliteStore:
    """The store in one SQLite file. Thread-safe; `close()` when done (or use `with`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
        read_only: bool = False,
    ) -> None:
        """`read_only`: for looking (the CLI): nothing is created, migrated or written."""
        self.path = Path(path)
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
                migrate(self._db, str(self.path))
        except BaseException:
            self._db.close()
            raise
        self._last_prune = 0.0
        self._writer = GroupCommit(self._transaction, closed_error=sqlite3.ProgrammingError)
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

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after new events are committed (the worker wakes up)."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    def delivery_lock(self) -> FileLock:
        """A `flock` next to the database, shared by every process that opens it."""
        return FileLock(self.path.with_name(self.path.name + ".deliver.lock"))

    def _transaction(self, jobs: Sequence[Job[Any]]) -> list[Any]:
        # BEGIN IMMEDIATE takes the write lock up front: no upgrade deadlocks with
        # another process, and read-then-write (check state) is atomic.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                results = [job(self._db) for job in jobs]
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return results

    def _write(self, job: Job[T]) -> T:
        return self._writer.run(job)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    # -- intake ----------------------------------------------------------------

    def enqueue(
        self, *, route: str, check_key: str, fingerprint: str | None, events_for: EventsFor
    ) -> int | None:
        """Store `events_for`'s events in one transaction; None if an exact duplicate.

        Returns the number of events stored once they are committed to disk.
        """
        count = self._write(self._enqueue_job(route, check_key, fingerprint, events_for))
        if count is not None:
            self._notify()
        return count

    async def enqueue_async(
        self, *, route: str, check_key: str, fingerprint: str | None, events_for: EventsFor
    ) -> int | None:
        """`enqueue` for an event loop: awaits the commit without holding a thread."""
        job = self._enqueue_job(route, check_key, fingerprint, events_for)
        count = await self._writer.submit_async(job)
        if count is not None:
            self._notify()
        return count

    def _enqueue_job(
        self, route: str, check_key: str, fingerprint: str | None, events_for: EventsFor
    ) -> Job[int | None]:
        now = self._clock()

        def job(db: sqlite3.Connection) -> int | None:
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
            events, open_after = events_for(open_now)
            db.executemany(
                f"INSERT INTO events ({_CARRIED}, created_at, next_attempt_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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

        return job

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
        rows = self._read(f"{_PENDING} WHERE id = ?", (event_id,))
        return _from_row(PendingEvent, rows[0]) if rows else None

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

        def job(db: sqlite3.Connection) -> int | None:
            cursor = db.execute(
                f"INSERT INTO dead_letters (event_id, {_CARRIED}, created_at, attempts, status,"
                " reason, message, dead_at)"
                f" SELECT id, {_CARRIED}, created_at, attempts + ?, ?, ?, ?, ?"
                " FROM events WHERE id = ?",
                (1 if attempted else 0, status, reason, message, now, event_id),
            )
            if cursor.rowcount == 0:
                return None
            db.execute("DELETE FROM events WHERE id = ?", (event_id,))
            return cursor.lastrowid

        return self._write(job)

    # -- operators -------------------------------------------------------------

    def pending(self, limit: int | None = None) -> list[PendingEvent]:
        sql = f"{_PENDING} ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_from_row(PendingEvent, row) for row in self._read(sql)]

    def backlog(self) -> list[RouteBacklog]:
        """Pending events per route, with the error of each route's latest failing event."""
        rows = self._read(
            "SELECT route, COUNT(*), MIN(created_at), MAX(attempts),"
            " (SELECT last_error FROM events e2 WHERE e2.route = e.route"
            "  AND e2.last_error IS NOT NULL ORDER BY e2.id DESC LIMIT 1)"
            " FROM events e GROUP BY route ORDER BY route"
        )
        return [RouteBacklog(*row) for row in rows]

    def dead_letters(self, ids: Iterable[int] | None = None) -> list[DeadLetter]:
        wanted = None if ids is None else set(ids)
        letters = [_from_row(DeadLetter, row) for row in self._read(f"{_DEAD} ORDER BY id")]
        return [d for d in letters if wanted is None or d.id in wanted]

    def redrive(self, ids: Iterable[int] | None = None) -> list[int]:
        """Put dead letters back at the end of their lane; returns the ids re-driven.

        `ids=None` re-drives all of them. Each goes behind anything already pending,
        with its attempts reset: a person decided it is worth sending again.
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
                db.execute(
                    f"INSERT INTO events ({_CARRIED}, created_at, next_attempt_at)"
                    f" SELECT {_CARRIED}, ?, ? FROM dead_letters WHERE id = ?",
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
        text = body.decode("utf-8", errors="replace")[:UNCLAIMED_BODY_CHARS]

        def job(db: sqlite3.Connection) -> None:
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

        self._write(job)

    def unclaimed(self) -> list[Unclaimed]:
        """Refused unclaimed webhooks, oldest first."""
        return [Unclaimed(*row) for row in self._read(
            f"SELECT {_columns(Unclaimed)} FROM unclaimed ORDER BY id"
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

    def writable(self) -> bool:
        """For /readyz: can a write transaction be opened right now?"""
        try:
            self._write(lambda db: db.execute("SELECT 1"))
        except sqlite3.Error:
            return False
        return True


def _dump(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)

