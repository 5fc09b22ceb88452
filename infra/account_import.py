"""Read what `apica-pd import` adopts from a PagerDuty account: the edge of the import.

`fetch_account(api, selection)` reads the services asked for (by name, by team or
all) with their integrations and auto-pause settings, their escalation policies
(rules with assignment strategies, teams), the users and schedules those rules
target, the vendors of the integrations and the alert grouping settings the
services belong to. It returns an `Account`: PagerDuty's objects as PagerDuty shapes
them, keyed by id, integration keys already dropped. `infra.import_stack` turns it
into a stack file; nothing here decides what the file says.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.errors import InfraError
from infra.pagerduty_api import PagerDutyApi, PagerDutyApiError

SERVICE_INCLUDES = ["integrations", "auto_pause_notifications_parameters"]
POLICY_INCLUDES = ["escalation_rule_assignment_strategies", "teams"]
#: Service ids per alert grouping settings request (each one is a query parameter).
GROUPING_BATCH = 50
USER_TARGETS = ("user", "user_reference")
SCHEDULE_TARGETS = ("schedule", "schedule_reference", "schedule_v3_reference")


class ImportSelectionError(InfraError):
    """The services asked for are not in the account as named."""


@dataclass(frozen=True)
class Selection:
    """Which services to import: by name, every service of one team, or all of them."""

    names: tuple[str, ...] = ()
    team: str | None = None
    everything: bool = False

    def describe(self) -> str:
        """The selection as the command line said it."""
        if self.everything:
            return "--all"
        if self.team is not None:
            return f"--team {self.team!r}"
        return " ".join(f"--service {name!r}" for name in self.names)


@dataclass(frozen=True)
class Account:
    """The part of a PagerDuty account an import covers (REST shapes, keyed by id)."""

    source: str  # the REST API's base URL
    selection: Selection
    services: tuple[dict[str, Any], ...]  # PagerDuty's order (by name); full integrations
    policies: Mapping[str, dict[str, Any]]
    users: Mapping[str, dict[str, Any]]
    schedules: Mapping[str, dict[str, Any]]
    teams: Mapping[str, dict[str, Any]]
    vendors: Mapping[str, dict[str, Any]]
    #: service id -> the alert grouping setting it belongs to.
    grouping_settings: Mapping[str, dict[str, Any]] = field(default_factory=dict)


def fetch_account(api: PagerDutyApi, selection: Selection) -> Account:
    """Everything `selection` needs, read through `api` (GETs only)."""
    services = _without_keys(_select(api, selection))
    reader = _Reader(api)
    policies = {}
    for service in services:
        policy_id = (service.get("escalation_policy") or {}).get("id")
        if policy_id and policy_id not in policies:
            policies[policy_id] = reader.policy(policy_id)
    for policy in policies.values():
        for rule in policy.get("escalation_rules") or ():
            for target in rule.get("targets") or ():
                reader.target(target)
        for team in policy.get("teams") or ():
            reader.team(team)
    for service in services:
        for integration in service.get("integrations") or ():
            vendor = integration.get("vendor")
            if isinstance(vendor, dict) and vendor.get("id"):
                reader.vendor(vendor["id"])
    return Account(
        source=api.base_url,
        selection=selection,
        services=tuple(services),
        policies=policies,
        users=reader.users,
        schedules=reader.schedules,
        teams=reader.teams,
        vendors=reader.vendors,
        grouping_settings=_grouping_settings(api, services),
    )


def _select(api: PagerDutyApi, selection: Selection) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"include[]": SERVICE_INCLUDES}
    if selection.everything:
        return api.list_all("/services", "services", params)
    if selection.team is not None:
        team = _one_by_name(
            api.list_all("/teams", "teams", {"query": selection.team}), selection.team, "team"
        )
        return api.list_all("/services", "services", {**params, "team_ids[]": [team["id"]]})
    chosen: dict[str, dict[str, Any]] = {}
    for name in selection.names:
        found = api.list_all("/services", "services", {**params, "query": name})
        service = _one_by_name(found, name, "service")
        chosen.setdefault(service["id"], service)
    return list(chosen.values())


def _one_by_name(found: list[dict[str, Any]], name: str, what: str) -> dict[str, Any]:
    """The entry named `name` exactly, else the one equal ignoring case (PagerDuty's names
    are unique ignoring case); an error naming close names otherwise."""
    for wanted in (lambda n: n == name, lambda n: n.casefold() == name.casefold()):
        matches = [item for item in found if wanted(str(item.get("name", "")))]
        if matches:
            return matches[0]
    names = [str(item.get("name", "")) for item in found]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ImportSelectionError(
        f"no {what} named {name!r} in PagerDuty (names match exactly, ignoring case){hint}"
    )


def _without_keys(services: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Services with their integrations' keys dropped: an import never holds a secret."""
    cleaned = []
    for service in services:
        integrations = [
            {k: v for k, v in integration.items() if k != "integration_key"}
            for integration in service.get("integrations") or ()
            if isinstance(integration, dict)
        ]
        cleaned.append({**service, "integrations": integrations})
    return cleaned


