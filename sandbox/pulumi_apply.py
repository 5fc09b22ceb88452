"""Apply a stack to the sandbox's REST API through the real Pulumi program, under mocks.

The program runs unchanged under Pulumi's mock runtime; `PagerDutyRestMocks` turns
each registration into a REST call, so the resulting `bridge_routes` carries the
API's real service ids and integration keys.
"""

from __future__ import annotations

from typing import Any

from contract.vocabulary import APICA_VENDOR_NAME
from infra.mock_runtime import run_under_mocks
from infra.model import ExistingPolicy, ExistingService, NewPolicy, NewService, Stack
from infra.resources import run_program
from sandbox.rest_mocks import PagerDutyRestMocks, RestApplyError

# Existing services the stack names need a policy of their own in the sandbox account.
SEED_POLICY_FOR_EXISTING_SERVICES = "Pre-existing services"


def account_seed(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """What must already be in the account for the stack to apply (sandbox seed format).

    Users and schedules named in rules, teams, vendor ids, and the policies and
    services the stack refers to as `existing`.
    """
    users: dict[str, dict[str, Any]] = {}
    schedules: dict[str, dict[str, Any]] = {}
    teams: dict[str, dict[str, Any]] = {}
    policies: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    for policy in stack.escalation_policies.values():
        if isinstance(policy, ExistingPolicy):
            policies.append({"name": policy.name})
            continue
        assert isinstance(policy, NewPolicy)
        if policy.team:
            teams.setdefault(policy.team, {"name": policy.team})
        for rule in policy.rules:
            for target in rule.targets:
                if target.type == "user":
                    name = target.ref.split("@")[0].title()
                    users.setdefault(target.ref, {"email": target.ref, "name": name})
                else:
                    schedules.setdefault(target.ref, {"name": target.ref})
    vendor_ids = {stack.apica_vendor_id} if stack.apica_vendor_id else set()
    for service in stack.services.values():
        if service.integration is not None and service.integration.vendor_id:
            vendor_ids.add(service.integration.vendor_id)
        if isinstance(service, NewService) and service.team:
            teams.setdefault(service.team, {"name": service.team})
        if isinstance(service, ExistingService):
            services.append({
                "name": service.name,
                "urgency": "severity_based",
                "escalation_policy": SEED_POLICY_FOR_EXISTING_SERVICES,
            })
    if services:
        policies.append({"name": SEED_POLICY_FOR_EXISTING_SERVICES})
    vendors = [{"name": APICA_VENDOR_NAME, "id": vendor_id} for vendor_id in sorted(vendor_ids)]
    if not vendors:
        vendors = [{"name": APICA_VENDOR_NAME}]
    return {
        "users": list(users.values()),
        "schedules": list(schedules.values()),
        "teams": list(teams.values()),
        "vendors": vendors,
        "escalation_policies": policies,
        "services": services,
    }


def apply_stack(
    stack: Stack,
    stack_name: str,
    api_url: str,
    token: str,
    mocks: PagerDutyRestMocks | None = None,
) -> str:
    """Run the program against the REST API at `api_url`; returns `bridge_routes` (secret!).

    Pass `mocks` to see afterwards what was created, imported and updated.
    """
    mocks = mocks or PagerDutyRestMocks(api_url, token)
    try:
        run = run_under_mocks(lambda: run_program(stack, stack_name), mocks, stack_name)
    except RestApplyError:
        # Registrations run concurrently: report the failure that stopped the run, not
        # whichever call the runtime happened to surface after it.
        raise RestApplyError(mocks.first_failure or "the apply failed") from None
    _, routes = run.outputs["bridge_routes"]
    return str(routes)
