"""The bridge's HTTP face: ASM webhooks in, health and metrics out.

`create_app` takes every collaborator (routes, intake, auth, metrics, readiness,
clock, lifecycle hooks) so tests run the real app on loopback with fakes or with
the real outbox. A webhook is answered 202 only after `accept` returned, i.e. after
its events are durably stored: ASM does not retry, so a 202 is a promise.

    POST /v1/asm/<route>   the route is named in the URL (one ASM target per service)
    POST /v1/asm           the route is found from the check (id, GUID, tags, catch-all)
    GET  /healthz          the process answers
    GET  /readyz           routes loaded and the store writable
    GET  /metrics          Prometheus exposition of the injected registry
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from bridge.asm import AsmAlert, parse_webhook
from bridge.auth import Authenticator
from bridge.errors import BodyTooLarge, InvalidEvent, UnknownRoute, WebhookRefused
from bridge.matching import find_route, match_route
from bridge.metrics import BridgeMetrics
from bridge.redact import last4
from bridge.routes import Route, RoutesFile

log = logging.getLogger("bridge.http")


class Accepted(Protocol):
    event_count: int
    duplicate: bool


class AcceptAlert(Protocol):
    """Store the alert's events durably; return only once they are stored."""

    def __call__(self, route_name: str, route: Route, alert: AsmAlert) -> Accepted: ...


class RouteSource(Protocol):
    @property
    def current(self) -> RoutesFile: ...

    @property
    def loaded(self) -> bool: ...


@dataclass(frozen=True)
class Hook:
    """Something that runs as long as the server does (worker, routes watcher)."""

    name: str
    start: Callable[[], object]
    stop: Callable[[], object]


