"""The assembled ASGI app, in-process (no socket): every part is mounted."""

from __future__ import annotations

import asyncio
import http.client
import json

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


async def _ask(app, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        return await client.request(method, path, headers={"Authorization": "Token token=tok"})


def test_unknown_routes_answer_pagerdutys_404_and_log_a_warning(caplog):
    clock = ManualClock()
    app = build_app(SandboxState(clock), Faults(clock), RateLimiter(120, clock), token="tok")
    with caplog.at_level("WARNING", logger="sandbox"):
        unknown = asyncio.run(_ask(app, "GET", "/business_services?query=x"))
        wrong_method = asyncio.run(_ask(app, "PATCH", "/services"))
    for answer in (unknown, wrong_method):
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {"error": {"message": "Not Found", "code": 2100}}
    assert [r.getMessage() for r in caplog.records] == [
        "sandbox: no such route: GET /business_services?query=x (answered 404; PagerDuty may "
        "serve it)",
        "sandbox: no such route: PATCH /services (answered 404; PagerDuty may serve it)",
    ]
    assert all(r.levelname == "WARNING" for r in caplog.records)


def test_rest_limiter_is_optional():
    clock = ManualClock()
    app = build_app(SandboxState(clock), Faults(clock), RateLimiter(120, clock), token="tok")
    answer = asyncio.run(_ask(app, "GET", "/abilities"))
    assert answer.status_code == 200
    assert "ratelimit-limit" not in answer.headers


def test_a_trailing_slash_on_the_api_url_shows_as_an_unknown_route(pd, caplog):
    # The Go clients join base URL and path as strings: "http://host:port/" + "/services".
    connection = http.client.HTTPConnection("127.0.0.1", pd.port, timeout=5)
    with caplog.at_level("WARNING", logger="sandbox"):
        connection.request("GET", "//services", headers={"Authorization": "Token token=test-token"})
        answer = connection.getresponse()
    assert answer.status == 404
    assert json.loads(answer.read()) == {"error": {"message": "Not Found", "code": 2100}}
    connection.close()
    assert "sandbox: no such route: GET //services" in caplog.text
