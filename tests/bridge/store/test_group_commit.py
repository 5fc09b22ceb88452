"""Group commit with a recording transaction: batching, a failing job alone, closing."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bridge.store.group_commit import GroupCommit


class Closed(Exception):
    pass


class Recorder:
    """A transaction that runs jobs on a list (the "connection") and records each commit."""

    def __init__(self) -> None:
        self.rows: list[object] = []
        self.commits: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, jobs):
        self.entered.set()
        self.gate.wait(5)
        staged = list(self.rows)
        results = [job(staged) for job in jobs]  # raises: nothing of the batch is kept
        self.rows = staged
        self.commits.append(len(jobs))
        return results


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def writer(recorder):
    writer = GroupCommit(recorder, closed_error=Closed)
    yield writer
    writer.stop()


def append(value):
    def job(rows):
        rows.append(value)
        return len(rows)

    return job


def failing(rows):
    raise ValueError("bad job")


def test_run_returns_the_jobs_result_after_its_commit(writer, recorder):
    assert writer.run(append("a")) == 1
    assert (recorder.rows, recorder.commits) == (["a"], [1])


def test_jobs_queued_while_the_writer_is_busy_share_one_commit(writer, recorder):
    recorder.gate.clear()
    first = writer.submit(append("first"))
    assert recorder.entered.wait(5)  # the writer waits inside the first commit
    queued = [writer.submit(append(i)) for i in range(5)]
    recorder.gate.set()
    assert [f.result(5) for f in (first, *queued)] == [1, 2, 3, 4, 5, 6]
    assert recorder.commits == [1, 5]


def test_a_failing_job_fails_alone_and_the_others_commit(writer, recorder):
    recorder.gate.clear()
    writer.submit(append("first"))
    assert recorder.entered.wait(5)
    good, bad, other = (writer.submit(append("b")), writer.submit(failing),
                        writer.submit(append("c")))
    recorder.gate.set()
    assert (good.result(5), other.result(5)) == (2, 3)
    with pytest.raises(ValueError, match="bad job"):
        bad.result(5)
    assert recorder.rows == ["first", "b", "c"]


def test_async_submit_settles_on_the_callers_loop(writer, recorder):
    async def scenario():
        return await asyncio.gather(*(writer.submit_async(append(i)) for i in range(3)))

    assert sorted(asyncio.run(scenario())) == [1, 2, 3]


def test_stop_commits_what_is_queued_and_later_jobs_fail(recorder):
    writer = GroupCommit(recorder, closed_error=Closed)
    recorder.gate.clear()
    futures = [writer.submit(append(i)) for i in range(3)]
    assert recorder.entered.wait(5)
    stopper = threading.Thread(target=writer.stop)
    stopper.start()
    recorder.gate.set()
    stopper.join(5)
    assert [f.result(0) for f in futures] == [1, 2, 3]
    with pytest.raises(Closed, match="the outbox is closed"):
        writer.run(append("late"))
    writer.stop()  # idempotent


class Unreachable(Exception):
    pass


def test_a_database_that_cannot_be_reached_fails_the_batch_at_once(recorder):
    """No replay one job at a time: each caller would wait for a connection again."""
    calls = []

    def transaction(jobs):
        calls.append(len(jobs))
        recorder.gate.wait(5)
        raise Unreachable("no connection")

    writer = GroupCommit(transaction, closed_error=Closed,
                         unreachable=lambda exc: isinstance(exc, Unreachable))
    try:
        recorder.gate.clear()
        first = writer.submit(append(0))
        while not calls:
            threading.Event().wait(0.01)
        rest = [writer.submit(append(i)) for i in range(1, 5)]
        recorder.gate.set()
        for future in (first, *rest):
            with pytest.raises(Unreachable):
                future.result(5)
        assert calls == [1, 4]
    finally:
        writer.stop()


def test_only_a_batch_of_relaxed_jobs_commits_through_relaxed(recorder):
    relaxed: list[int] = []

    def relaxed_transaction(jobs):
        relaxed.append(len(jobs))
        return recorder(jobs)

    writer = GroupCommit(recorder, closed_error=Closed, relaxed=relaxed_transaction)
    try:
        recorder.gate.clear()
        first = writer.submit(append("first"))
        assert recorder.entered.wait(5)
        both_relaxed = [writer.submit(append(i), durable=False) for i in (1, 2)]
        recorder.gate.set()
        assert [f.result(5) for f in (first, *both_relaxed)] == [1, 2, 3]

        recorder.gate.clear()
        recorder.entered.clear()
        alone = writer.submit(append("x"), durable=False)
        assert recorder.entered.wait(5)
        mixed = [writer.submit(append("y"), durable=False), writer.submit(append("z"))]
        recorder.gate.set()
        assert [f.result(5) for f in (alone, *mixed)] == [4, 5, 6]
    finally:
        writer.stop()
    assert recorder.commits == [1, 2, 1, 2]
    assert relaxed == [2, 1]  # the mixed batch was durable


def test_without_a_relaxed_transaction_every_job_is_durable(writer, recorder):
    assert writer.run(append("a"), durable=False) == 1
    assert recorder.commits == [1]
