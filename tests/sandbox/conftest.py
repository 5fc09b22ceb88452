"""Sandbox fixtures: a running sandbox on a manual clock, a service and its routing key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from sandbox.clock import ManualClock
from sandbox.server import PagerDutySandbox

# A Monday, 12:00 UTC: inside 09:00-17:00 weekday support hours in UTC.
MONDAY_NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY_NOON)


@pytest.fixture
def pd(clock: ManualClock) -> Iterator[PagerDutySandbox]:
    with PagerDutySandbox(clock=clock, token="test-token") as sandbox:
        yield sandbox


@pytest.fixture
def service(pd: PagerDutySandbox) -> dict[str, Any]:
    return pd.state.create_service(name="Checkout API", urgency="severity_based")


@pytest.fixture
def key(pd: PagerDutySandbox, service: dict[str, Any]) -> str:
    return pd.state.add_integration(service["id"], name="Apica-Checkout-API")["integration_key"]


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def trigger(key: str, dedup_key: str | None = "check-101", **payload: Any) -> dict[str, Any]:
    """A valid trigger event; keyword arguments override payload fields."""
    event: dict[str, Any] = {
        "routing_key": key,
        "event_action": "trigger",
        "payload": {
            "summary": "Checkout login failed",
            "source": "asm-agent-stockholm",
            "severity": "critical",
            **payload,
        },
    }
    if dedup_key is not None:
        event["dedup_key"] = dedup_key
    return event


def change(key: str, **overrides: Any) -> dict[str, Any]:
    """A valid change event (`/v2/change/enqueue`); keyword arguments replace top-level fields."""
    event: dict[str, Any] = {
        "routing_key": key,
        "payload": {
            "summary": "escalation policy Payments On-call: rule 1: escalate after: 30m -> 10m",
            "source": "apica-pd",
            "timestamp": "2026-01-05T11:58:00.000+0000",
            "custom_details": {"stack": "prod"},
        },
        "links": [{"href": "https://github.com/org/stacks/commit/abc123", "text": "commit abc123"}],
    }
    return {**event, **overrides}
