"""After `pulumi up`: does each route's integration take the bridge's Events API v2 events?

For each route of a routes file, read its service and the integration holding the
route's routing key over PagerDuty's REST API (`infra.pagerduty_api`) and say OK or what
is wrong: the service is gone or disabled (PagerDuty drops its events), no integration
on it has the key (deleted or re-created since the routes file was written), or the
integration is not of PagerDuty's Events API v2 type. The key itself is never shown,
only its last four characters.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from contract.redact import last4
from contract.routes_file import Route, RoutesFile
from infra.messages import escape
from infra.plan import EVENTS_API_V2_INTEGRATION


class Reader(Protocol):
    def get_or_none(self, path: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class RouteCheck:
    """The verdict on one route: `ok`, and in words what was found or what is wrong."""

    route: str
    ok: bool
    detail: str


def verify_routes(routes: RoutesFile, reader: Reader) -> list[RouteCheck]:
    """One check per route, in the routes file's order."""
    return [_check(name, route, reader) for name, route in routes.routes.items()]


def _check(name: str, route: Route, reader: Reader) -> RouteCheck:
    key = route.routing_key.get_secret_value()
    found = reader.get_or_none(f"/services/{route.service_id}")
    if found is None:
        return RouteCheck(
            name,
            False,
            f"service {route.service_id} ({route.service_name!r}) does not exist: deleted, "
            "or the routes file is stale (`pulumi up`, then `apica-pd routes pull`)",
        )
    service = found.get("service") or {}
    service_name = str(service.get("name") or route.service_name)
    if service.get("status") == "disabled":
        return RouteCheck(
            name, False, f"service {service_name!r} is disabled: PagerDuty drops its events"
        )
    integration = _integration_with_key(route, service, key, reader)
    if integration is None:
        return RouteCheck(
            name,
            False,
            f"no integration on service {service_name!r} has the route's key {last4(key)} "
            f"(integration {route.integration_name!r} deleted or re-created? `pulumi up`, "
            "then `apica-pd routes pull`)",
        )
    integration_name = str(integration.get("name") or "")
    kind = str(integration.get("type") or "")
    if kind != EVENTS_API_V2_INTEGRATION:
        vendor = integration.get("vendor") or {}
        of_vendor = f", vendor {vendor['summary']!r}" if vendor.get("summary") else ""
        return RouteCheck(
            name,
            False,
            f"integration {integration_name!r} on service {service_name!r} has type "
            f"{kind or '(none)'!r}{of_vendor}, not {EVENTS_API_V2_INTEGRATION}: it may not "
            "take the bridge's Events API v2 events; give it `integration: {type: "
            "events_api_v2}` in the stack file",
        )
    return RouteCheck(
        name,
        True,
        f"integration {integration_name!r} on service {service_name!r} takes Events API v2 "
        f"events (key {last4(key)})",
    )


def _integration_with_key(
    route: Route, service: dict[str, Any], key: str, reader: Reader
) -> dict[str, Any] | None:
    refs = [ref for ref in service.get("integrations") or () if isinstance(ref, dict)]
    # The route's own integration, by id (routes file version 2) or else by name, is
    # almost always the one: ask for it first.
    refs.sort(
        key=lambda ref: (
            ref.get("id") != route.integration_id,
            ref.get("summary") != route.integration_name,
        )
    )
    for ref in refs:
        found = reader.get_or_none(f"/services/{route.service_id}/integrations/{ref.get('id')}")
        integration = (found or {}).get("integration") or {}
        stored = str(integration.get("integration_key") or "")
        if stored and hmac.compare_digest(stored.encode(), key.encode()):
            return integration
    return None


def render(checks: Iterable[RouteCheck]) -> str:
    """One line per route, then a count; every value escaped."""
    checks = list(checks)
    lines = [f"{c.route}: {'ok' if c.ok else 'PROBLEM'}: {c.detail}" for c in checks]
    bad = sum(not c.ok for c in checks)
    total = len(checks)
    if bad:
        lines.append(f"{bad} of {total} route{'s' * (total != 1)} cannot page as routed")
    else:
        lines.append(f"all {total} route{'s' * (total != 1)} take Events API v2 events")
    return "\n".join(escape(line) for line in lines) + "\n"
