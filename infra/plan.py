"""The plan: what a validated stack file will make exist in PagerDuty, as plain data.

Pure: no Pulumi, no network. `build_plan(stack)` turns the resolved `Stack` (infra.model) into
frozen dataclasses whose field values already use PagerDuty's vocabulary (urgency
rule types, assignment strategies, timeout strings), so `infra.resources` only
passes them on. Logical names derive from stack-file keys, never from display
names, so renaming a service or policy updates it in place instead of replacing
it (and its integration key).

`routes_document` builds the bridge's routes file once Pulumi knows the ids and
keys; everything else a route carries is decided here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from contract.routes_file import ROUTES_FILE_VERSION
from contract.vocabulary import UrgencyLevel
from infra.model import (
    ExistingPolicy,
    ExistingService,
    Integration,
    NewPolicy,
    NewService,
    Stack,
    UrgencyRule,
)

# PagerDuty's "off" for auto-resolve and acknowledgement timeouts in the provider.
TIMEOUT_OFF = "null"

TargetKind = Literal["user_reference", "schedule_reference"]
Assignment = Literal["assign_to_everyone", "round_robin"]


# -- escalation policies ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """One rule target; `ref` is a user's email or a schedule's name, looked up by Pulumi."""

    type: TargetKind
    ref: str


@dataclass(frozen=True, slots=True)
class RulePlan:
    delay_minutes: int
    targets: tuple[TargetPlan, ...]
    assignment: Assignment


@dataclass(frozen=True, slots=True)
class NewPolicyPlan:
    key: str
    logical_name: str
    name: str
    description: str | None
    num_loops: int
    rules: tuple[RulePlan, ...]
    team: str | None
    protect: bool


@dataclass(frozen=True, slots=True)
class ExistingPolicyPlan:
    """A policy that already exists in PagerDuty: looked up by name, never managed."""

    key: str
    name: str


PolicyPlan = NewPolicyPlan | ExistingPolicyPlan


# -- services -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UrgencyRulePlan:
    """`incident_urgency_rule`: constant `urgency`, or `during`/`outside` support hours."""

    type: Literal["constant", "use_support_hours"]
    urgency: UrgencyLevel | None = None
    during: UrgencyLevel | None = None
    outside: UrgencyLevel | None = None


@dataclass(frozen=True, slots=True)
class SupportHoursPlan:
    time_zone: str
    start_time: str  # HH:MM:SS, as PagerDuty returns it (so no perpetual diff)
    end_time: str
    days_of_week: tuple[int, ...]  # 1 = Monday .. 7 = Sunday
    type: str = "fixed_time_per_day"


@dataclass(frozen=True, slots=True)
class ScheduledActionPlan:
    to_urgency: Literal["high"]
    at: Literal["support_hours_start", "support_hours_end"]
    type: str = "urgency_change"


@dataclass(frozen=True, slots=True)
class GroupingPlan:
    """`alert_grouping_parameters`; fields not used by `type` stay None."""

    type: Literal["time", "intelligent", "content_based"]
    timeout_minutes: int | None = None  # time: 0 = until the incident resolves
    time_window_seconds: int | None = None  # intelligent, content_based
    aggregate: Literal["all", "any"] | None = None  # content_based
    fields: tuple[str, ...] = ()  # content_based


@dataclass(frozen=True, slots=True)
class AutoPausePlan:
    enabled: bool
    timeout_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class NewServicePlan:
    logical_name: str
    name: str
    description: str | None
    policy_key: str
    urgency: UrgencyRulePlan
    support_hours: SupportHoursPlan | None
    scheduled_actions: tuple[ScheduledActionPlan, ...]
    grouping: GroupingPlan | None
    auto_pause: AutoPausePlan | None
    auto_resolve_timeout: str  # seconds as a string, or TIMEOUT_OFF
    acknowledgement_timeout: str
    protect: bool


@dataclass(frozen=True, slots=True)
class ExistingServicePlan:
    """A service that already exists (Apica's "use existing service"): looked up by name."""

    name: str


@dataclass(frozen=True, slots=True)
class IntegrationPlan:
    logical_name: str
    name: str
    vendor_id: str | None  # None: look up the vendor named APICA_VENDOR_NAME
    protect: bool


@dataclass(frozen=True, slots=True)
class LinkPlan:
    href: str
    text: str


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """A route of the routes file minus what only Pulumi knows (service id, URL, key)."""

    service_name: str
    integration_name: str
    check_ids: tuple[int, ...]
    check_guids: tuple[str, ...]
    check_tags: tuple[str, ...]
    severity_map: Mapping[str, str]
    links: tuple[LinkPlan, ...]


@dataclass(frozen=True, slots=True)
class ServiceUnitPlan:
    """One service key: a component with the service (or its look-up) and the integration."""

    key: str
    component_name: str
    service: NewServicePlan | ExistingServicePlan
    integration: IntegrationPlan
    route: RoutePlan


@dataclass(frozen=True, slots=True)
class StackPlan:
    policies: tuple[PolicyPlan, ...]
    services: tuple[ServiceUnitPlan, ...]
    catch_all: str | None


@dataclass(frozen=True, slots=True)
class ResolvedRoute:
    """What Pulumi learns per service: needed to finish the routes file."""

    service_id: str
    service_url: str | None
    routing_key: str


# -- names --------------------------------------------------------------------------


def policy_logical_name(key: str) -> str:
    return f"policy-{key}"


def service_logical_name(key: str) -> str:
    return f"service-{key}"


def integration_logical_name(key: str) -> str:
    return f"service-{key}-apica"


# -- building -----------------------------------------------------------------------


def build_plan(stack: Stack) -> StackPlan:
    """The whole plan of a resolved stack; the order is the stack file's order."""
    policies = tuple(_policy(policy) for policy in stack.escalation_policies.values())
    services = tuple(_service_unit(service) for service in stack.services.values())
    return StackPlan(policies=policies, services=services, catch_all=stack.catch_all)


def _policy(policy: NewPolicy | ExistingPolicy) -> PolicyPlan:
    if isinstance(policy, ExistingPolicy):
        return ExistingPolicyPlan(key=policy.key, name=policy.name)
    return NewPolicyPlan(
        key=policy.key,
        logical_name=policy_logical_name(policy.key),
        name=policy.name,
        description=policy.description,
        num_loops=policy.num_loops,
        rules=tuple(
            RulePlan(
                delay_minutes=rule.delay_minutes,
                targets=tuple(
                    TargetPlan(type=_TARGET_TYPES[target.type], ref=target.ref)
                    for target in rule.targets
                ),
                assignment=rule.assignment,
            )
            for rule in policy.rules
        ),
        team=policy.team,
        protect=policy.protect,
    )


_TARGET_TYPES: dict[str, TargetKind] = {
    "user": "user_reference",
    "schedule": "schedule_reference",
}


def _service_unit(service: NewService | ExistingService) -> ServiceUnitPlan:
    if isinstance(service, ExistingService):
        planned: NewServicePlan | ExistingServicePlan = ExistingServicePlan(name=service.name)
        # Nothing in the file can opt an existing service's integration in or out.
        protect = False
    else:
        planned = _new_service(service)
        protect = service.protect
    return ServiceUnitPlan(
        key=service.key,
        component_name=service.key,
        service=planned,
        integration=IntegrationPlan(
            logical_name=integration_logical_name(service.key),
            name=service.integration.name,
            vendor_id=service.integration.vendor_id,
            protect=protect,
        ),
        route=_route(service.name, service.integration),
    )


def _new_service(service: NewService) -> NewServicePlan:
    urgency, hours, actions = _urgency(service.urgency)
    grouping = service.alert_grouping
    return NewServicePlan(
        logical_name=service_logical_name(service.key),
        name=service.name,
        description=service.description,
        policy_key=service.escalation_policy,
        urgency=urgency,
        support_hours=hours,
        scheduled_actions=actions,
        grouping=None
        if grouping is None
        else GroupingPlan(
            type=grouping.type,
            timeout_minutes=grouping.timeout,
            time_window_seconds=grouping.time_window,
            aggregate=grouping.aggregate,
            fields=grouping.fields,
        ),
        # Disabled is stated explicitly, so a pause switched on by hand is undone.
        auto_pause=AutoPausePlan(enabled=False)
        if service.auto_pause_timeout is None
        else AutoPausePlan(enabled=True, timeout_seconds=service.auto_pause_timeout),
        auto_resolve_timeout=_timeout(service.auto_resolve_timeout),
        acknowledgement_timeout=_timeout(service.acknowledgement_timeout),
        protect=service.protect,
    )


def _urgency(
    urgency: UrgencyRule,
) -> tuple[UrgencyRulePlan, SupportHoursPlan | None, tuple[ScheduledActionPlan, ...]]:
    if urgency.type == "constant" or urgency.support_hours is None:
        return UrgencyRulePlan(type="constant", urgency=urgency.urgency), None, ()
    hours = urgency.support_hours
    actions: tuple[ScheduledActionPlan, ...] = ()
    if urgency.raise_at_support_hours_start:
        # Low-urgency incidents left open overnight page when support hours begin.
        actions = (ScheduledActionPlan(to_urgency="high", at="support_hours_start"),)
    return (
        UrgencyRulePlan(
            type="use_support_hours",
            during=urgency.during_support_hours,
            outside=urgency.outside_support_hours,
        ),
        SupportHoursPlan(
            time_zone=hours.time_zone,
            start_time=hours.start_time,
            end_time=hours.end_time,
            days_of_week=hours.days_of_week,
        ),
        actions,
    )


def _timeout(seconds: int | None) -> str:
    # The provider takes these as strings; "null" is how it switches them off.
    return TIMEOUT_OFF if seconds is None else str(seconds)


def _route(service_name: str, integration: Integration) -> RoutePlan:
    return RoutePlan(
        service_name=service_name,
        integration_name=integration.name,
        check_ids=integration.check_ids,
        check_guids=integration.check_guids,
        check_tags=integration.check_tags,
        severity_map=dict(integration.severity_map),
        links=tuple(LinkPlan(href=link.href, text=link.text) for link in integration.links),
    )


# -- routes file --------------------------------------------------------------------


def routes_document(
    plan: StackPlan, stack_name: str, resolved: Mapping[str, ResolvedRoute]
) -> dict[str, object]:
    """The routes file (`contract.routes_file`) as a dict; `resolved` is keyed by route."""
    routes: dict[str, object] = {}
    for unit in plan.services:
        route, known = unit.route, resolved[unit.key]
        routes[unit.key] = {
            "service_name": route.service_name,
            "service_id": known.service_id,
            "service_url": known.service_url,
            "integration_name": route.integration_name,
            "routing_key": known.routing_key,
            "check_ids": list(route.check_ids),
            "check_guids": list(route.check_guids),
            "check_tags": list(route.check_tags),
            "severity_map": dict(route.severity_map),
            "links": [{"href": link.href, "text": link.text} for link in route.links],
        }
    return {
        "version": ROUTES_FILE_VERSION,
        "stack": stack_name,
        "catch_all": plan.catch_all,
        "routes": routes,
    }


def routes_json(document: Mapping[str, object]) -> str:
    """Stable text (sorted keys) so an unchanged stack gives an unchanged secret output."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
