"""The plan: the resolved `Stack` (infra.model) in the provider's words, as plain data.

Pure: no Pulumi, no network. Each function reads the resolved model and returns what
pulumi-pagerduty takes (argument values in PagerDuty's vocabulary: urgency rule
types, assignment strategies, timeout strings), so `infra.resources` only wires ids
and registers. Logical names derive from stack-file keys, never from display names,
so renaming a service or policy updates it in place instead of replacing it (and its
integration key).

`routes_document` builds the bridge's routes file once Pulumi knows the ids and
keys; everything else a route carries is decided here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contract.routes_file import MAINTENANCE_VERSION
from infra.model import (
    AlertGrouping,
    ExistingService,
    Integration,
    NewPolicy,
    NewService,
    Stack,
    Target,
    UrgencyRule,
)

# PagerDuty's "off" for auto-resolve and acknowledgement timeouts in the provider.
TIMEOUT_OFF = "null"
#: Escalation target kinds as the provider spells them.
TARGET_REFERENCES = {"user": "user_reference", "schedule": "schedule_reference"}
#: The routes-file version (contract.routes_file) whose routes carry `integration_id`.
ROUTES_FILE_VERSION_WITH_IDS = 2
#: PagerDuty's type of a plain Events API v2 integration (`integration.type: events_api_v2`).
EVENTS_API_V2_INTEGRATION = "events_api_v2_inbound_integration"


@dataclass(frozen=True, slots=True)
class ResolvedRoute:
    """What Pulumi learns per service: needed to finish the routes file."""

    service_id: str
    service_url: str | None
    routing_key: str
    integration_id: str


# -- names --------------------------------------------------------------------------


def policy_logical_name(key: str) -> str:
    return f"policy-{key}"


def service_logical_name(key: str) -> str:
    return f"service-{key}"


def integration_logical_name(key: str) -> str:
    return f"service-{key}-apica"


def grouping_logical_name(key: str) -> str:
    return f"service-{key}-grouping"


# -- provider arguments --------------------------------------------------------------


def policy_args(
    policy: NewPolicy, target_id: Callable[[Target], Any], team_id: Callable[[str], Any]
) -> dict[str, Any]:
    """`EscalationPolicy` arguments; `target_id` and `team_id` give looked-up ids."""
    return {
        "name": policy.name,
        "description": policy.description,
        "num_loops": policy.num_loops,
        "rules": [
            {
                "escalation_delay_in_minutes": rule.delay_minutes,
                "targets": [
                    {"type": TARGET_REFERENCES[target.type], "id": target_id(target)}
                    for target in rule.targets
                ],
                "escalation_rule_assignment_strategy": {"type": rule.assignment},
            }
            for rule in policy.rules
        ],
        "teams": team_id(policy.team) if policy.team else None,
    }


def service_args(service: NewService) -> dict[str, Any]:
    """`Service` arguments of a new service, except its escalation policy's id."""
    args: dict[str, Any] = {
        "name": service.name,
        "description": service.description,
        "incident_urgency_rule": _urgency_rule(service.urgency),
        "auto_resolve_timeout": _timeout(service.auto_resolve_timeout),
        "acknowledgement_timeout": _timeout(service.acknowledgement_timeout),
    }
    hours = service.urgency.support_hours
    if hours is not None:
        args["support_hours"] = {
            "type": "fixed_time_per_day",
            "time_zone": hours.time_zone,
            "start_time": hours.start_time,  # HH:MM:SS, as PagerDuty returns it (no diff)
            "end_time": hours.end_time,
            "days_of_weeks": list(hours.days_of_week),
        }
        # PagerDuty wants the list whenever support hours drive urgency, even empty.
        args["scheduled_actions"] = (
            # Low-urgency incidents left open overnight page when support hours begin.
            [
                {
                    "type": "urgency_change",
                    "to_urgency": "high",
                    "ats": [{"type": "named_time", "name": "support_hours_start"}],
                }
            ]
            if service.urgency.raise_at_support_hours_start
            else []
        )
    # Disabled is stated explicitly, so a pause switched on by hand is undone.
    pause: dict[str, Any] = {"enabled": service.auto_pause_timeout is not None}
    if service.auto_pause_timeout is not None:
        pause["timeout"] = service.auto_pause_timeout
    args["auto_pause_notifications_parameters"] = pause
    return args


def service_ignored_properties(service: NewService) -> list[str]:
    """Service properties Pulumi must not compare: `supportHours` under a constant urgency.

    The provider cannot clear support hours (its Go struct omits an empty value), so after
    a switch from support hours to a constant urgency PagerDuty may keep the old ones, and
    every `pulumi preview --refresh` would plan to remove them, forever. Ignored, Pulumi
    keeps what its state holds, whether PagerDuty kept the hours or dropped them (its API
    reference does not say, so the sandbox does not guess); under a constant rule support
    hours decide nothing.
    """
    return ["supportHours"] if service.urgency.type == "constant" else []