def create_app(
    *,
    routes: RouteSource,
    accept: AcceptAlert,
    auth: Authenticator,
    metrics: BridgeMetrics,
    body_limit: int = 65536,
    store_ready: Callable[[], bool] = lambda: True,
    clock: Callable[[], float] = time.perf_counter,
    hooks: Sequence[Hook] = (),
    logger: logging.Logger = log,
) -> Starlette:
    handler = _WebhookHandler(routes, accept, auth, metrics, body_limit, clock, logger)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problems = []
        if not routes.loaded:
            problems.append("routes not loaded")
        try:
            writable = await run_in_threadpool(store_ready)
        except Exception:
            writable = False
        if not writable:
            problems.append("store not writable")
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics_endpoint(request: Request) -> Response:
        data = await run_in_threadpool(generate_latest, metrics.registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started: list[Hook] = []
        try:
            for hook in hooks:
                await run_in_threadpool(hook.start)
                started.append(hook)
                logger.info("started", extra={"event": "hook_started", "hook": hook.name})
            yield
        finally:
            for hook in reversed(started):
                await run_in_threadpool(hook.stop)
                logger.info("stopped", extra={"event": "hook_stopped", "hook": hook.name})

    return Starlette(
        routes=[
            HttpRoute("/v1/asm", handler.handle, methods=["POST"]),
            HttpRoute("/v1/asm/{route}", handler.handle, methods=["POST"]),
            HttpRoute("/healthz", healthz, methods=["GET"]),
            HttpRoute("/readyz", readyz, methods=["GET"]),
            HttpRoute("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


class _WebhookHandler:
    def __init__(
        self,
        routes: RouteSource,
        accept: AcceptAlert,
        auth: Authenticator,
        metrics: BridgeMetrics,
        body_limit: int,
        clock: Callable[[], float],
        logger: logging.Logger,
    ) -> None:
        self.routes = routes
        self.accept = accept
        self.auth = auth
        self.metrics = metrics
        self.body_limit = body_limit
        self.clock = clock
        self.log = logger

    async def handle(self, request: Request) -> Response:
        started = self.clock()
        table = self.routes.current  # one snapshot for the whole request
        named = request.path_params.get("route")
        label = "auto" if named is None else (named if named in table.routes else "unknown")
        self.metrics.received.labels(route=label).inc()
        context: dict[str, object] = {"route": named, "client": _client(request)}
        if not self.auth.allows(request.headers):
            return self._unauthorized(context)
        try:
            name, route, alert = await self._read_alert(request, table, named, context)
        except WebhookRefused as exc:
            return self._refuse(exc.status, exc.reason, str(exc), context)
        except Exception:  # a bug of ours: say so, never call it the sender's fault
            return self._fail(500, "internal_error", "the bridge failed to read the alert",
                              context)
        try:
            result = await run_in_threadpool(self.accept, name, route, alert)
        except InvalidEvent as exc:
            return self._refuse(422, exc.reason, str(exc), context)
        except Exception:
            return self._fail(503, "store_error", "the alert could not be stored; try again",
                              context)
        if result.duplicate:
            self.metrics.duplicates.labels(route=name).inc()
        else:
            self.metrics.accepted.labels(route=name).inc()
        self.log.info(
            "webhook accepted",
            extra={"event": "webhook_accepted", **context, "events": result.event_count,
                   "duplicate": result.duplicate, "recovered_json": alert.recovered,
                   "ms": round((self.clock() - started) * 1000, 2)},
        )
        return JSONResponse(
            {"status": "accepted", "route": name, "action": alert.action,
             "events": result.event_count, "duplicate": result.duplicate},
            status_code=202,
        )

    async def _read_alert(
        self, request: Request, table: RoutesFile, named: str | None, context: dict[str, object]
    ) -> tuple[str, Route, AsmAlert]:
        if named is not None and named not in table.routes:
            raise UnknownRoute(named)
        body = await _read_body(request, self.body_limit)
        alert = parse_webhook(body, request.headers.get("content-type", ""))
        context.update(check=alert.check_key, action=alert.action, severity=alert.severity)
        if named is None:
            found = match_route(table, alert)
            name, why = found.route_name, found.why
        else:
            name, why = named, "url"
            self._warn_if_claimed_elsewhere(table, named, alert, context)
        route = table.routes[name]
        context.update(route=name, matched_by=why,
                       routing_key=last4(route.routing_key.get_secret_value()))
        return name, route, alert

    def _fail(
        self, status: int, reason: str, message: str, context: dict[str, object]
    ) -> Response:
        self.metrics.refused.labels(reason=reason).inc()
        self.log.exception(message, extra={"event": "webhook_failed", "reason": reason,
                                           **context})
        return JSONResponse({"error": reason, "message": message}, status_code=status)

    def _warn_if_claimed_elsewhere(
        self, table: RoutesFile, named: str, alert: AsmAlert, context: dict[str, object]
    ) -> None:
        """The URL wins, but a check another route claims by id or GUID is a set-up slip."""
        claimed = find_route(table, alert)
        if claimed and claimed.route_name != named and claimed.why in ("check_id", "check_guid"):
            self.log.warning(
                "check posted to route %s is claimed by route %s", named, claimed.route_name,
                extra={"event": "route_mismatch", **context, "claimed_by": claimed.route_name},
            )

    def _unauthorized(self, context: dict[str, object]) -> Response:
        self.metrics.refused.labels(reason="unauthorized").inc()
        self.log.warning("webhook unauthorized", extra={"event": "webhook_refused",
                                                        "reason": "unauthorized", **context})
        # No detail: which credential is wrong, or whether the route exists, is not said.
        return JSONResponse(
            {"error": "unauthorized"}, status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="apica-pd"'},
        )

    def _refuse(
        self, status: int, reason: str, message: str, context: dict[str, object]
    ) -> Response:
        self.metrics.refused.labels(reason=reason).inc()
        # An unrouted or unmappable alert is a page nobody gets: say so loudly.
        level = logging.ERROR if reason in ("unrouted", "invalid_event") else logging.WARNING
        self.log.log(level, "webhook refused: %s", message,
                     extra={"event": "webhook_refused", "reason": reason, "status": status,
                            **context})
        return JSONResponse({"error": reason, "message": message}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # chunked or lying Content-Length: stop reading now
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _client(request: Request) -> str | None:
    return f"{request.client.host}:{request.client.port}" if request.client else None
