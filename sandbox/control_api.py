"""`/sandbox/*`: a view of what happened, fault control and seeding for other processes.

POST /sandbox/seed                              users, schedules, ... (see sandbox.seed)
GET  /sandbox/incidents[?service_id=&status=]   incidents as JSON
GET  /sandbox/events                            every enqueue request, routing keys shortened
GET  /sandbox/change_events[?service_id=]       accepted change events, by service
GET  /sandbox/change_requests                   every change enqueue request, keys shortened
GET  /sandbox/faults                            active faults
POST /sandbox/faults  {"action": "fail" | "rate_limit" | "latency" | "clear", ...}
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.faults import Faults
from sandbox.seed import SeedError, apply_seed
from sandbox.state import SandboxState
from sandbox.view import short_key


def control_routes(state: SandboxState, faults: Faults) -> list[Route]:
    async def incidents(request: Request) -> JSONResponse:
        query = request.query_params
        found = state.incidents(service_id=query.get("service_id"), status=query.get("status"))
        return JSONResponse({"incidents": found})

    async def events(request: Request) -> JSONResponse:
        # This view may be printed by the demo: never show a routing key in full.
        return JSONResponse({"events": [_shortened(e) for e in state.events()]})

    async def change_events(request: Request) -> JSONResponse:
        found = state.change_events(service_id=request.query_params.get("service_id"))
        return JSONResponse({"change_events": found})

    async def change_requests(request: Request) -> JSONResponse:
        return JSONResponse(
            {"change_requests": [_shortened(e) for e in state.change_requests()]}
        )

    async def seed(request: Request) -> JSONResponse:
        try:
            created = apply_seed(state, json.loads(await request.body()))
        except (ValueError, SeedError) as exc:
            return JSONResponse({"error": f"bad seed: {exc}"}, status_code=400)
        return JSONResponse(created, status_code=201)

    return [
        Route("/sandbox/seed", seed, methods=["POST"]),
        Route("/sandbox/incidents", incidents, methods=["GET"]),
        Route("/sandbox/events", events, methods=["GET"]),
        Route("/sandbox/change_events", change_events, methods=["GET"]),
        Route("/sandbox/change_requests", change_requests, methods=["GET"]),
        *fault_routes(faults),
    ]


def fault_routes(faults: Faults) -> list[Route]:
    """`GET/POST /sandbox/faults`, for any fake that has `Faults`."""

    async def get_faults(request: Request) -> JSONResponse:
        return JSONResponse(faults.describe())

    async def set_faults(request: Request) -> JSONResponse:
        try:
            command = json.loads(await request.body())
            _apply(faults, command)
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse({"error": f"bad fault command: {exc}"}, status_code=400)
        return JSONResponse(faults.describe())

    return [
        Route("/sandbox/faults", get_faults, methods=["GET"]),
        Route("/sandbox/faults", set_faults, methods=["POST"]),
    ]


def _apply(faults: Faults, command: Any) -> None:
    if not isinstance(command, dict):
        raise TypeError("expected a JSON object")
    args = {k: v for k, v in command.items() if k != "action"}
    action = command.get("action")
    if action == "fail":
        faults.fail(**args)
    elif action == "rate_limit":
        faults.rate_limit(**args)
    elif action == "latency":
        faults.latency(float(args["seconds"]))
    elif action == "clear":
        faults.clear()
    else:
        raise ValueError("action must be fail, rate_limit, latency or clear")


def _shortened(entry: dict[str, Any]) -> dict[str, Any]:
    body = entry.get("body")
    if isinstance(body, dict) and isinstance(body.get("routing_key"), str):
        body = {**body, "routing_key": short_key(body["routing_key"])}
    return {**entry, "body": body}
