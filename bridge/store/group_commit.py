"""Group commit: one writer thread runs queued jobs, many per transaction, one commit for all.

Every write to the store is a job: a function run inside a transaction on the writer's
connection. The writer takes all jobs queued while it was busy and commits them
together, so one fsync covers a batch, and each caller still returns only after its
own commit. (One transaction per caller made threads queue on the lock, and the holder
had to win the GIL back after each statement: the throughput ceiling under load.) A
batch with a failing job is rolled back and replayed one job per transaction, so one
bad alert never takes the others down with it, unless the failure is the database's
rather than a job's (`unreachable`: no connection could be had): replaying then would
only make each caller wait again.

The backend supplies `transaction(jobs)`: run them in one transaction and commit, or
roll back and raise. It may also supply `relaxed(jobs)`, the same with a commit that
need not reach the disk by itself (SQLite: no fsync of its own; it is on disk with the
next durable commit, and survives a crash of the process anyway): used for a batch of
only `durable=False` jobs, the delivery bookkeeping whose loss in an OS crash re-sends
an event at worst. Without it every batch is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")
#: Runs inside a transaction, given the writer's connection.
Job = Callable[[Any], T]
Transaction = Callable[[Sequence[Job[Any]]], list[Any]]

MAX_BATCH = 256
_STOP = object()
# A committed (or failed) job: its future, its result, its exception.
_Outcome = tuple[Any, Any, BaseException | None]


class GroupCommit:
    """`run(job)` / `submit(job)` / `submit_async(job)`; `stop()` commits what is queued."""

    def __init__(
        self,
        transaction: Transaction,
        *,
        closed_error: Callable[[str], BaseException],
        unreachable: Callable[[BaseException], bool] = lambda exc: False,
        relaxed: Transaction | None = None,
        name: str = "outbox-writer",
    ) -> None:
        self._transaction = transaction
        self._unreachable = unreachable
        self._relaxed = relaxed
        # What a job submitted after stop() raises: the backend's own closed error, as
        # its reads raise once the connection is closed.
        self._closed_error = closed_error
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._state = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def run(self, job: Job[T], *, durable: bool = True) -> T:
        """Run `job` in a transaction; returns once that transaction is committed
        (`durable=False`: maybe without an fsync of its own, see above)."""
        return self.submit(job, durable=durable).result()

    def submit(self, job: Job[T], *, durable: bool = True) -> Future[T]:
        """Queue `job`; the future resolves once its transaction is committed."""
        future: Future[T] = Future()
        self._put(job, future, durable)
        return future

    def submit_async(self, job: Job[T]) -> asyncio.Future[T]:
        """`submit` from an event loop: an asyncio future of the running loop.

        A committed batch settles all its asyncio futures with one call into their
        loop. (One `asyncio.wrap_future` per caller woke the loop once per future, a
        self-pipe write each, and the writer thread lost the GIL at every one.)
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._put(job, future, True)
        return future

    def _put(self, job: Job[Any], future: Any, durable: bool) -> None:
        with self._state:
            if self._closed:
                # A late caller (a send finishing after shutdown) must fail, not wait forever.
                raise self._closed_error("the outbox is closed")
            self._queue.put(_Queued(job, future, durable))

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

    def _commit(self, batch: list[_Queued]) -> list[_Outcome]:
        """Commit the batch's jobs; (future, result, exception) for each."""
        try:
            results = self._transaction_for(batch)([queued.job for queued in batch])
        except Exception as exc:
            if len(batch) == 1 or self._unreachable(exc):
                return [(queued.future, None, exc) for queued in batch]
            # Find the failing job; the others still commit.
            return [outcome for single in batch for outcome in self._commit([single])]
        return [(queued.future, value, None)
                for queued, value in zip(batch, results, strict=True)]

    def _transaction_for(self, batch: list[_Queued]) -> Transaction:
        if self._relaxed is not None and not any(queued.durable for queued in batch):
            return self._relaxed
        return self._transaction


class _Queued(NamedTuple):
    """A submitted job, the future its caller waits on, and whether it needs the fsync."""

    job: Job[Any]
    future: Any
    durable: bool


def _settle(outcomes: list[_Outcome]) -> None:
    """Resolve the futures of committed jobs; asyncio ones with one call per loop."""
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
        if future.done():  # the waiting request was cancelled; the job committed anyway
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)
