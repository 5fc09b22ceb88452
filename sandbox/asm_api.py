"""`AsmSandbox`: a fake Apica ASM REST API v3 on loopback, strict about auth and parameters.

with AsmSandbox(users={"reader": "a-long-password"}) as asm:
    asm.state.add_check("Login page", id=101, tags={"Team": ["Checkout"]})
    asm.state.set_severity(101, "E", value=4637, unit="ms", message="HTTP 500")
    requests.get(asm.api_url + "/checks", params={"auth_ticket": asm.auth_ticket})

Routes (under /v3, paths and parameter names case-insensitive as the real API's):
`GET /checks`, `GET /checks/{id}`, `GET /checks/{id}/results`; `/sandbox/*` is the
control API (`sandbox.asm_control`). Order of checks per request: injected faults
and latency, route, credential (401), parameters (400), the check (404). Where
Apica's documentation is silent the behaviour is a named ASSUMED_* choice; each is
listed in docs/asm.md under "Assumptions to check on a real account".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.redact import last4
from sandbox.asm_control import asm_control_routes
from sandbox.asm_state import AsmState
from sandbox.clock import Clock, system_clock
from sandbox.faults import Faults
from sandbox.loopback import LoopbackServer

log = logging.getLogger("sandbox.asm")

# ASSUMPTION: error bodies are ASP.NET Web API's defaults (the /Help pages are its layout).
ASSUMED_DENIED_BODY = {"Message": "Authorization has been denied for this request."}
ASSUMED_SERVER_ERROR_BODY = {"Message": "An error has occurred."}
ASSUMED_THROTTLE_BODY = {"Message": "Too many requests."}
#: ASSUMPTION: the real API most likely ignores unknown parameters (ASP.NET does);
#: the sandbox refuses them (400) so that a misspelt filter fails a test instead of
#: silently returning everything.
ASSUMED_STRICT_PARAMETERS = True
#: ASSUMPTION: tag filters compare keys and values ignoring case (SQL Server's default).
ASSUMED_TAG_FILTER_IGNORES_CASE = True
#: ASSUMPTION: an auth_ticket is a GUID and compared as one, ignoring case.
ASSUMED_TICKET_IGNORES_CASE = True
#: ASSUMPTION: how many results one `mostrecent` request may ask for.
ASSUMED_MAX_MOST_RECENT = 1000

CHECKS_PARAMETERS = frozenset(
    {"enabled", "severity", "include_tag", "exclude_tag", "include_tag_op", "customer_context"}
)
REPEATABLE = frozenset({"include_tag", "exclude_tag"})  # ASSUMPTION: each is one filter
CHECK_PARAMETERS = frozenset({"customer_context"})
RESULTS_PARAMETERS = frozenset({
    "mostrecent", "detail_level", "fromutc", "toutc", "frommillisecondsutc",
    "tomillisecondsutc", "customer_context",
})
DETAIL_0_FIELDS = ("check_id", "timestamp_utc", "severity", "value", "unit")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class _BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _message(status: int, text: str) -> JSONResponse:
    return JSONResponse({"Message": text}, status_code=status)


class AsmCredentials:
    """Who may call: auth_tickets and Basic users (name -> password)."""

    def __init__(self, tickets: tuple[str, ...], users: Mapping[str, str]) -> None:
        self.tickets = tickets
        self.users = dict(users)

    def who(self, request: Request, query: Mapping[str, list[str]]) -> str | None:
        """"ticket ...abcd" or "basic <user>" for a valid credential, else None. A ticket
        in the query must be valid even if a Basic header is valid too (ASSUMPTION)."""
        offered = query.get("auth_ticket")
        if offered is not None:
            if len(offered) == 1 and self._ticket_ok(offered[0]):
                return f"ticket {last4(offered[0])}"
            return None
        scheme, _, rest = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(rest.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        user, sep, password = decoded.partition(":")
        known = self.users.get(user)
        ok = bool(sep) and known is not None and hmac.compare_digest(password.encode(),
                                                                     known.encode())
        return f"basic {user}" if ok else None

    def _ticket_ok(self, offered: str) -> bool:
        fold = str.lower if ASSUMED_TICKET_IGNORES_CASE else str
        ok = False
        for ticket in self.tickets:  # every ticket compared: no early exit
            ok |= hmac.compare_digest(fold(offered).encode(), fold(ticket).encode())
        return ok


def asm_api_routes(state: AsmState, faults: Faults, credentials: AsmCredentials) -> list[Route]:
    async def guarded(request: Request, allowed: frozenset[str], answer: Any) -> JSONResponse:
        if faults.delay:
            await asyncio.sleep(faults.delay)
        fault = faults.take()
        if fault is not None:
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        query = _query(request)
        who = credentials.who(request, query)
        request.state.who = who
        if who is None:
            return JSONResponse(ASSUMED_DENIED_BODY, status_code=401)
        try:
            _known(query, allowed)
            return answer(query, _customer_context(query))
        except _BadRequest as exc:
            return _message(400, exc.message)

    async def list_checks(request: Request) -> JSONResponse:
        def answer(query: dict[str, list[str]], customer: bool) -> JSONResponse:
            wanted = _checks_filter(query)
            return JSONResponse([c for c in state.checks(customer_context=customer) if wanted(c)])

        return await guarded(request, CHECKS_PARAMETERS, answer)

    async def one_check(request: Request) -> JSONResponse:
        check_id = request.path_params["check_id"]

        def answer(query: dict[str, list[str]], customer: bool) -> JSONResponse:
            check = state.check(check_id, customer_context=customer)
            if check is None:
                return _message(404, f"Check {check_id} was not found.")  # ASSUMPTION
            return JSONResponse(check)

        return await guarded(request, CHECK_PARAMETERS, answer)

    async def results(request: Request) -> JSONResponse:
        check_id = request.path_params["check_id"]

        def answer(query: dict[str, list[str]], customer: bool) -> JSONResponse:
            pick, detail = _results_filter(query)
            if state.check(check_id, customer_context=customer) is None:
                return _message(404, f"Check {check_id} was not found.")
            found = pick(state.results(check_id))
            if detail == 0:
                found = [{k: r[k] for k in DETAIL_0_FIELDS} for r in found]
            return JSONResponse(found)

        return await guarded(request, RESULTS_PARAMETERS, answer)

    return [
        Route("/v3/checks", list_checks, methods=["GET"]),
        Route("/v3/checks/{check_id:int}", one_check, methods=["GET"]),
        Route("/v3/checks/{check_id:int}/results", results, methods=["GET"]),
    ]


async def unknown_route(request: Request) -> JSONResponse:
    log.warning("ASM sandbox: no such route: %s %s (answered 404; ASM may serve it)",
                request.method, request.url.path)
    # ASP.NET names the whole URI; the path only here, never the query with its ticket.
    return _message(404, "No HTTP resource was found that matches the request URI "
                         f"'{request.url.path}'.")


def build_asm_app(state: AsmState, faults: Faults, credentials: AsmCredentials) -> ASGIApp:
    routes = [
        *asm_api_routes(state, faults, credentials),
        *asm_control_routes(state, faults),
        Route("/{path:path}", unknown_route, methods=ALL_METHODS),
    ]
    return _Recorded(_CaseInsensitivePaths(Starlette(routes=routes)), state)


# -- parameters -----------------------------------------------------------------------


def _query(request: Request) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        found.setdefault(name.lower(), []).append(value)
    return found


def _known(query: Mapping[str, list[str]], allowed: frozenset[str]) -> None:
    unknown = sorted(set(query) - allowed - {"auth_ticket"})
    if unknown and ASSUMED_STRICT_PARAMETERS:
        raise _BadRequest(f"Unknown query parameter(s): {', '.join(unknown)}.")
    for name, values in query.items():
        if len(values) > 1 and name not in REPEATABLE:
            raise _BadRequest(f"The parameter '{name}' is given {len(values)} times.")


def _one(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _customer_context(query: Mapping[str, list[str]]) -> bool:
    value = _one(query, "customer_context")
    if value not in (None, "0", "1"):
        raise _BadRequest(f"customer_context must be 0 or 1, not '{value}'.")
    return value == "1"


def _checks_filter(query: Mapping[str, list[str]]) -> Any:
    enabled = _one(query, "enabled")
    if enabled is not None and enabled.lower() not in ("true", "false"):
        raise _BadRequest(f"enabled must be true or false, not '{enabled}'.")
    severity = _one(query, "severity")
    if severity is not None and (not severity or set(severity) - set("IWEF")):
        raise _BadRequest(f"severity must be letters of I, W, E and F, not '{severity}'.")
    op = (_one(query, "include_tag_op") or "or").lower()
    if op not in ("or", "and"):
        raise _BadRequest(f"include_tag_op must be 'or' or 'and', not '{op}'.")
    include = [_tag_rule(text) for text in query.get("include_tag", [])]
    exclude = [_tag_rule(text) for text in query.get("exclude_tag", [])]
    combine = all if op == "and" else any

    def wanted(check: dict[str, Any]) -> bool:
        if enabled is not None and check["enabled"] != (enabled.lower() == "true"):
            return False
        if severity is not None and check["severity"] not in severity:
            return False  # a check without results (U) matches no severity filter
        if include and not combine(rule(check["tags"]) for rule in include):
            return False
        return not any(rule(check["tags"]) for rule in exclude)

    return wanted


def _tag_rule(text: str) -> Any:
    """ASM's tag filter: "Key", "Key~V1;V2" (any of the values) or "~V" (any key)."""
    if not text.strip():
        raise _BadRequest("A tag filter may not be empty.")
    key, sep, values_text = text.partition("~")
    values = [v for v in values_text.split(";")] if sep else []
    if key.startswith(".") or any(v.startswith(".") for v in values):
        raise _BadRequest("Tag ids (a leading '.') are not modelled by the ASM sandbox.")
    if (sep and not all(values)) or (not key and not values):
        raise _BadRequest(f"Invalid tag filter '{text}'.")
    fold = str.casefold if ASSUMED_TAG_FILTER_IGNORES_CASE else str

    def rule(tags: dict[str, list[str]]) -> bool:
        for tag_key, tag_values in tags.items():
            if key and fold(tag_key) != fold(key):
                continue
            if not values or {fold(v) for v in values} & {fold(v) for v in tag_values}:
                return True
        return False

    return rule


