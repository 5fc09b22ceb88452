"""The bridge's HTTP face: ASM webhooks in, health and metrics out.

`create_app` takes every collaborator (routes, intake, auth, metrics, readiness,
clock, lifecycle hooks) so tests run the real app on loopback with fakes or with
the real outbox. A webhook is answered 202 only after `accept` returned, i.e. after
its events are durably stored: ASM does not retry, so a 202 is a promise.

    POST /v1/asm/<route>   the route is named in the URL (one ASM target per service)
    POST /v1/asm           the route is found from the check (id, GUID, tags, catch-all)
    GET  /healthz          the process answers
    GET  /readyz           routes loaded and the store can commit; route problems in the body
    GET  /metrics          Prometheus exposition of the injected registry

The webhook is the one hot path (a storm of alerts), so it is a plain ASGI handler:
a POST to a webhook path goes straight to it, without Starlette's middleware,
route scan, `Request` and `Response` objects, which cost more CPU per webhook than
the parsing and the storing together. Everything else (the other endpoints, 404s,
405s, the lifespan) goes through an ordinary Starlette app.

Refusals and failures are logged through `RefusalLog`: values taken from the request
(the route named in the URL, the check) are cut short, and past a few lines a minute
per reason the lines are counted instead (`suppressed` on the next one). The metric
`apica_bridge_webhooks_refused_total` counts every one. Limits on what reaches this
app at all (header size, timeouts, connections) are `bridge.http_limits`'.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from bridge.errors import BodyTooLarge, InvalidEvent, UnknownRoute, Unrouted, WebhookRefused
from bridge.http_limits import RefusalLog, shorten
from bridge.intake.accept import Accepted
from bridge.intake.asm import AsmAlert, parse_webhook
from bridge.intake.auth import Authenticator
from bridge.intake.matching import find_route, match_route
from bridge.metrics import BridgeMetrics
from bridge.store.records import RouteProblem
from contract.redact import last4, mask_keys
from contract.routes_file import Route, RoutesFile

log = logging.getLogger("bridge.http")

WEBHOOK_PREFIX = "/v1/asm"


class AcceptAlert(Protocol):
    """Store the alert's events durably; return only once they are stored.

    Either a coroutine function or a partial of one (awaited on the event loop, e.g.
    `bridge.intake.accept.accept_alert_async`), or a plain callable (run in a worker thread).
    """

    def __call__(
        self, route_name: str, route: Route, alert: AsmAlert
    ) -> Accepted | Awaitable[Accepted]: ...


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
    route_problems: Callable[[], Sequence[RouteProblem]] = list,
    record_unclaimed: Callable[..., object] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    hooks: Sequence[Hook] = (),
    logger: logging.Logger = log,
) -> ASGIApp:
    handler = _WebhookHandler(routes, accept, auth, metrics, body_limit, clock, logger,
                              record_unclaimed)

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
        body: dict[str, object] = (
            {"status": "not ready", "problems": problems} if problems else {"status": "ready"})
        # Route health needs a person, not another replica: shown, still 200.
        try:
            found = await run_in_threadpool(route_problems)
        except Exception:
            found = []
        if found:
            body["routes"] = _route_health(found)
        return JSONResponse(body, status_code=503 if problems else 200)

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

    others = Starlette(
        routes=[
            # POSTs to these two are taken by _Dispatch before Starlette sees them; they
            # are listed so that other methods get Starlette's 405 as before.
            HttpRoute(WEBHOOK_PREFIX, _RoutedWebhook(handler), methods=["POST"]),
            HttpRoute(WEBHOOK_PREFIX + "/{route}", _RoutedWebhook(handler), methods=["POST"]),
            HttpRoute("/healthz", healthz, methods=["GET"]),
            HttpRoute("/readyz", readyz, methods=["GET"]),
            HttpRoute("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    return _Dispatch(handler, others)


def _route_health(problems: Sequence[RouteProblem]) -> dict[str, list[dict[str, object]]]:
    """Per route, its delivery problems that need a person (keys by last four only)."""
    health: dict[str, list[dict[str, object]]] = {}
    for problem in problems:
        health.setdefault(problem.route, []).append({
            "reason": problem.reason, "count": problem.count,
            "last_at": datetime.fromtimestamp(problem.last_at, UTC).isoformat(
                timespec="seconds"),
            "message": mask_keys(problem.message)})
    return health


def webhook_route(path: str) -> tuple[bool, str | None]:
    """(is a webhook path, route named in it): `/v1/asm` -> (True, None), `/v1/asm/x` ->
    (True, "x"), anything else -> (False, None).

    The same paths as the Starlette routes `/v1/asm` and `/v1/asm/{route}` (one
    non-empty segment).
    """
    if path == WEBHOOK_PREFIX:
        return True, None
    if path.startswith(WEBHOOK_PREFIX + "/"):
        name = path[len(WEBHOOK_PREFIX) + 1:]
        if name and "/" not in name:
            return True, name
    return False, None


class _Dispatch:
    """POST to a webhook path: straight to the handler. Anything else: Starlette."""

    def __init__(self, handler: _WebhookHandler, others: ASGIApp) -> None:
        self.handler = handler
        self.others = others

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            is_webhook, named = webhook_route(scope["path"])
            if is_webhook:
                await self.handler.handle(scope, receive, send, named)
                return
        await self.others(scope, receive, send)


class _RoutedWebhook:
    """The webhook as a Starlette route's ASGI endpoint (the same handler)."""

    def __init__(self, handler: _WebhookHandler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handler.handle(scope, receive, send, scope["path_params"].get("route"))


class _ClientGone(Exception):
    """The client disconnected before its body was complete: nothing to store or answer."""


class _Children:
    """`counter.labels(value)`, looked up once per value.

    `labels()` validates and takes a lock on every call; the values here are bounded
    (route names from the routes file, refusal reasons), so the cache stays small.
    """

    def __init__(self, counter: Any) -> None:
        self._counter = counter
        self._children: dict[str, Any] = {}

    def __getitem__(self, value: str) -> Any:
        child = self._children.get(value)
        if child is None:
            child = self._children[value] = self._counter.labels(value)
        return child


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
        record_unclaimed: Callable[..., object] | None = None,
    ) -> None:
        self.routes = routes
        self.accept = accept
        # A coroutine function (or a partial of one) awaits its commit on the loop; a
        # plain function blocks, so it runs in a worker thread.
        self.accept_is_async = inspect.iscoroutinefunction(accept)
        self.auth = auth
        self.body_limit = body_limit
        self.clock = clock
        self.log = logger
        self.refusals = RefusalLog(logger, clock=clock)
        # `Store.record_unclaimed`: a refused unclaimed webhook is kept for a person.
        self.record_unclaimed = record_unclaimed
        self.received = _Children(metrics.received)
        self.accepted = _Children(metrics.accepted)
        self.duplicates = _Children(metrics.duplicates)
        self.stale = _Children(metrics.stale)
        self.refused = _Children(metrics.refused)

    async def handle(self, scope: Scope, receive: Receive, send: Send, named: str | None) -> None:
        try:
            status, body, headers = await self._answer(scope, receive, named)
        except _ClientGone:
            return
        await _send_json(send, status, body, headers)

    async def _answer(
        self, scope: Scope, receive: Receive, named: str | None
    ) -> tuple[int, dict[str, object], Sequence[tuple[bytes, bytes]]]:
        started = self.clock()
        table = self.routes.current  # one snapshot for the whole request
        label = "auto" if named is None else (named if named in table.routes else "unknown")
        self.received[label].inc()
        headers = Headers(scope=scope)
        context: dict[str, object] = {"route": named, "client": _client(scope)}
        if not self.auth.allows(headers):
            return self._unauthorized(context)
        try:
            name, route, alert = await self._read_alert(headers, receive, table, named, context)
        except WebhookRefused as exc:
            return self._refuse(exc.status, exc.reason, str(exc), context)
        except _ClientGone:
            raise
        except Exception:  # a bug of ours: say so, never call it the sender's fault
            return self._fail(500, "internal_error", "the bridge failed to read the alert",
                              context)
        try:
            if self.accept_is_async:
                result = await self.accept(name, route, alert)  # type: ignore[misc]
            else:
                result = await run_in_threadpool(self.accept, name, route, alert)
        except InvalidEvent as exc:
            return self._refuse(422, exc.reason, str(exc), context)
        except Exception:
            return self._fail(503, "store_error", "the alert could not be stored; try again",
                              context)
        if result.stale:
            return self._stale(name, alert, result, context)
        if result.duplicate:
            self.duplicates[name].inc()
        else:
            self.accepted[name].inc()
        # DEBUG, not INFO: at storm rates a line per webhook costs more CPU than storing
        # it, and `alerts_accepted_total` counts them; the worker logs each delivery,
        # and every refusal or failure is still logged at WARNING or above.
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug(
                "webhook accepted",
                extra={"event": "webhook_accepted", **context, "events": result.event_count,
                       "duplicate": result.duplicate, "recovered_json": alert.recovered,
                       "ms": round((self.clock() - started) * 1000, 2)},
            )
        return 202, {"status": "accepted", "route": name, "action": alert.action,
                     "events": result.event_count, "duplicate": result.duplicate}, ()

    def _stale(
        self, name: str, alert: AsmAlert, result: Accepted, context: dict[str, object]
    ) -> tuple[int, dict[str, object], Sequence[tuple[bytes, bytes]]]:
        """Recorded and not sent: older than the check's newest alert, or a replay of it.
        202, since ASM must not send it again, and retrying would not make it newer."""
        self.stale[name].inc()
        self.log.warning(
            "stale alert not sent: ASM stamped it %s, the check's newest accepted alert is "
            "stamped %s", alert.timestamp, result.newest_alert_at,
            extra={"event": "alert_stale", **context, "alert_at": alert.timestamp,
                   "newest_alert_at": result.newest_alert_at})
        return 202, {"status": "stale", "route": name, "action": alert.action, "events": 0,
                     "alert_at": alert.timestamp, "newest_alert_at": result.newest_alert_at}, ()

    async def _read_alert(
        self, headers: Headers, receive: Receive, table: RoutesFile, named: str | None,
        context: dict[str, object],
    ) -> tuple[str, Route, AsmAlert]:
        if named is not None and named not in table.routes:
            raise UnknownRoute(str(shorten(named)))  # echoed in the answer: cut short
        body = await _read_body(headers, receive, self.body_limit)
        alert = parse_webhook(body, headers.get("content-type", ""))
        context.update(check=alert.check_key, action=alert.action, severity=alert.severity)
        if named is None:
            try:
                found = match_route(table, alert)
            except Unrouted:
                await self._keep_unclaimed(alert, body, context)
                raise
            name, why = found.route_name, found.why
        else:
            name, why = named, "url"
            self._warn_if_claimed_elsewhere(table, named, alert, context)
        route = table.routes[name]
        context.update(route=name, matched_by=why,
                       routing_key=last4(route.routing_key.get_secret_value()))
        return name, route, alert

    async def _keep_unclaimed(
        self, alert: AsmAlert, body: bytes, context: dict[str, object]
    ) -> None:
        """Record an unclaimed webhook durably; the 422 goes out even if this fails."""
        if self.record_unclaimed is None:
            return
        try:
            await run_in_threadpool(
                self.record_unclaimed, check_id=alert.check_id, check_guid=alert.check_guid,
                check_name=alert.check_name, severity=alert.severity, action=alert.action,
                body=body)
        except Exception:
            self.refusals.log(logging.ERROR, "unclaimed_not_recorded",
                              "could not record the unclaimed webhook", exc_info=True,
                              event="unclaimed_not_recorded", **context)

    def _fail(
        self, status: int, reason: str, message: str, context: dict[str, object]
    ) -> tuple[int, dict[str, object], Sequence[tuple[bytes, bytes]]]:
        self.refused[reason].inc()
        self.refusals.log(logging.ERROR, reason, message, exc_info=True,
                          event="webhook_failed", **context)
        return status, {"error": reason, "message": message}, ()

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

    def _unauthorized(
        self, context: dict[str, object]
    ) -> tuple[int, dict[str, object], Sequence[tuple[bytes, bytes]]]:
        self.refused["unauthorized"].inc()
        self.refusals.log(logging.WARNING, "unauthorized", "webhook unauthorized",
                          event="webhook_refused", **context)
        # No detail: which credential is wrong, or whether the route exists, is not said.
        return 401, {"error": "unauthorized"}, [(b"www-authenticate", b'Basic realm="apica-pd"')]

    def _refuse(
        self, status: int, reason: str, message: str, context: dict[str, object]
    ) -> tuple[int, dict[str, object], Sequence[tuple[bytes, bytes]]]:
        self.refused[reason].inc()
        # An unrouted or unmappable alert is a page nobody gets: say so loudly.
        level = logging.ERROR if reason in ("unrouted", "invalid_event") else logging.WARNING
        self.refusals.log(level, reason, f"webhook refused: {message}",
                          event="webhook_refused", status=status, **context)
        return status, {"error": reason, "message": message}, ()


async def _read_body(headers: Headers, receive: Receive, limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:  # chunked or lying Content-Length: stop reading now
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(
    send: Send, status: int, content: dict[str, object], headers: Sequence[tuple[bytes, bytes]]
) -> None:
    # The same bytes and headers as Starlette's JSONResponse.
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"), *headers],
    })
    await send({"type": "http.response.body", "body": body})


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None
