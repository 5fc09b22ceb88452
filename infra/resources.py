"""The thin edge to Pulumi: interpret a `StackPlan` with pulumi-pagerduty.

The only module that imports `pulumi_pagerduty`. Every decision is already in the
plan; this module maps plan fields to provider arguments, wires ids between
resources, looks existing things up (each distinct name once) and exports:

- `services`: per service key its id, web URL and name;
- `integration_keys`: per service key, secret;
- `bridge_routes`: the bridge's routes file as a secret JSON string, validated with
  the bridge's own model inside the apply, so a bad routes file fails the program.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_pagerduty as pagerduty

from contract.errors import RoutesFileError
from contract.routes_file import parse_routes
from contract.vocabulary import APICA_VENDOR_NAME
from infra.model import Stack
from infra.plan import (
    ExistingPolicyPlan,
    NewPolicyPlan,
    NewServicePlan,
    ResolvedRoute,
    ServiceUnitPlan,
    StackPlan,
    build_plan,
    routes_document,
    routes_json,
)

COMPONENT_TYPE = "apica-pagerduty:index:ApicaService"
ROUTES_SOURCE = "stack output bridge_routes"


class ProgramError(pulumi.RunError):
    """A problem the user must fix; Pulumi prints it without a traceback."""


# -- look-ups -----------------------------------------------------------------------


class Lookups:
    """Each distinct user, schedule, team, vendor look-up is invoked once per program."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], pulumi.Output[str]] = {}

    def _once(self, kind: str, name: str, invoke: Callable[[], pulumi.Output[str]]) -> Any:
        key = (kind, name)
        if key not in self._cache:
            self._cache[key] = invoke()
        return self._cache[key]

    def user_id(self, email: str) -> pulumi.Output[str]:
        return self._once("user", email, lambda: pagerduty.get_user_output(email=email).id)

    def schedule_id(self, name: str) -> pulumi.Output[str]:
        return self._once("schedule", name, lambda: pagerduty.get_schedule_output(name=name).id)

    def team_id(self, name: str) -> pulumi.Output[str]:
        return self._once("team", name, lambda: pagerduty.get_team_output(name=name).id)

    def policy_id(self, name: str) -> pulumi.Output[str]:
        return self._once(
            "policy", name, lambda: pagerduty.get_escalation_policy_output(name=name).id
        )

    def apica_vendor_id(self) -> pulumi.Output[str]:
        return self._once(
            "vendor",
            APICA_VENDOR_NAME,
            lambda: pagerduty.get_vendor_output(name=APICA_VENDOR_NAME).apply(require_exact_vendor),
        )


def require_exact_vendor(found: Any) -> str:
    """get_vendor silently takes the first partial match: accept only "Apica" itself."""
    name = getattr(found, "name", None) or ""
    if name.casefold() != APICA_VENDOR_NAME.casefold():
        raise ProgramError(
            f"get_vendor(name={APICA_VENDOR_NAME!r}) found the vendor {name!r}, not "
            f"{APICA_VENDOR_NAME!r}: the look-up is ambiguous in this account. Set "
            "`apica.vendor_id` in the stack file to the id of PagerDuty's Apica vendor."
        )
    return str(found.id)


# -- resources ----------------------------------------------------------------------


def create_policy(plan: NewPolicyPlan, lookups: Lookups) -> pagerduty.EscalationPolicy:
    rules = [
        {
            "escalation_delay_in_minutes": rule.delay_minutes,
            "targets": [
                {
                    "type": target.type,
                    "id": lookups.user_id(target.ref)
                    if target.type == "user_reference"
                    else lookups.schedule_id(target.ref),
                }
                for target in rule.targets
            ],
            "escalation_rule_assignment_strategy": {"type": rule.assignment},
        }
        for rule in plan.rules
    ]
    return pagerduty.EscalationPolicy(
        plan.logical_name,
        name=plan.name,
        description=plan.description,
        num_loops=plan.num_loops,
        rules=rules,
        teams=lookups.team_id(plan.team) if plan.team else None,
        opts=pulumi.ResourceOptions(protect=plan.protect),
    )


def service_args(plan: NewServicePlan) -> dict[str, Any]:
    """Provider arguments of a new service, except its escalation policy."""
    urgency = plan.urgency
    if urgency.type == "constant":
        rule: dict[str, Any] = {"type": "constant", "urgency": urgency.urgency}
    else:
        rule = {
            "type": "use_support_hours",
            "during_support_hours": {"type": "constant", "urgency": urgency.during},
            "outside_support_hours": {"type": "constant", "urgency": urgency.outside},
        }
    args: dict[str, Any] = {
        "name": plan.name,
        "description": plan.description,
        "incident_urgency_rule": rule,
        "auto_resolve_timeout": plan.auto_resolve_timeout,
        "acknowledgement_timeout": plan.acknowledgement_timeout,
    }
    if plan.support_hours is not None:
        hours = plan.support_hours
        args["support_hours"] = {
            "type": hours.type,
            "time_zone": hours.time_zone,
            "start_time": hours.start_time,
            "end_time": hours.end_time,
            "days_of_weeks": list(hours.days_of_week),
        }
        # PagerDuty wants the list whenever support hours drive urgency, even empty.
        args["scheduled_actions"] = [
            {
                "type": action.type,
                "to_urgency": action.to_urgency,
                "ats": [{"type": "named_time", "name": action.at}],
            }
            for action in plan.scheduled_actions
        ]
    if plan.grouping is not None:
        grouping = plan.grouping
        config = {
            "timeout": grouping.timeout_minutes,
            "time_window": grouping.time_window_seconds,
            "aggregate": grouping.aggregate,
            "fields": list(grouping.fields) or None,
        }
        args["alert_grouping_parameters"] = {
            "type": grouping.type,
            "config": {name: value for name, value in config.items() if value is not None},
        }
    if plan.auto_pause is not None:
        pause: dict[str, Any] = {"enabled": plan.auto_pause.enabled}
        if plan.auto_pause.enabled:
            pause["timeout"] = plan.auto_pause.timeout_seconds
        args["auto_pause_notifications_parameters"] = pause
    return args