def _results_filter(query: Mapping[str, list[str]]) -> tuple[Any, int]:
    detail_text = _one(query, "detail_level") or "0"
    if detail_text not in ("0", "1"):
        raise _BadRequest(f"detail_level must be 0 or 1, not '{detail_text}'.")
    most_recent = _one(query, "mostrecent")
    iso_pair = (_one(query, "fromutc"), _one(query, "toutc"))
    ms_pair = (_one(query, "frommillisecondsutc"), _one(query, "tomillisecondsutc"))
    forms = [most_recent is not None, iso_pair != (None, None), ms_pair != (None, None)]
    if sum(forms) != 1:  # ASSUMPTION: exactly one of the documented forms per request
        raise _BadRequest("Give mostrecent, or fromUtc and toUtc, or fromMillisecondsUtc "
                          "and toMillisecondsUtc.")
    if most_recent is not None:
        count = _whole(most_recent, "mostrecent")
        if not 1 <= count <= ASSUMED_MAX_MOST_RECENT:
            raise _BadRequest(f"mostrecent must be 1 to {ASSUMED_MAX_MOST_RECENT}.")
        # ASSUMPTION: newest first.
        return (lambda results: list(reversed(results))[:count]), int(detail_text)
    if iso_pair != (None, None):
        start, end = (_iso_time(v, n) for v, n in zip(iso_pair, ("fromUtc", "toUtc"), strict=True))
    else:
        start, end = (_ms_time(v, n) for v, n in zip(
            ms_pair, ("fromMillisecondsUtc", "toMillisecondsUtc"), strict=True))
    if start > end:
        raise _BadRequest("The start of the range is after its end.")

    def between(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # ASSUMPTION: both ends inclusive, oldest first.
        return [r for r in results if start <= _parse_wire(r["timestamp_utc"]) <= end]

    return between, int(detail_text)


def _whole(text: str, name: str) -> int:
    if not text.isdigit():
        raise _BadRequest(f"{name} must be a whole number, not '{text}'.")
    return int(text)


def _iso_time(text: str | None, name: str) -> datetime:
    if text is None:
        raise _BadRequest(f"{name} is missing.")
    try:
        # ASSUMPTION: only the documented style, "2013-08-20T13:32:08".
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise _BadRequest(f"{name} must look like 2013-08-20T13:32:08, not '{text}'.") from None


def _ms_time(text: str | None, name: str) -> datetime:
    if text is None:
        raise _BadRequest(f"{name} is missing.")
    try:
        return datetime.fromtimestamp(_whole(text, name) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise _BadRequest(f"{name} is out of range.") from None


def _parse_wire(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


# -- middleware ---------------------------------------------------------------------


class _CaseInsensitivePaths:
    """`/v3/Checks/1/Results` is `/v3/checks/1/results`: older clients spell it so."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "path": scope["path"].lower()}
        await self.app(scope, receive, send)


class _Recorded:
    """Logs every /v3 request with its answer in `state.requests()`, ticket shortened."""

    def __init__(self, app: ASGIApp, state: AsmState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].lower().startswith("/v3"):
            await self.app(scope, receive, send)
            return
        # One dict shared by every copy of the scope below, so the handler's
        # `request.state.who` is visible here.
        scope["state"] = shared = {}
        request = Request(scope)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Recorded before the answer leaves: a client that has it finds it logged.
                self.state.record_request({
                    "method": request.method,
                    "path": scope["path"],
                    "query": [[name, last4(value) if name.lower() == "auth_ticket" else value]
                              for name, value in request.query_params.multi_items()],
                    "auth": shared.get("who"),
                    "status": message["status"],
                })
            await send(message)

        await self.app(scope, receive, sending)


# -- the server -----------------------------------------------------------------------


class AsmSandbox(LoopbackServer):
    """A real HTTP server emulating the ASM REST API v3 (read routes) for one account.

    `auth_ticket` (default: a generated GUID) and `users` (Basic name -> password) are
    the credentials it accepts; `clock` stamps results.
    """

    title = "the ASM sandbox"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auth_ticket: str | None = None,
        users: Mapping[str, str] | None = None,
        clock: Clock = system_clock,
    ) -> None:
        super().__init__(host, port)
        self.auth_ticket = auth_ticket or str(uuid.uuid4()).upper()
        self.users = dict(users or {})
        self.clock = clock
        self.state = AsmState(clock)
        self.faults = Faults(
            clock, server_error_body=ASSUMED_SERVER_ERROR_BODY, throttle_body=ASSUMED_THROTTLE_BODY
        )

    @property
    def api_url(self) -> str:
        """The API's base URL, as `https://api-asm1.apica.io/v3` is ASM's."""
        return self.url + "/v3"

    def build_app(self) -> ASGIApp:
        return build_asm_app(
            self.state, self.faults, AsmCredentials((self.auth_ticket,), self.users)
        )
