"""The sandbox's ASGI application: Events API, REST API subset and the /sandbox view.

A request no route knows answers PagerDuty's 404 body and logs a warning naming its
method and path, so a call the real provider makes and the sandbox lacks shows up.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.control_api import control_routes
from sandbox.events_api import events_routes
from sandbox.faults import Faults
from sandbox.ratelimit import RateLimiter
from sandbox.rest_api import not_found, rest_routes
from sandbox.state import SandboxState

log = logging.getLogger("sandbox")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def build_app(
    state: SandboxState,
    faults: Faults,
    limiter: RateLimiter,
    token: str,
    rest_limiter: RateLimiter | None = None,
) -> Starlette:
    """All routes, bound to one state; `token` guards the REST API, `rest_limiter` (if
    any) counts its requests per token."""
    routes = [
        *events_routes(state, faults, limiter),
        *control_routes(state, faults),
        *rest_routes(state, token, rest_limiter),
        Route("/{path:path}", unknown_route, methods=ALL_METHODS),
    ]
    return Starlette(routes=routes)


async def unknown_route(request: Request) -> JSONResponse:
    query = f"?{request.url.query}" if request.url.query else ""
    log.warning(
        "sandbox: no such route: %s %s%s (answered 404; PagerDuty may serve it)",
        request.method,
        request.url.path,
        query,
    )
    return not_found()
