"""Terraform's retry loop: growing pauses, the timeout, the last error."""

from __future__ import annotations

import pytest

from sandbox.pulumi_provider.retry import RetryableError, retry_for
from tests.sandbox.pulumi_provider.conftest import FakeTime


def test_pauses_grow_to_ten_seconds_and_the_last_cause_is_raised(fake_time: FakeTime):
    attempts = []

    def failing() -> None:
        attempts.append(fake_time.now)
        raise RetryableError(ValueError(f"attempt {len(attempts)}"))

    with pytest.raises(ValueError, match=r"attempt 10$"):
        retry_for(60, failing, fake_time.timing)
    assert fake_time.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]
    assert fake_time.now <= 60


def test_a_success_after_retries_and_an_error_that_is_not_retried(fake_time: FakeTime):
    answers = iter([RetryableError(KeyError("busy")), "done"])

    def flaky() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retry_for(120, flaky, fake_time.timing) == "done"
    assert fake_time.sleeps == [0.5]

    def refused() -> None:
        raise PermissionError("400 means stop")

    with pytest.raises(PermissionError):
        retry_for(120, refused, fake_time.timing)
    assert fake_time.sleeps == [0.5]