class ApicaService(pulumi.ComponentResource):
    """One service key: the PagerDuty service (created or looked up) and its Apica integration."""

    service_id: pulumi.Output[str]
    service_url: pulumi.Output[str | None]
    integration_key: pulumi.Output[str]

    def __init__(
        self,
        unit: ServiceUnitPlan,
        policy_id: pulumi.Input[str] | None,
        vendor_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(COMPONENT_TYPE, unit.component_name, None, opts)
        service = unit.service
        if isinstance(service, NewServicePlan):
            created = pagerduty.Service(
                service.logical_name,
                escalation_policy=policy_id,
                **service_args(service),
                opts=pulumi.ResourceOptions(parent=self, protect=service.protect),
            )
            self.service_id = created.id
            self.service_url = created.html_url
        else:
            found = pagerduty.get_service_output(
                name=service.name, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            self.service_id = found.id
            # get_service returns no web URL; the routes file allows none.
            self.service_url = pulumi.Output.from_input(None)
        integration = pagerduty.ServiceIntegration(
            unit.integration.logical_name,
            name=unit.integration.name,
            service=self.service_id,
            vendor=vendor_id,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=unit.integration.protect,
                # Keeps the key encrypted in Pulumi's state as well as in outputs.
                additional_secret_outputs=["integration_key"],
            ),
        )
        self.integration_key = pulumi.Output.secret(integration.integration_key)
        self.register_outputs(
            {
                "service_id": self.service_id,
                "service_url": self.service_url,
                "integration_key": self.integration_key,
            }
        )


@dataclass(frozen=True)
class DeployedStack:
    """What `deploy` created; tests and the offline plan read its outputs."""

    services: Mapping[str, ApicaService]
    policy_ids: Mapping[str, pulumi.Output[str]]
    bridge_routes: pulumi.Output[str]


def deploy(plan: StackPlan, stack_name: str | None = None) -> DeployedStack:
    """Register every resource of `plan` and export the stack outputs."""
    stack_name = stack_name or pulumi.get_stack()
    lookups = Lookups()
    policy_ids: dict[str, pulumi.Output[str]] = {}
    for policy in plan.policies:
        if isinstance(policy, ExistingPolicyPlan):
            policy_ids[policy.key] = lookups.policy_id(policy.name)
        else:
            policy_ids[policy.key] = create_policy(policy, lookups).id

    services: dict[str, ApicaService] = {}
    for unit in plan.services:
        policy_id = (
            policy_ids[unit.service.policy_key]
            if isinstance(unit.service, NewServicePlan)
            else None
        )
        vendor_id = unit.integration.vendor_id or lookups.apica_vendor_id()
        services[unit.key] = ApicaService(unit, policy_id, vendor_id)

    # One gather per kind of value instead of nested dicts of Outputs: the SDK's cost
    # per Output is what dominates large stacks.
    keys = [unit.key for unit in plan.services]
    names = {unit.key: unit.route.service_name for unit in plan.services}
    where = pulumi.Output.all(
        *[out for key in keys for out in (services[key].service_id, services[key].service_url)]
    ).apply(lambda values: _by_key(keys, values, 2))
    secrets = pulumi.Output.all(*[services[key].integration_key for key in keys]).apply(
        lambda values: _by_key(keys, values, 1)
    )
    bridge_routes = pulumi.Output.secret(
        pulumi.Output.all(where, secrets).apply(
            lambda both: _bridge_routes(plan, stack_name, both[0], both[1])
        )
    )
    pulumi.export(
        "services",
        where.apply(
            lambda found: {
                key: {"id": sid, "url": url, "name": names[key]}
                for key, (sid, url) in found.items()
            }
        ),
    )
    pulumi.export(
        "integration_keys",
        pulumi.Output.secret(secrets.apply(lambda found: {k: v[0] for k, v in found.items()})),
    )
    pulumi.export("bridge_routes", bridge_routes)
    return DeployedStack(services, policy_ids, bridge_routes)


def _by_key(keys: list[str], values: list[Any], width: int) -> dict[str, tuple[Any, ...]]:
    return {key: tuple(values[width * i : width * i + width]) for i, key in enumerate(keys)}


def _bridge_routes(
    plan: StackPlan,
    stack_name: str,
    where: Mapping[str, tuple[str, str | None]],
    secrets: Mapping[str, tuple[str]],
) -> str:
    """The routes file text, validated by the bridge's own model."""
    resolved = {
        key: ResolvedRoute(service_id, url, secrets[key][0])
        for key, (service_id, url) in where.items()
    }
    text = routes_json(routes_document(plan, stack_name, resolved))
    try:
        parse_routes(text, ROUTES_SOURCE)
    except RoutesFileError as exc:
        # The bridge would refuse this file: fail `pulumi up` instead of shipping it.
        raise ProgramError(f"the routes file the bridge needs is invalid: {exc}") from None
    return text


def run_program(stack: Stack, stack_name: str | None = None) -> DeployedStack:
    """The Pulumi program proper: what `infra/__main__.py` and the offline plan both run."""
    return deploy(build_plan(stack), stack_name)
