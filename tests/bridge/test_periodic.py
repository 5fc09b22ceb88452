"""bridge.periodic: a step at start and every interval, alive past a failing step."""

from __future__ import annotations

import threading

from bridge.periodic import Periodic


def test_a_failing_step_is_reported_and_the_next_one_still_runs() -> None:
    calls: list[str] = []
    third = threading.Event()

    def step() -> None:
        calls.append("step")
        if len(calls) == 3:
            third.set()
        if len(calls) == 1:
            raise RuntimeError("surprise")

    failures: list[str] = []
    job = Periodic("test-job", step, 0.01, lambda: failures.append("failed"), join_timeout=5)
    job.start()
    job.start()  # a second start is a no-op: still one thread
    assert third.wait(5)
    job.stop()
    assert failures == ["failed"]
    assert len([t for t in threading.enumerate() if t.name == "test-job"]) == 0


def test_the_first_step_runs_at_start_and_stop_ends_the_wait() -> None:
    ran = threading.Event()
    job = Periodic("test-slow", ran.set, 3600.0, lambda: None, join_timeout=5)
    assert not job.stopping
    job.start()
    assert ran.wait(5)
    job.stop()  # returns although the next step is an hour away
    assert job.stopping
    assert [t for t in threading.enumerate() if t.name == "test-slow"] == []

