"""The assembled ASGI app, in-process (no socket): every part is mounted."""

from __future__ import annotations

from starlette.testclient import TestClient

from sandbox.app import build_app
from sandbox.clock import ManualClock
from sandbox.faults import Faults
from sandbox.ratelimit import RateLimiter
from sandbox.state import SandboxState


def test_events_rest_and_view_are_all_served():
    clock = ManualClock()
    app = build_app(SandboxState(clock), Faults(clock), RateLimiter(120, clock), token="tok")
    client = TestClient(app)
    assert client.post("/v2/enqueue", json={}).status_code == 400
    assert client.get("/vendors").status_code == 401
    assert client.get("/vendors", headers={"Authorization": "Token token=tok"}).status_code == 200
    assert client.get("/sandbox/events").json() == {
        "events": [{"status": 400, "body": {}, "received_at": "2026-01-05T12:00:00Z"}]
    }