def _grouping_settings(
    api: PagerDutyApi, services: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """service id -> its alert grouping setting, for services without their own grouping."""
    ids = [
        str(s["id"])
        for s in services
        if not ((s.get("alert_grouping_parameters") or {}).get("type"))
    ]
    by_service: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), GROUPING_BATCH):
        batch = ids[start : start + GROUPING_BATCH]
        settings = api.list_cursor(
            "/alert_grouping_settings", "alert_grouping_settings", {"service_ids[]": batch}
        )
        for setting in settings:
            for ref in setting.get("services") or ():
                if isinstance(ref, dict) and ref.get("id") in batch:
                    by_service.setdefault(str(ref["id"]), setting)
    return by_service


class _Reader:
    """Reads each referenced object once."""

    def __init__(self, api: PagerDutyApi) -> None:
        self.api = api
        self.users: dict[str, dict[str, Any]] = {}
        self.schedules: dict[str, dict[str, Any]] = {}
        self.teams: dict[str, dict[str, Any]] = {}
        self.vendors: dict[str, dict[str, Any]] = {}

    def policy(self, policy_id: str) -> dict[str, Any]:
        found = self.api.get(f"/escalation_policies/{policy_id}", {"include[]": POLICY_INCLUDES})
        return _entity(found, "escalation_policy", policy_id)

    def target(self, target: dict[str, Any]) -> None:
        kind, target_id = target.get("type"), target.get("id")
        if not target_id:
            return
        if kind in USER_TARGETS and target_id not in self.users:
            self.users[target_id] = _entity(self.api.get(f"/users/{target_id}"), "user", target_id)
        elif kind in SCHEDULE_TARGETS and target_id not in self.schedules:
            found = self.api.get(f"/schedules/{target_id}")
            self.schedules[target_id] = _entity(found, "schedule", target_id)

    def team(self, team: dict[str, Any]) -> None:
        team_id = team.get("id")
        if not team_id or team_id in self.teams:
            return
        if team.get("name"):  # include[]=teams gave the whole team
            self.teams[team_id] = team
        else:
            self.teams[team_id] = _entity(self.api.get(f"/teams/{team_id}"), "team", team_id)

    def vendor(self, vendor_id: str) -> None:
        if vendor_id not in self.vendors:
            found = self.api.get(f"/vendors/{vendor_id}")
            self.vendors[vendor_id] = _entity(found, "vendor", vendor_id)


def _entity(answer: dict[str, Any], wrapper: str, object_id: str) -> dict[str, Any]:
    found = answer.get(wrapper)
    if not isinstance(found, dict):
        raise PagerDutyApiError(f"GET {wrapper} {object_id}: the answer has no {wrapper!r} object")
    return found
