"""The thin edge to Pulumi: declare the resolved `Stack` with pulumi-pagerduty.

The only module that imports `pulumi_pagerduty`. Every decision is already made by
`infra.plan` (argument values, logical names, the routes file); this module wires ids
between resources, looks existing things up (each distinct name once) and exports:

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
from infra.model import ExistingPolicy, ExistingService, NewPolicy, NewService, Stack, Target
from infra.plan import (
    ResolvedRoute,
    grouping_logical_name,
    grouping_setting_args,
    integration_args,
    integration_logical_name,
    integration_protected,
    policy_args,
    policy_logical_name,
    routes_document,
    routes_json,
    service_args,
    service_ignored_properties,
    service_logical_name,
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

    def target_id(self, target: Target) -> pulumi.Output[str]:
        if target.type == "user":
            return self.user_id(target.ref)
        return self.schedule_id(target.ref)

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


def create_policy(policy: NewPolicy, lookups: Lookups) -> pagerduty.EscalationPolicy:
    return pagerduty.EscalationPolicy(
        policy_logical_name(policy.key),
        **policy_args(policy, lookups.target_id, lookups.team_id),
        # import_: adopt the existing policy; `pulumi up` imports it instead of creating one.
        opts=pulumi.ResourceOptions(protect=policy.protect, import_=policy.adopt),
    )


class ApicaService(pulumi.ComponentResource):
    """One service key: the PagerDuty service (created, adopted or looked up), its alert
    grouping setting (created services that group alerts) and its Apica integration (none
    for a new service with `integration: none`)."""

    service_id: pulumi.Output[str]
    service_url: pulumi.Output[str | None]
    integration_id: pulumi.Output[str | None]
    integration_key: pulumi.Output[str | None]

    def __init__(
        self,
        service: NewService | ExistingService,
        policy_id: pulumi.Input[str] | None,
        vendor_id: pulumi.Input[str] | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(COMPONENT_TYPE, service.key, None, opts)
        if isinstance(service, NewService):
            created = pagerduty.Service(
                service_logical_name(service.key),
                escalation_policy=policy_id,
                **service_args(service),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    protect=service.protect,
                    ignore_changes=service_ignored_properties(service) or None,
                    import_=service.adopt,
                ),
            )
            self.service_id = created.id
            self.service_url = created.html_url
            grouping = grouping_setting_args(service)
            if grouping is not None:
                pagerduty.AlertGroupingSetting(
                    grouping_logical_name(service.key),
                    services=[created.id],
                    **grouping,
                    # Not protected: deleting or re-creating a setting loses no key or
                    # history, and `alert_grouping: none` must be able to remove it.
                    opts=pulumi.ResourceOptions(parent=self, protect=False),
                )
        else:
            found = pagerduty.get_service_output(
                name=service.name, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            self.service_id = found.id
            # get_service returns no web URL; the routes file allows none.
            self.service_url = pulumi.Output.from_input(None)
        self.integration_id = pulumi.Output.from_input(None)
        self.integration_key = pulumi.Output.from_input(None)
        if service.integration is not None:
            integration = pagerduty.ServiceIntegration(
                integration_logical_name(service.key),
                service=self.service_id,
                **integration_args(service.integration, vendor_id),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    protect=integration_protected(service),
                    # Keeps the key encrypted in Pulumi's state as well as in outputs.
                    additional_secret_outputs=["integration_key"],
                    import_=service.integration.adopt,
                ),
            )
            self.integration_id = integration.id
            self.integration_key = pulumi.Output.secret(integration.integration_key)
        self.register_outputs(
            {
                "service_id": self.service_id,
                "service_url": self.service_url,
                "integration_id": self.integration_id,
                "integration_key": self.integration_key,
            }
        )


@dataclass(frozen=True)
class DeployedStack:
    """What `run_program` declared; tests and the offline preview read its outputs."""

    services: Mapping[str, ApicaService]
    policy_ids: Mapping[str, pulumi.Output[str]]
    bridge_routes: pulumi.Output[str]


def run_program(stack: Stack, stack_name: str | None = None) -> DeployedStack:
    """The Pulumi program proper: register every resource of `stack`, export the outputs.

    `infra/__main__.py` runs it under the engine, the offline preview under mocks.
    """
    stack_name = stack_name or pulumi.get_stack()
    lookups = Lookups()
    policy_ids: dict[str, pulumi.Output[str]] = {}
    for key, policy in stack.escalation_policies.items():
        if isinstance(policy, ExistingPolicy):
            policy_ids[key] = lookups.policy_id(policy.name)
        else:
            policy_ids[key] = create_policy(policy, lookups).id

    services: dict[str, ApicaService] = {}
    for key, service in stack.services.items():
        policy_id = (
            policy_ids[service.escalation_policy] if isinstance(service, NewService) else None
        )
        integration = service.integration
        vendor_id = (
            None
            if integration is None or integration.type == "events_api_v2"
            else integration.vendor_id or lookups.apica_vendor_id()
        )
        services[key] = ApicaService(service, policy_id, vendor_id)

    # One gather per kind of value instead of nested dicts of Outputs: the SDK's cost
    # per Output is what dominates large stacks.
    keys = list(stack.services)
    routed = [key for key in keys if stack.services[key].integration is not None]
    names = {key: service.name for key, service in stack.services.items()}
    where = pulumi.Output.all(
        *[out for key in keys for out in (services[key].service_id, services[key].service_url)]
    ).apply(lambda values: _by_key(keys, values, 2))
    secrets = pulumi.Output.all(*[services[key].integration_key for key in routed]).apply(
        lambda values: _by_key(routed, values, 1)
    )
    integration_ids = pulumi.Output.all(
        *[services[key].integration_id for key in routed]
    ).apply(lambda values: _by_key(routed, values, 1))
    bridge_routes = pulumi.Output.secret(
        pulumi.Output.all(where, secrets, integration_ids).apply(
            lambda found: _bridge_routes(stack, stack_name, *found)
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
    stack: Stack,
    stack_name: str,
    where: Mapping[str, tuple[str, str | None]],
    secrets: Mapping[str, tuple[str]],
    integration_ids: Mapping[str, tuple[str]],
) -> str:
    """The routes file text, validated by the bridge's own model."""
    resolved = {
        key: ResolvedRoute(service_id, url, secrets[key][0], integration_ids[key][0])
        for key, (service_id, url) in where.items()
        if key in secrets
    }
    text = routes_json(routes_document(stack, stack_name, resolved))
    try:
        parse_routes(text, ROUTES_SOURCE)
    except RoutesFileError as exc:
        # The bridge would refuse this file: fail `pulumi up` instead of shipping it.
        raise ProgramError(f"the routes file the bridge needs is invalid: {exc}") from None
    return text
