"""The assembled ASGI app, in-process (no socket): every part is mounted."""

from __future__ import annotations

import asyncio

import httpx

from sandbox.app import build_app
from sandbox.clock import ManualClock
from sandbox.faults import Faults
from sandbox.ratelimit import RateLimiter
from sandbox.state import SandboxState


async def _exercise(app) -> list[tuple[int, object]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        auth = {"Authorization": "Token token=tok"}
        answers = [
            await client.post("/v2/enqueue", json={}),
            await client.get("/vendors"),
            await client.get("/vendors", headers=auth),
            await client.get("/sandbox/events"),
        ]
    return [(a.status_code, a.json()) for a in answers]


def test_events_rest_and_view_are_all_served():
    clock = ManualClock()
    app = build_app(SandboxState(clock), Faults(clock), RateLimiter(120, clock), token="tok")
    enqueue, unauthorised, vendors, events = asyncio.run(_exercise(app))
    assert enqueue[0] == 400
    assert unauthorised[0] == 401
    assert vendors[0] == 200
    assert "Apica" in [v["name"] for v in vendors[1]["vendors"]]
    assert events == (
        200,
        {"events": [{"status": 400, "body": {}, "received_at": "2026-01-05T12:00:00Z"}]},
    )
