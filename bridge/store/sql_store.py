"""What the SQLite and the PostgreSQL store do alike, written once over each one's own SQL.

A backend gives its reads and writes (`_read`, `_write`, its group-commit `_writer`),
the enqueue transaction (`_enqueue_job`), its lane-heads query (`LANE_HEADS`) and what
its driver raises (`DRIVER_ERROR`): the intake's commit bookkeeping, the listeners and
the plain listings are these.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from bridge.store import rows
from bridge.store.base import EventsFor
from bridge.store.records import (
    DeadLetter,
    Enqueued,
    HeldAlert,
    IncomingAlert,
    LaneHead,
    PendingEvent,
)

if TYPE_CHECKING:
    from typing import Self

    from bridge.store.group_commit import GroupCommit, Job


class SqlStore:
    """The shared part of `SqliteStore` and `PostgresStore`."""

    DRIVER_ERROR: ClassVar[type[Exception]]
    LANE_HEADS: ClassVar[str]

    _writer: GroupCommit
    _listeners: list[Callable[[], None]]
    # The outcome of the latest alert commit or probe, for /readyz: (ok, monotonic time).
    _commit_health: tuple[bool, float] | None

    if TYPE_CHECKING:
        def close(self) -> None: ...
        def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
        def _write(self, job: Any, *, durable: bool = True) -> Any: ...
        def _enqueue_job(self, alert: IncomingAlert, events_for: EventsFor) -> Job[Enqueued]: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    # -- intake ----------------------------------------------------------------

    def enqueue(self, alert: IncomingAlert, events_for: EventsFor) -> Enqueued:
        """Store `events_for`'s events in one transaction, unless a duplicate or stale.

        Returns once they are committed durably (SQLite: fsync'd; PostgreSQL:
        synchronous_commit on).
        """
        try:
            result = self._write(self._enqueue_job(alert, events_for))
        except self.DRIVER_ERROR:
            self._note_commit(False)
            raise
        return self._enqueued(result)

    async def enqueue_async(self, alert: IncomingAlert, events_for: EventsFor) -> Enqueued:
        """`enqueue` for an event loop: awaits the commit without holding a thread.

        The listeners (the worker) are told on the loop's next turn: after the caller
        (the webhook handler) has written its 202, which otherwise waited for the
        worker's thread to let go of the GIL.
        """
        try:
            result = await self._writer.submit_async(self._enqueue_job(alert, events_for))
        except self.DRIVER_ERROR:
            self._note_commit(False)
            raise
        return self._enqueued(result, asyncio.get_running_loop().call_soon)

    def _enqueued(self, result: Enqueued,
                  later: Callable[[Callable[[], None]], object] | None = None) -> Enqueued:
        self._note_commit(True)
        if result.verdict == "stored":
            if later is None:
                self._notify()
            else:
                later(self._notify)
        return result

    def _note_commit(self, ok: bool) -> None:
        self._commit_health = (ok, time.monotonic())

    # -- listings --------------------------------------------------------------

    def held_alerts(self) -> list[HeldAlert]:
        """Every held alert, oldest hold first."""
        return [rows.held_from_row(row) for row in self._read(rows.HELD_ALERTS)]

    def lane_heads(self) -> list[LaneHead]:
        """The oldest pending event of each route: the only one that may be sent."""
        return [LaneHead(*row) for row in self._read(self.LANE_HEADS)]

    def pending(self, limit: int | None = None) -> list[PendingEvent]:
        sql = f"{rows.PENDING} ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [rows.from_row(PendingEvent, row) for row in self._read(sql)]

    def dead_letters(self, ids: Iterable[int] | None = None) -> list[DeadLetter]:
        wanted = None if ids is None else set(ids)
        letters = [rows.from_row(DeadLetter, row)
                   for row in self._read(f"{rows.DEAD_LETTERS} ORDER BY id")]
        return [d for d in letters if wanted is None or d.id in wanted]
