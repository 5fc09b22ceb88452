"""PagerDuty REST API v2, the subset the Pulumi program and the real provider call.

Escalation policies, services, their integrations and alert grouping settings
(create, read, update, delete), vendors, users, schedules and teams (list with
`query=`, read; teams can be created), and `/abilities` (the provider's credential
check). Shapes follow PagerDuty: wrapped entities (`{"service": {...}}`), list
wrappers with `limit/offset/more/total`, errors as `{"error": {"message", "code",
"errors"}}`, `include[]=` for the extra details the provider asks for. Every request
needs `Authorization: Token token=<the sandbox's token>` and counts against a
per-token rate limit reported in PagerDuty's `ratelimit-*` headers.

/work/notes/provider-calls.md (kept beside the project) lists every call the real
provider makes and the Go function it comes from.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import rest_rules
from sandbox.clock import iso
from sandbox.directory import Directory
from sandbox.ids import new_object_id
from sandbox.ratelimit import RateLimiter
from sandbox.state import SandboxState

Handler = Callable[[Request], Awaitable[Response]]
DEFAULT_LIMIT, MAX_LIMIT = 25, 100
# What the REST API counts against one API key per minute (developer docs, REST API Rate Limits).
REST_REQUESTS_PER_MINUTE = 960
# The account's abilities (`GET /abilities`); the provider only checks that the call works.
ABILITIES = (
    "teams",
    "read_only_users",
    "service_support_hours",
    "urgencies",
    "time_based_alert_grouping",
    "preview_intelligent_alert_grouping",
    "escalation_rule_assignment_strategies",
)
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
    "response_play",
    "status",
)
POLICY_FIELDS = ("description", "num_loops", "on_call_handoff_notifications", "teams")
GROUPING_SETTING_FIELDS = ("name", "description", "type", "config")
# The keys a grouping setting's config keeps, by type (OpenAPI: AlertGroupingSetting).
GROUPING_CONFIG_KEYS = {
    "time": ("timeout",),
    "intelligent": ("time_window", "iag_fields"),
    "content_based": ("time_window", "aggregate", "fields"),
    "content_based_intelligent": ("time_window", "aggregate", "fields"),
}
DEFAULT_STRATEGY = {"type": "assign_to_everyone"}
# Collections searched by `query=`, and which fields it matches.
QUERY_FIELDS = {
    "services": ("name",),
    "escalation_policies": ("name",),
    "vendors": ("name",),
    "schedules": ("name",),
    "teams": ("name",),
    "users": ("name", "email"),
}


def rest_routes(state: SandboxState, token: str, limiter: RateLimiter | None = None) -> list[Route]:
    """The REST routes, each behind the token check and the per-token rate limit."""
    api = _RestApi(state)

    def guarded(handler: Handler) -> Handler:
        expected = f"Token token={token}"

        async def check(request: Request) -> Response:
            if request.headers.get("authorization", "").strip() != expected:
                return error(401, "Authentication failed", 2006)
            if limiter is None:
                return await handler(request)
            if not limiter.allow(token):
                answer = error(429, "Rate Limit Exceeded", 2020)
            else:
                answer = await handler(request)
            answer.headers.update(limiter.headers(token))
            return answer

        return check

    table: list[tuple[str, Handler, str]] = [
        ("/abilities", api.list_abilities, "GET"),
        ("/abilities/{id}", api.test_ability, "GET"),
        ("/escalation_policies", api.list_of("escalation_policies"), "GET"),
        ("/escalation_policies", api.create(api.policies), "POST"),
        ("/escalation_policies/{id}", api.show(api.policies), "GET"),
        ("/escalation_policies/{id}", api.update(api.policies), "PUT"),
        ("/escalation_policies/{id}", api.delete_policy, "DELETE"),
        ("/services", api.list_of("services"), "GET"),
        ("/services", api.create(api.services), "POST"),
        ("/services/{id}", api.show(api.services), "GET"),
        ("/services/{id}", api.update(api.services), "PUT"),
        ("/services/{id}", api.delete(api.services), "DELETE"),
        ("/services/{id}/integrations", api.create(api.integrations), "POST"),
        ("/services/{id}/integrations/{integration_id}", api.show(api.integrations), "GET"),
        ("/services/{id}/integrations/{integration_id}", api.update(api.integrations), "PUT"),
        (
            "/services/{id}/integrations/{integration_id}",
            api.delete(api.integrations),
            "DELETE",
        ),
        ("/alert_grouping_settings", api.list_grouping_settings, "GET"),
        ("/alert_grouping_settings", api.create(api.grouping), "POST"),
        ("/alert_grouping_settings/{id}", api.show(api.grouping), "GET"),
        ("/alert_grouping_settings/{id}", api.update(api.grouping), "PUT"),
        ("/alert_grouping_settings/{id}", api.delete(api.grouping), "DELETE"),
        ("/vendors", api.list_of("vendors"), "GET"),
        ("/vendors/{id}", api.show(api.simple("vendors")), "GET"),
        ("/users", api.list_of("users"), "GET"),
        ("/users/{id}", api.show(api.simple("users")), "GET"),
        ("/schedules", api.list_of("schedules"), "GET"),
        ("/schedules/{id}", api.show(api.simple("schedules")), "GET"),
        ("/teams", api.list_of("teams"), "GET"),
        ("/teams", api.create(api.teams), "POST"),
        ("/teams/{id}", api.show(api.teams), "GET"),
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


@dataclass(frozen=True)
class _Kind:
    """How one kind of object is written and read: the create and update handlers share
    one shape (unwrap, normalise, check the merged object, apply, answer)."""

    collection: str
    wrapper: str
    # The object a request's path names (None: 404).
    find: Callable[[Request], dict[str, Any] | None]
    # PagerDuty's field rules, over the object as it would be after the write.
    check: Callable[[dict[str, Any], str | None], list[str]] | None = None
    # Create: store `body` (the request names the parent, for integrations).
    build: Callable[[dict[str, Any], Request], dict[str, Any]] | None = None
    # Update: write `body` onto the stored object.
    apply: Callable[[dict[str, Any], dict[str, Any]], None] | None = None
    # Request body -> what is checked and stored (e.g. `scheduled_actions: [null]` -> []).
    normalise: Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]] = (
        lambda body, _current: body
    )
    # Stored object -> what a GET answers, given the request's `include[]`.
    view: Callable[[dict[str, Any], set[str]], dict[str, Any]] = lambda obj, _incl: obj
    # Stored object -> what a create or update answers (fields PagerDuty derives).
    answer: Callable[[dict[str, Any]], dict[str, Any]] = lambda obj: obj
    # The parent a create needs (integrations: the service in the path).
    parent: Callable[[Request], dict[str, Any] | None] | None = None


class _RestApi:
    """Handlers; each takes the state's lock for its whole read-check-write."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.directory: Directory = state.directory
        d = self.directory
        by_id = self._by_path_id
        self.policies = _Kind(
            "escalation_policies",
            "escalation_policy",
            find=by_id("escalation_policies"),
            check=lambda body, current: rest_rules.escalation_policy_errors(body, d, current),
            build=self._build_policy,
            apply=self._apply_policy,
            view=self._view_policy,
        )
        self.services = _Kind(
            "services",
            "service",
            find=by_id("services"),
            check=lambda body, current: rest_rules.service_errors(body, d, current),
            build=self._build_service,
            apply=self._apply_service,
            normalise=_normalise_service,
            view=self._view_service,
            answer=self._service_teams,
        )
        self.integrations = _Kind(
            "integrations",
            "integration",
            find=self._integration,
            check=lambda body, _current: rest_rules.integration_errors(body, d),
            build=self._build_integration,
            apply=self._apply_integration,
            parent=by_id("services"),
        )
        self.grouping = _Kind(
            "alert_grouping_settings",
            "alert_grouping_setting",
            find=by_id("alert_grouping_settings"),
            check=lambda body, current: rest_rules.alert_grouping_setting_errors(body, d, current),
            build=self._build_grouping,
            apply=self._apply_grouping,
            normalise=_normalise_grouping,
        )
        self.teams = _Kind(
            "teams",
            "team",
            find=by_id("teams"),
            check=lambda body, current: rest_rules.name_errors(body, d, "teams", current),
            build=lambda body, _request: d.add_team(
                body["name"], description=body.get("description")
            ),
        )

    def simple(self, collection: str) -> _Kind:
        return _Kind(collection, _wrapper(collection), find=self._by_path_id(collection))

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
            includes = set(params.getlist("include[]"))
            view = self._list_view(collection)
            with self.state.lock:
                items = sorted(self.directory.list(collection), key=lambda o: o["name"].lower())
                items = [i for i in items if _matches(i, QUERY_FIELDS[collection], query)]
                if params.get("name") and collection == "services":
                    items = [i for i in items if i["name"] == params["name"]]
                teams = set(params.getlist("team_ids[]"))
                if teams and collection in ("services", "escalation_policies"):
                    items = [i for i in items if teams & self._team_ids(i)]
                page = [
                    self.directory.refresh_references(view(copy.deepcopy(i), includes))
                    for i in items[offset : offset + limit]
                ]
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

    def show(self, kind: _Kind) -> Handler:
        async def handler(request: Request) -> Response:
            includes = set(request.query_params.getlist("include[]"))
            with self.state.lock:
                found = kind.find(request)
                if found is None:
                    return not_found()
                shown = kind.view(copy.deepcopy(found), includes)
                return JSONResponse({kind.wrapper: self.directory.refresh_references(shown)})

        return handler

    def create(self, kind: _Kind) -> Handler:
        assert kind.build is not None

        async def handler(request: Request) -> Response:
            try:
                body = await _unwrap(request, kind.wrapper)
            except _BadBody as bad:
                return invalid([bad.problem])
            with self.state.lock:
                if kind.parent is not None and kind.parent(request) is None:
                    return not_found()
                body = kind.normalise(body, None)
                errors = kind.check(body, None) if kind.check else []
                if errors:
                    return invalid(errors)
                created = self.directory.refresh_references(
                    kind.answer(copy.deepcopy(kind.build(body, request)))
                )
                return JSONResponse({kind.wrapper: created}, status_code=201)

        return handler

    def update(self, kind: _Kind) -> Handler:
        assert kind.apply is not None

        async def handler(request: Request) -> Response:
            try:
                body = await _unwrap(request, kind.wrapper)
            except _BadBody as bad:
                return invalid([bad.problem])
            with self.state.lock:
                current = kind.find(request)
                if current is None:
                    return not_found()
                body = kind.normalise(body, current)
                errors = kind.check({**current, **body}, current["id"]) if kind.check else []
                if errors:
                    return invalid(errors)
                kind.apply(current, body)
                if current.get("name") is not None:
                    current["summary"] = current["name"]
                shown = kind.answer(copy.deepcopy(current))
                return JSONResponse({kind.wrapper: self.directory.refresh_references(shown)})

        return handler

    def delete(self, kind: _Kind) -> Handler:
        async def handler(request: Request) -> Response:
            with self.state.lock:
                found = kind.find(request)
                if found is None:
                    return not_found()
                self.directory.delete(kind.collection, found["id"])
            return Response(status_code=204)

        return handler

    # -- abilities -----------------------------------------------------------------

    async def list_abilities(self, request: Request) -> Response:
        return JSONResponse({"abilities": list(ABILITIES)})

    async def test_ability(self, request: Request) -> Response:
        if request.path_params["id"] in ABILITIES:
            return Response(status_code=204)
        return error(402, "Missing Account Ability", 2014)

    # -- escalation policies -------------------------------------------------------

    def _build_policy(self, body: dict[str, Any], _request: Request) -> dict[str, Any]:
        fields = {k: body[k] for k in POLICY_FIELDS if k in body}
        fields["escalation_rules"] = self._rules(body["escalation_rules"])
        fields["teams"] = self._refs("teams", body.get("teams") or [])
        return self.directory.create_escalation_policy(body["name"], **fields)

    def _apply_policy(self, policy: dict[str, Any], body: dict[str, Any]) -> None:
        policy.update({k: body[k] for k in (*POLICY_FIELDS, "name") if k in body})
        if "escalation_rules" in body:
            policy["escalation_rules"] = self._rules(body["escalation_rules"])
        if "teams" in body:
            policy["teams"] = self._refs("teams", body["teams"] or [])

    def _view_policy(self, policy: dict[str, Any], includes: set[str]) -> dict[str, Any]:
        # The provider reads rules with include[]=escalation_rule_assignment_strategies.
        for rule in policy.get("escalation_rules", []):
            if "escalation_rule_assignment_strategies" in includes:
                rule.setdefault("escalation_rule_assignment_strategy", dict(DEFAULT_STRATEGY))
            else:
                rule.pop("escalation_rule_assignment_strategy", None)
        return self._expand_teams(policy, includes)

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

    def _build_service(self, body: dict[str, Any], _request: Request) -> dict[str, Any]:
        # Present keys count even when null: a null timeout disables it in PagerDuty.
        fields = {k: body[k] for k in SERVICE_FIELDS if k in body}
        fields["scheduled_actions"] = fields.get("scheduled_actions") or []
        for name in ("incident_urgency_rule", "status", "alert_creation"):
            if fields.get(name) is None:
                fields.pop(name, None)  # null here means "the default"
        return self.directory.create_service(
            body["name"], escalation_policy_id=body["escalation_policy"]["id"], **fields
        )

    def _apply_service(self, service: dict[str, Any], body: dict[str, Any]) -> None:
        if "escalation_policy" in body:
            self.directory.move_service(service, body["escalation_policy"]["id"])
        if "alert_grouping_parameters" in body:
            # Grouping set on the service takes it out of any alert grouping setting.
            self.directory.detach_from_grouping(service["id"], drop_empty=True)
        service.update({k: body[k] for k in (*SERVICE_FIELDS, "name") if k in body})

    def _view_service(self, service: dict[str, Any], includes: set[str]) -> dict[str, Any]:
        # PagerDuty shows these only when asked (the provider always asks).
        if "auto_pause_notifications_parameters" not in includes:
            service.pop("auto_pause_notifications_parameters", None)
        self._service_teams(service)
        if "escalation_policies" in includes:
            policy = self.directory.get("escalation_policies", service["escalation_policy"]["id"])
            if policy is not None:
                service["escalation_policy"] = copy.deepcopy(policy)
        if "integrations" in includes:
            service["integrations"] = [
                copy.deepcopy(self.directory.get("integrations", ref["id"]))
                for ref in service["integrations"]
            ]
        return self._expand_teams(service, includes)

    def _service_teams(self, service: dict[str, Any]) -> dict[str, Any]:
        # A service's teams are read-only in PagerDuty: its escalation policy's teams.
        policy = self.directory.get("escalation_policies", service["escalation_policy"]["id"])
        service["teams"] = copy.deepcopy(policy["teams"]) if policy is not None else []
        return service

    # -- integrations --------------------------------------------------------------

    def _integration(self, request: Request) -> dict[str, Any] | None:
        integration = self.directory.get("integrations", request.path_params["integration_id"])
        if integration is None or integration["service"]["id"] != request.path_params["id"]:
            return None
        return integration

    def _build_integration(self, body: dict[str, Any], request: Request) -> dict[str, Any]:
        vendor_id = (body.get("vendor") or {}).get("id")
        vendor = self.directory.get("vendors", vendor_id) if vendor_id else None
        # PagerDuty names an unnamed integration after its vendor.
        name = body.get("name") or (vendor["name"] if vendor else "Events API V2")
        kind = body.get("type") or "generic_events_api_inbound_integration"
        if kind == "service_integration":
            # The provider's generic type for "made from a vendor"; the stored type is the
            # vendor's (assumed Events API v2: the key is used with /v2/enqueue).
            kind = "events_api_v2_inbound_integration"
        return self.directory.add_integration(
            request.path_params["id"], name, type=kind, vendor_id=vendor_id
        )

    def _apply_integration(self, integration: dict[str, Any], body: dict[str, Any]) -> None:
        if body.get("name"):
            integration["name"] = body["name"]

    # -- alert grouping settings ---------------------------------------------------

    def _build_grouping(self, body: dict[str, Any], _request: Request) -> dict[str, Any]:
        return self.directory.add_alert_grouping_setting(
            body["type"],
            body["config"],
            [s["id"] for s in body["services"]],
            name=body.get("name"),
            description=body.get("description"),
        )

    def _apply_grouping(self, setting: dict[str, Any], body: dict[str, Any]) -> None:
        setting.update({k: body[k] for k in GROUPING_SETTING_FIELDS if k in body})
        if "services" in body:
            refs = self.directory.service_references([s["id"] for s in body["services"]])
            setting["services"] = refs
        setting["updated_at"] = iso(self.state.clock())

    async def list_grouping_settings(self, request: Request) -> Response:
        params = request.query_params
        wanted = set(params.getlist("service_ids[]"))
        try:
            limit = min(int(params.get("limit", DEFAULT_LIMIT)), MAX_LIMIT)
        except ValueError:
            return invalid(["limit must be an integer"])
        with self.state.lock:
            items = [
                self.directory.refresh_references(copy.deepcopy(s))
                for s in self.directory.list("alert_grouping_settings")
                if not wanted or wanted & {r["id"] for r in s["services"]}
            ]
        # Cursor paging: `after` is the id of the last setting of the previous page.
        after = params.get("after")
        if after:
            ids = [s["id"] for s in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        page = items[:limit]
        more = len(items) > limit
        return JSONResponse(
            {
                "alert_grouping_settings": page,
                "after": page[-1]["id"] if more else None,
                "before": None,
                "limit": limit,
                "total": len(items) if params.get("total") == "true" else None,
            }
        )

    # -- helpers -------------------------------------------------------------------

    def _by_path_id(self, collection: str) -> Callable[[Request], dict[str, Any] | None]:
        return lambda request: self.directory.get(collection, request.path_params["id"])

    def _list_view(self, collection: str) -> Callable[[dict[str, Any], set[str]], dict[str, Any]]:
        return {
            "services": self._view_service,
            "escalation_policies": self._view_policy,
        }.get(collection, lambda obj, _includes: obj)

    def _team_ids(self, obj: dict[str, Any]) -> set[str]:
        """`team_ids[]` filtering: an object's teams; a service's are its policy's
        (PagerDuty shows a service under its escalation policy's team)."""
        ids = {ref["id"] for ref in obj.get("teams") or ()}
        policy = obj.get("escalation_policy")
        if isinstance(policy, dict):
            found = self.directory.get("escalation_policies", policy["id"]) or {}
            ids |= {ref["id"] for ref in found.get("teams") or ()}
        return ids

    def _expand_teams(self, obj: dict[str, Any], includes: set[str]) -> dict[str, Any]:
        """include[]=teams: full team objects (with `name`) instead of references."""
        if "teams" in includes:
            obj["teams"] = [
                copy.deepcopy(self.directory.get("teams", ref["id"]) or ref)
                for ref in obj.get("teams", [])
            ]
        return obj

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
            strategy = rule.get("escalation_rule_assignment_strategy") or DEFAULT_STRATEGY
            if isinstance(strategy, str):
                strategy = {"type": strategy}
            stored.append(
                {
                    "id": new_object_id(),
                    "escalation_delay_in_minutes": rule["escalation_delay_in_minutes"],
                    "escalation_rule_assignment_strategy": dict(strategy),
                    "targets": targets,
                }
            )
        return stored


def _normalise_service(body: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """What PagerDuty makes of the provider's service body before checking it."""
    body = dict(body)
    actions = body.get("scheduled_actions")
    if isinstance(actions, list):
        # `[null]`: the provider's "support hours, no scheduled actions".
        body["scheduled_actions"] = [a for a in actions if a is not None]
    for name in ("auto_resolve_timeout", "acknowledgement_timeout"):
        if body.get(name) == 0:
            body[name] = None  # 0 disables, shown as null
    rule = body.get("incident_urgency_rule")
    if (
        current is not None
        and isinstance(rule, dict)
        and rule.get("type") == "constant"
        and "scheduled_actions" not in body
    ):
        # Scheduled actions only exist with support hours; a constant rule drops them
        # (sandbox assumption: the provider sends none when the rule becomes constant).
        body["scheduled_actions"] = []
    return body


def _normalise_grouping(body: dict[str, Any], _current: dict[str, Any] | None) -> dict[str, Any]:
    """Keep only the config keys the setting's type has; intelligent defaults iag_fields."""
    body = dict(body)
    config, kind = body.get("config"), body.get("type")
    if isinstance(config, dict) and kind in GROUPING_CONFIG_KEYS:
        kept = {k: config[k] for k in GROUPING_CONFIG_KEYS[kind] if k in config}
        if kind == "intelligent":
            kept.setdefault("iag_fields", ["summary"])
        body["config"] = kept
    return body


def _wrapper(collection: str) -> str:
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
