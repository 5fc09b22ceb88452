"""The look-ups (`pulumi.runtime.invoke` tokens) the project uses, matched as the real ones match.

- `getVendor`: `GET /vendors?limit=100&offset=N` over every page, no `query`; on each
  page a name equal ignoring case wins (a later page's exact match beats an earlier
  partial one), else the first name the case-insensitive pattern `name` finds. (The
  real loop retries a failed page at once and without end; the stand-in retries like
  the other look-ups, for 2 minutes.)
- `getUser` (`email`, exact), `getSchedule`, `getTeam` (`name`, exact, case-sensitive):
  the first page of `?query=` only.
- `getService`: `?include[]=teams&limit=100&query=`, paged while `more`, exact name.
- `getEscalationPolicy`: `?include[]=teams&query=`, exact name. The real one never
  sends an offset, so a first page with `more` and no match is read again forever;
  the stand-in stops and says so instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.pulumi_provider.resource_type import Api, ProviderError, read_retrying
from sandbox.pulumi_provider.rest import RestClient, RestError
from sandbox.pulumi_provider.retry import Timing

PAGE = 100


def get_vendor(api: Api, args: dict[str, Any]) -> dict[str, Any]:
    name = _argument(args, "name")
    try:
        pattern = re.compile(name, re.IGNORECASE)
    except re.error as error:
        # Go's regexp.MustCompile panics here; a clear error serves better.
        raise ProviderError(f"the vendor name {name!r} is not a valid pattern: {error}") from None
    found: dict[str, Any] | None = None
    offset, more = 0, True
    while more:
        params = [("limit", str(PAGE))] + ([("offset", str(offset))] if offset else [])
        try:
            page = _listed(api.framework, api.timing, "/vendors", params)
        except RestError as error:
            raise ProviderError(f"Error reading PagerDuty vendor {name}: {error}") from None
        more = bool(page.get("more"))
        if more and not page.get("limit"):
            raise ProviderError(
                "GET /vendors answered more=true without a limit: the real provider would read "
                "the same page forever"
            )
        offset += int(page.get("limit") or 0)
        vendors = page.get("vendors") or []
        exact = next(
            (v for v in vendors if str(v.get("name", "")).casefold() == name.casefold()), None
        )
        if exact is not None:
            found = exact
        elif found is None:
            found = next((v for v in vendors if pattern.search(str(v.get("name", "")))), None)
    if found is None:
        raise ProviderError(f"Unable to locate any vendor with the name: {name}")
    return {
        "id": found.get("id"),
        "name": found.get("name"),
        "type": found.get("generic_service_type") or "",
    }


def get_user(api: Api, args: dict[str, Any]) -> dict[str, Any]:
    email = _argument(args, "email")
    users = _first_page(api.framework, api.timing, "/users", "users", email, 120, 0.0)
    user = next((u for u in users if u.get("email") == email), None)
    if user is None:
        raise ProviderError(f"Unable to locate any user with the email: {email}")
    return {
        "id": user.get("id"),
        "name": user.get("name") or "",
        "email": user.get("email"),
        "description": user.get("description") or "",
        "jobTitle": user.get("job_title") or "",
        "role": user.get("role") or "",
        "timeZone": user.get("time_zone") or "",
    }


def get_schedule(api: Api, args: dict[str, Any]) -> dict[str, Any]:
    name = _argument(args, "name")
    schedules = _first_page(api.framework, api.timing, "/schedules", "schedules", name, 120, 0.0)
    schedule = next((s for s in schedules if s.get("name") == name), None)
    if schedule is None:
        raise ProviderError(f"Unable to locate any schedule with the name: {name}")
    return {"id": schedule.get("id"), "name": schedule.get("name")}


def get_team(api: Api, args: dict[str, Any]) -> dict[str, Any]:
    name = _argument(args, "name")
    # SDKv2 data source: 5 minutes, 30 s between tries.
    teams = _first_page(api.sdkv2, api.timing, "/teams", "teams", name, 300, 30.0)
    team = next((t for t in teams if t.get("name") == name), None)
    if team is None:
        raise ProviderError(f"Unable to locate any team with name: {name}")
    parent = team.get("parent")
    return {
        "id": team.get("id"),
        "name": team.get("name"),
        "description": team.get("description") or "",
        "parent": parent.get("id") if isinstance(parent, dict) else (parent or args.get("parent")),
        "defaultRole": team.get("default_role") or args.get("defaultRole") or "",
    }


def get_service(api: Api, args: dict[str, Any]) -> dict[str, Any]:
    name = _argument(args, "name")
    offset = 0
    while True:
        params = [
            ("include[]", "teams"),
            ("limit", str(PAGE)),
            ("offset", str(offset)),
            ("query", name),
        ]
        if offset == 0:
            params.remove(("offset", "0"))  # go-querystring omits a zero offset
        page = _listed(api.framework, api.timing, "/services", params)
        match = next((s for s in page.get("services") or [] if s.get("name") == name), None)
        if match is not None:
            return _service_found(match)
        offset += PAGE
        if not page.get("more"):
            raise ProviderError(f"Unable to locate any service with the name: {name}")


def _service_found(service: dict[str, Any]) -> dict[str, Any]:
    policy = service.get("escalation_policy") or {}
    return {
        "id": service.get("id"),
        "name": service.get("name"),
        "type": service.get("type") or "",
        "autoResolveTimeout": service.get("auto_resolve_timeout"),
        "acknowledgementTimeout": service.get("acknowledgement_timeout"),
        "alertCreation": service.get("alert_creation") or "",
        "description": service.get("description") or "",
        "escalationPolicy": policy.get("id"),
        "teams": [
            {"id": team.get("id"), "name": team.get("name") or ""}
            for team in service.get("teams") or []
        ],
    }


def get_escalation_policy(api: Api, args: dict[str, Any]) -> dict[str, Any]:
    name = _argument(args, "name")
    params = [("include[]", "teams"), ("query", name)]
    page = _listed(api.framework, api.timing, "/escalation_policies", params)
    match = next((p for p in page.get("escalation_policies") or [] if p.get("name") == name), None)
    if match is not None:
        return {
            "id": match.get("id"),
            "name": match.get("name"),
            "description": match.get("description") or "",
            "teams": [team.get("id") for team in match.get("teams") or []],
        }
    if page.get("more"):
        raise ProviderError(
            f"no escalation policy named {name!r} on the first page and more=true: the real "
            "provider never sends an offset and would read that page forever"
        )
    raise ProviderError(f"Unable to locate any escalation policy with the name: {name}")


def _argument(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str):
        raise ProviderError(f"Missing required argument '{name}'")
    return value


def _first_page(
    client: RestClient,
    timing: Timing,
    path: str,
    collection: str,
    query: str,
    seconds: float,
    pause: float,
) -> list[dict[str, Any]]:
    return _listed(client, timing, path, [("query", query)], seconds, pause).get(collection) or []


def _listed(
    client: RestClient,
    timing: Timing,
    path: str,
    params: list[tuple[str, str]],
    seconds: float = 120,
    pause: float = 0.0,
) -> dict[str, Any]:
    """One list call, retried as the look-ups retry: anything but a 400 for `seconds`."""
    return read_retrying(client, timing, path, seconds, True, params, pause=pause)


LOOKUPS: dict[str, Callable[[Api, dict[str, Any]], dict[str, Any]]] = {
    "pagerduty:index/getVendor:getVendor": get_vendor,
    "pagerduty:index/getUser:getUser": get_user,
    "pagerduty:index/getSchedule:getSchedule": get_schedule,
    "pagerduty:index/getTeam:getTeam": get_team,
    "pagerduty:index/getService:getService": get_service,
    "pagerduty:index/getEscalationPolicy:getEscalationPolicy": get_escalation_policy,
}
