"""The sandbox's ASGI application: Events API, REST API subset and the /sandbox view."""

from __future__ import annotations

from starlette.applications import Starlette

from sandbox.control_api import control_routes
from sandbox.events_api import events_routes
from sandbox.faults import Faults
from sandbox.ratelimit import RateLimiter
from sandbox.rest_api import rest_routes
from sandbox.state import SandboxState


def build_app(state: SandboxState, faults: Faults, limiter: RateLimiter, token: str) -> Starlette:
    """All routes, bound to one state; `token` guards the REST API."""
    routes = [
        *events_routes(state, faults, limiter),
        *control_routes(state, faults),
        *rest_routes(state, token),
    ]
    return Starlette(routes=routes)
