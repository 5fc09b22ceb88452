"""PagerDuty REST API v2, the subset the Pulumi program and its look-ups use.

Escalation policies, services and their integrations (create, read, update,
delete), vendors, users, schedules and teams (list with `query=`, read; teams can
be created). Shapes follow PagerDuty: wrapped entities (`{"service": {...}}`),
list wrappers with `limit/offset/more/total`, errors as
`{"error": {"message", "code", "errors"}}`. Every request needs
`Authorization: Token token=<the sandbox's token>`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import rest_rules
from sandbox.ids import new_object_id
from sandbox.state import SandboxState

Handler = Callable[[Request], Awaitable[Response]]
DEFAULT_LIMIT, MAX_LIMIT = 25, 100
SERVICE_FIELDS = (
    "description",
    "auto_resolve_timeout",
    "acknowledgement_timeout",
    "alert_creation",
    "alert_grouping_parameters",
    "auto_pause_notifications_parameters",
    "incident_urgency_rule",
    "support_hours",
    "scheduled_actions",
    "teams",
    "status",
)
POLICY_FIELDS = ("description", "num_loops", "on_call_handoff_notifications", "teams")
# Collections searched by `query=`, and which fields it matches.
QUERY_FIELDS = {
    "services": ("name",),
    "escalation_policies": ("name",),
    "vendors": ("name",),
    "schedules": ("name",),
    "teams": ("name",),
    "users": ("name", "email"),
}


def rest_routes(state: SandboxState, token: str) -> list[Route]:
    """The REST routes, each behind the token check."""
    api = _RestApi(state)

    def guarded(handler: Handler) -> Handler:
        expected = f"Token token={token}"

        async def check(request: Request) -> Response:
            if request.headers.get("authorization", "").strip() != expected:
                return error(401, "Authentication failed", 2006)
            return await handler(request)

        return check

    table: list[tuple[str, Handler, str]] = [
        ("/escalation_policies", api.list_of("escalation_policies"), "GET"),
        ("/escalation_policies", api.create_policy, "POST"),
        ("/escalation_policies/{id}", api.show("escalation_policies"), "GET"),
        ("/escalation_policies/{id}", api.update_policy, "PUT"),
        ("/escalation_policies/{id}", api.delete_policy, "DELETE"),
        ("/services", api.list_of("services"), "GET"),
        ("/services", api.create_service, "POST"),
        ("/services/{id}", api.show("services"), "GET"),
        ("/services/{id}", api.update_service, "PUT"),
        ("/services/{id}", api.delete_service, "DELETE"),
        ("/services/{id}/integrations", api.create_integration, "POST"),
        ("/services/{id}/integrations/{integration_id}", api.show_integration, "GET"),
        ("/services/{id}/integrations/{integration_id}", api.update_integration, "PUT"),
        ("/services/{id}/integrations/{integration_id}", api.delete_integration, "DELETE"),
        ("/vendors", api.list_of("vendors"), "GET"),
        ("/vendors/{id}", api.show("vendors"), "GET"),
        ("/users", api.list_of("users"), "GET"),
        ("/users/{id}", api.show("users"), "GET"),
        ("/schedules", api.list_of("schedules"), "GET"),
        ("/schedules/{id}", api.show("schedules"), "GET"),
        ("/teams", api.list_of("teams"), "GET"),
        ("/teams", api.create_team, "POST"),
        ("/teams/{id}", api.show("teams"), "GET"),
    ]
    return [Route(path, guarded(handler), methods=[method]) for path, handler, method in table]


def error(status: int, message: str, code: int, errors: list[str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse({"error": body}, status_code=status)


def invalid(errors: list[str]) -> JSONResponse:
    return error(400, "Invalid Input Provided", 2001, errors)


def not_found() -> JSONResponse:
    return error(404, "Not Found", 2100)


class _BadBody(Exception):
    def __init__(self, problem: str) -> None:
        self.problem = problem


class _RestApi:
    """Handlers; each takes the state's lock for its whole read-check-write."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.directory = state.directory

    # -- generic -----------------------------------------------------------------

    def list_of(self, collection: str) -> Handler:
        async def handler(request: Request) -> Response:
            params = request.query_params
            try:
                limit = min(int(params.get("limit", DEFAULT_LIMIT)), MAX_LIMIT)
                offset = int(params.get("offset", 0))
            except ValueError:
                return invalid(["limit and offset must be integers"])
            if limit < 1 or offset < 0 or limit + offset > 10000:
                return invalid(["limit must be 1..100, offset >= 0, and together <= 10000"])
            query = params.get("query", "").lower()
            with self.state.lock:
                items = sorted(self.directory.list(collection), key=lambda o: o["name"].lower())
                items = [i for i in items if _matches(i, QUERY_FIELDS[collection], query)]
                page = copy.deepcopy(items[offset : offset + limit])
            total = len(items) if params.get("total") == "true" else None
            return JSONResponse(
                {
                    collection: page,
                    "limit": limit,
                    "offset": offset,
                    "more": offset + limit < len(items),
                    "total": total,
                }
            )

        return handler

    def show(self, collection: str) -> Handler:
        wrapper = rest_rules_wrapper(collection)

        async def handler(request: Request) -> Response:
            with self.state.lock:
                found = self.directory.get(collection, request.path_params["id"])
                if found is None:
                    return not_found()
                return JSONResponse({wrapper: copy.deepcopy(found)})

        return handler

    # -- escalation policies -------------------------------------------------------

    async def create_policy(self, request: Request) -> Response:
        try:
            body = await _unwrap(request, "escalation_policy")
        except _BadBody as bad:
            return invalid([bad.problem])
        with self.state.lock:
            errors = rest_rules.escalation_policy_errors(body, self.directory)
            if errors:
                return invalid(errors)
            fields = {k: body[k] for k in POLICY_FIELDS if k in body}
            fields["escalation_rules"] = self._rules(body["escalation_rules"])
            fields["teams"] = self._refs("teams", body.get("teams") or [])
            policy = self.directory.create_escalation_policy(body["name"], **fields)
            return JSONResponse({"escalation_policy": copy.deepcopy(policy)}, status_code=201)

    async def update_policy(self, request: Request) -> Response:
        try:
            body = await _unwrap(request, "escalation_policy")
        except _BadBody as bad:
            return invalid([bad.problem])
        with self.state.lock:
            policy = self.directory.get("escalation_policies", request.path_params["id"])
            if policy is None:
                return not_found()
            merged = {**policy, **body}
            errors = rest_rules.escalation_policy_errors(merged, self.directory, policy["id"])
            if errors:
                return invalid(errors)
            policy.update({k: body[k] for k in (*POLICY_FIELDS, "name") if k in body})
            if "escalation_rules" in body:
                policy["escalation_rules"] = self._rules(body["escalation_rules"])
            if "teams" in body:
                policy["teams"] = self._refs("teams", body["teams"] or [])
            policy["summary"] = policy["name"]
            return JSONResponse({"escalation_policy": copy.deepcopy(policy)})

    async def delete_policy(self, request: Request) -> Response:
        with self.state.lock:
            policy = self.directory.get("escalation_policies", request.path_params["id"])
            if policy is None:
                return not_found()
            if policy["services"]:
                return invalid(["Escalation policy is in use by one or more services"])
            self.directory.delete("escalation_policies", policy["id"])
        return Response(status_code=204)

    # -- services ------------------------------------------------------------------

    async def create_service(self, request: Request) -> Response:
        try:
            body = await _unwrap(request, "service")
        except _BadBody as bad:
            return invalid([bad.problem])
        with self.state.lock:
            errors = rest_rules.service_errors(body, self.directory)
            if errors:
                return invalid(errors)
            # Present keys count even when null: a null timeout disables it in PagerDuty.
            fields = {k: body[k] for k in SERVICE_FIELDS if k in body}
            fields["teams"] = self._refs("teams", fields.get("teams") or [])
            fields["scheduled_actions"] = fields.get("scheduled_actions") or []
            for name in ("incident_urgency_rule", "status", "alert_creation"):
                if fields.get(name) is None:
                    fields.pop(name, None)  # null here means "the default"
            service = self.directory.create_service(
                body["name"], escalation_policy_id=body["escalation_policy"]["id"], **fields
            )
            return JSONResponse({"service": copy.deepcopy(service)}, status_code=201)

    async def update_service(self, request: Request) -> Response:
        try:
            body = await _unwrap(request, "service")
        except _BadBody as bad:
            return invalid([bad.problem])
        with self.state.lock:
            service = self.directory.get("services", request.path_params["id"])
            if service is None:
                return not_found()
            merged = {**service, **body}
            errors = rest_rules.service_errors(merged, self.directory, service["id"])
            if errors:
                return invalid(errors)
            if "escalation_policy" in body:
                self.directory.move_service(service, body["escalation_policy"]["id"])
            service.update({k: body[k] for k in (*SERVICE_FIELDS, "name") if k in body})
            if "teams" in body:
                service["teams"] = self._refs("teams", body["teams"] or [])
            service["summary"] = service["name"]
            return JSONResponse({"service": copy.deepcopy(service)})

    async def delete_service(self, request: Request) -> Response:
        with self.state.lock:
            if self.directory.delete("services", request.path_params["id"]) is None:
                return not_found()
        return Response(status_code=204)

    # -- integrations --------------------------------------------------------------

    async def create_integration(self, request: Request) -> Response:
        try:
            body = await _unwrap(request, "integration")
        except _BadBody as bad:
            return invalid([bad.problem])
        with self.state.lock:
            service = self.directory.get("services", request.path_params["id"])
            if service is None:
                return not_found()
            errors = rest_rules.integration_errors(body, self.directory)
            if errors:
                return invalid(errors)
            vendor_id = (body.get("vendor") or {}).get("id")
            vendor = self.directory.get("vendors", vendor_id) if vendor_id else None
            # PagerDuty names an unnamed integration after its vendor.
            name = body.get("name") or (vendor["name"] if vendor else "Events API V2")
            kind = body.get("type") or "generic_events_api_inbound_integration"
            integration = self.directory.add_integration(
                service["id"], name, type=kind, vendor_id=vendor_id
            )
            return JSONResponse({"integration": copy.deepcopy(integration)}, status_code=201)

    async def show_integration(self, request: Request) -> Response:
        with self.state.lock:
            integration = self._integration(request)
            if integration is None:
                return not_found()
            return JSONResponse({"integration": copy.deepcopy(integration)})

    async def update_integration(self, request: Request) -> Response:
        try:
            body = await _unwrap(request, "integration")
        except _BadBody as bad:
            return invalid([bad.problem])
        with self.state.lock:
            integration = self._integration(request)
            if integration is None:
                return not_found()
            merged = {**integration, **body}
            errors = rest_rules.integration_errors(merged, self.directory)
            if errors:
                return invalid(errors)
            if body.get("name"):
                integration["name"] = integration["summary"] = body["name"]
            return JSONResponse({"integration": copy.deepcopy(integration)})

    async def delete_integration(self, request: Request) -> Response:
        with self.state.lock:
            integration = self._integration(request)
            if integration is None:
                return not_found()
            self.directory.delete("integrations", integration["id"])
        return Response(status_code=204)

    # -- teams ---------------------------------------------------------------------

    async def create_team(self, request: Request) -> Response:
        try:
            body = await _unwrap(request, "team")
        except _BadBody as bad:
            return invalid([bad.problem])
        with self.state.lock:
            errors = rest_rules.name_errors(body, self.directory, "teams", None)
            if errors:
                return invalid(errors)
            team = self.directory.add_team(body["name"], description=body.get("description"))
            return JSONResponse({"team": copy.deepcopy(team)}, status_code=201)

    # -- helpers -------------------------------------------------------------------

    def _integration(self, request: Request) -> dict[str, Any] | None:
        integration = self.directory.get("integrations", request.path_params["integration_id"])
        if integration is None or integration["service"]["id"] != request.path_params["id"]:
            return None
        return integration

    def _ref(self, collection: str, object_id: Any) -> dict[str, Any]:
        return self.directory.reference(collection, self.directory.get(collection, str(object_id)))

    def _refs(self, collection: str, refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self._ref(collection, r["id"]) for r in refs]

    def _rules(self, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        stored = []
        for rule in rules:
            targets = [
                self._ref(rest_rules.TARGET_TYPES[target["type"]], target["id"])
                for target in rule["targets"]
            ]
            entry = {
                "id": new_object_id(),
                "escalation_delay_in_minutes": rule["escalation_delay_in_minutes"],
                "targets": targets,
            }
            if rule.get("escalation_rule_assignment_strategy") is not None:
                entry["escalation_rule_assignment_strategy"] = rule[
                    "escalation_rule_assignment_strategy"
                ]
            stored.append(entry)
        return stored


def rest_rules_wrapper(collection: str) -> str:
    """The wrapper key of one entity of `collection` (`services` -> `service`)."""
    return {"escalation_policies": "escalation_policy"}.get(collection, collection[:-1])


async def _unwrap(request: Request, wrapper: str) -> dict[str, Any]:
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise _BadBody("Request body is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get(wrapper), dict):
        raise _BadBody(f"{wrapper.replace('_', ' ').capitalize()} must be provided as an object")
    return data[wrapper]


def _matches(item: dict[str, Any], fields: tuple[str, ...], query: str) -> bool:
    return not query or any(query in str(item.get(f) or "").lower() for f in fields)