def grouping_setting_args(service: NewService) -> dict[str, Any] | None:
    """`AlertGroupingSetting` arguments (except the service id); None: no grouping.

    Grouping is a setting of its own, not the Service's deprecated
    `alert_grouping_parameters`: setting those on a service takes it out of any
    account-wide grouping setting, and the provider warns about them on every run.
    """
    grouping = service.alert_grouping
    if grouping is None:
        return None
    config: dict[str, Any]
    if grouping.type == "time":
        # The setting counts seconds (the service field counted minutes). Until-resolved
        # is an unset timeout: the provider refuses an explicit 0 and sends 0 for unset.
        config = {"timeout": grouping.timeout * 60} if grouping.timeout else {}
    else:
        # An unset time_window is PagerDuty's recommended window (again 0 on the wire).
        optional = {"time_window": grouping.time_window, "aggregate": grouping.aggregate}
        config = {name: value for name, value in optional.items() if value is not None}
        if grouping.fields:
            config["fields"] = list(grouping.fields)
    return {
        "name": service.name,
        "description": f"Alert grouping of {service.name} ({_grouping_mode(grouping)}), "
        "managed by apica-pagerduty",
        "type": grouping.type,
        "config": config,
    }


def _grouping_mode(grouping: AlertGrouping) -> str:
    # The provider's timeout and time_window are optional and computed: leaving one out
    # keeps the value its state has, unless something else about the setting changes
    # (then the provider sends 0: until resolved, recommended). So the description says
    # whether one is set, and a switch to until_resolved or recommended updates it.
    if grouping.type == "time":
        return "time, window set" if grouping.timeout else "time, until the incident is resolved"
    window = "window set" if grouping.time_window else "PagerDuty's recommended window"
    return f"{grouping.type}, {window}"


def integration_args(integration: Integration, vendor_id: Any) -> dict[str, Any]:
    """`ServiceIntegration` arguments except the service; `vendor_id`: the Apica vendor's
    id (None for an events_api_v2 integration, which has no vendor)."""
    if integration.type == "events_api_v2":
        return {"name": integration.name, "type": EVENTS_API_V2_INTEGRATION}
    return {"name": integration.name, "vendor": vendor_id}


def integration_protected(service: NewService | ExistingService) -> bool:
    """An integration follows its service; on an existing one nothing can opt it in."""
    return isinstance(service, NewService) and service.protect


def _urgency_rule(urgency: UrgencyRule) -> dict[str, Any]:
    if urgency.type == "constant":
        return {"type": "constant", "urgency": urgency.urgency}
    return {
        "type": "use_support_hours",
        "during_support_hours": {"type": "constant", "urgency": urgency.during_support_hours},
        "outside_support_hours": {"type": "constant", "urgency": urgency.outside_support_hours},
    }


def _timeout(seconds: int | None) -> str:
    # The provider takes these as strings; "null" is how it switches them off.
    return TIMEOUT_OFF if seconds is None else str(seconds)


# -- routes file --------------------------------------------------------------------


def routes_document(
    stack: Stack, stack_name: str, resolved: Mapping[str, ResolvedRoute]
) -> dict[str, object]:
    """The routes file (`contract.routes_file`) as a dict; `resolved` is keyed by route.

    A service without an Apica integration (`integration: none`) is no route.
    """
    routes: dict[str, dict[str, object]] = {}
    for key, service in stack.services.items():
        integration = service.integration
        if integration is None:
            continue
        known = resolved[key]
        routes[key] = {
            "service_name": service.name,
            "service_id": known.service_id,
            "service_url": known.service_url,
            "integration_name": integration.name,
            "routing_key": known.routing_key,
            "integration_id": known.integration_id,
            "check_ids": list(integration.check_ids),
            "check_guids": list(integration.check_guids),
            "check_tags": list(integration.check_tags),
            "severity_map": dict(integration.severity_map),
            "links": [{"href": link.href, "text": link.text} for link in integration.links],
        }
        if integration.maintenance:  # version 3; without windows older bridges read the file
            routes[key]["maintenance"] = [
                window.model_dump(mode="json", exclude_none=True)
                for window in integration.maintenance
            ]
    has_windows = any(service.integration.maintenance for service in stack.services.values()
                      if service.integration is not None)
    return {
        "version": MAINTENANCE_VERSION if has_windows else ROUTES_FILE_VERSION_WITH_IDS,
        "stack": stack_name,
        "catch_all": stack.catch_all,
        "routes": routes,
    }


def routes_json(document: Mapping[str, object]) -> str:
    """Stable text (sorted keys) so an unchanged stack gives an unchanged secret output."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
