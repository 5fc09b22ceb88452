"""The ASM sandbox's control API (`/sandbox/*`), for the demo and other processes.

POST   /sandbox/seed                      {"checks": [check, ...]} (see `apply_asm_seed`)
GET    /sandbox/checks                    {"checks": [...]}, every check
POST   /sandbox/checks                    one check: `AsmState.add_check` arguments
PATCH  /sandbox/checks/{id}               `AsmState.update_check` arguments
DELETE /sandbox/checks/{id}
POST   /sandbox/checks/{id}/results       `AsmState.set_severity` arguments (`at`: ISO 8601)
GET    /sandbox/requests                  every /v3 request with its status
GET    /sandbox/faults, POST /sandbox/faults   as the PagerDuty sandbox's

Bad input answers 400 `{"error": "..."}`, an unknown check 404.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.asm_state import AsmState, NoSuchCheck
from sandbox.control_api import fault_routes
from sandbox.faults import Faults

Handler = Callable[[Request], Awaitable[Response]]


def apply_asm_seed(state: AsmState, doc: Any) -> list[dict[str, Any]]:
    """Add `doc["checks"]`: each entry `add_check`'s arguments, and optionally `"result":
    {set_severity's arguments}`. Checked whole first, so a bad seed adds nothing."""
    if not isinstance(doc, dict) or set(doc) - {"checks"}:
        raise ValueError('a seed is {"checks": [...]}')
    entries = doc.get("checks", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError("checks must be a list of objects")
    with state.lock:
        trial = AsmState(state.clock)  # a dry run: the same rules, nothing kept
        for check in state.checks():
            trial.add_check(check["name"], id=check["id"], guid=check["guid"])
        for entry in entries:
            _seed_one(trial, entry)
        return [_seed_one(state, entry) for entry in entries]


def _seed_one(state: AsmState, entry: dict[str, Any]) -> dict[str, Any]:
    fields = dict(entry)
    result = fields.pop("result", None)
    if "name" not in fields:
        raise ValueError("every check needs a name")
    check = state.add_check(**fields)
    if result is not None:
        if not isinstance(result, dict) or "severity" not in result:
            raise ValueError("result must be an object with a severity")
        state.set_severity(check["id"], **_result_arguments(result))
        check = state.check(check["id"]) or check
    return check


def _result_arguments(body: dict[str, Any]) -> dict[str, Any]:
    arguments = dict(body)
    if "at" in arguments:
        arguments["at"] = datetime.fromisoformat(arguments["at"])
    return arguments


def asm_control_routes(state: AsmState, faults: Faults) -> list[Route]:
    def handler(work: Callable[[Request, Any], Any], status: int = 200) -> Handler:
        async def handle(request: Request) -> Response:
            try:
                raw = await request.body()
                body = json.loads(raw) if raw else None
                answer = work(request, body)
            except NoSuchCheck as exc:
                return JSONResponse({"error": str(exc)}, status_code=404)
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
            if answer is None:
                return Response(status_code=204)
            return JSONResponse(answer, status_code=status)

        return handle

    def check_id(request: Request) -> int:
        return int(request.path_params["check_id"])

    def fields(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        return body

    return [
        Route("/sandbox/seed", handler(lambda r, b: {"checks": apply_asm_seed(state, b)}, 201),
              methods=["POST"]),
        Route("/sandbox/checks", handler(lambda r, b: {"checks": state.checks()}),
              methods=["GET"]),
        Route("/sandbox/checks", handler(lambda r, b: state.add_check(**fields(b)), 201),
              methods=["POST"]),
        Route("/sandbox/checks/{check_id:int}",
              handler(lambda r, b: state.update_check(check_id(r), **fields(b))),
              methods=["PATCH"]),
        Route("/sandbox/checks/{check_id:int}",
              handler(lambda r, b: state.remove_check(check_id(r))), methods=["DELETE"]),
        Route("/sandbox/checks/{check_id:int}/results",
              handler(lambda r, b: state.set_severity(check_id(r),
                                                      **_result_arguments(fields(b))), 201),
              methods=["POST"]),
        Route("/sandbox/requests", handler(lambda r, b: {"requests": state.requests()}),
              methods=["GET"]),
        *fault_routes(faults),
    ]
