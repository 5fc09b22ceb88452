"""`pagerduty:index/escalationPolicy:EscalationPolicy`: terraform-provider-pagerduty's
`resource_pagerduty_escalation_policy.go` (SDKv2, heimweh client).

POST, then GET with `include[]=escalation_rule_assignment_strategies` (a 429 on the
POST waits 30 s, for up to 5 minutes); reads retry for 5 minutes on anything but
400/403 (a 403 drops the include); PUT sends the whole body and reads nothing back;
DELETE retries a 400 for 2 minutes (services still being deleted) and takes a 404
as done. Nothing replaces a policy.
"""

from __future__ import annotations

from typing import Any

from sandbox.pulumi_provider.resource_type import (
    Api,
    ProviderError,
    ResourceType,
    call_retrying,
    read_retrying,
    set_value,
    strip_unknowns,
)
from sandbox.pulumi_provider.rest import RestError
from sandbox.pulumi_provider.schema import (
    Schema,
    allowed_name,
    int_at_least,
    int_between,
    integer,
    list_of,
    obj,
    one_of,
    output,
    string,
)

INCLUDE = [("include[]", "escalation_rule_assignment_strategies")]
STRATEGIES = ("assign_to_everyone", "round_robin")
TARGET_TYPES = ("user_reference", "schedule_reference")

SCHEMA: Schema = {
    "name": string(validators=(allowed_name(special_chars=True),)),
    # Pulumi's default (provider/resources.go); Terraform's would be "Managed by Terraform".
    "description": string(default="Managed by Pulumi"),
    "numLoops": integer(tf_name="num_loops", validators=(int_between(0, 9),)),
    # A list of at most one team id: the SDK's single string.
    "teams": string(),
    "rules": list_of(
        obj(
            {
                "id": output(),
                "escalationDelayInMinutes": integer(
                    required=True,
                    tf_name="escalation_delay_in_minutes",
                    validators=(int_at_least(1),),
                ),
                "escalationRuleAssignmentStrategy": obj(
                    {"type": string(computed=True, validators=(one_of(*STRATEGIES),))},
                    computed=True,
                ),
                "targets": list_of(
                    obj(
                        {
                            "type": string(
                                default="user_reference", validators=(one_of(*TARGET_TYPES),)
                            ),
                            "id": string(required=True),
                        }
                    ),
                    required=True,
                ),
            }
        ),
        required=True,
        tf_name="rule",
    ),
}


def policy_body(plan: dict[str, Any]) -> dict[str, Any]:
    """`buildEscalationPolicyStruct` as heimweh marshals it (omitempty fields left out)."""
    plan = strip_unknowns(plan)
    policy: dict[str, Any] = {"name": plan.get("name")}
    if set_value(plan.get("description")):
        policy["description"] = plan["description"]
    rules = [_rule_body(rule) for rule in plan.get("rules") or []]
    if rules:
        policy["escalation_rules"] = rules
    policy["num_loops"] = plan.get("numLoops") or 0
    team = set_value(plan.get("teams"))
    # `teams` has no omitempty: null when the policy has none.
    policy["teams"] = [{"id": team, "type": "team_reference"}] if team else None
    return {"escalation_policy": policy}


def _rule_body(rule: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if set_value(rule.get("escalationDelayInMinutes")):
        body["escalation_delay_in_minutes"] = rule["escalationDelayInMinutes"]
    strategy = rule.get("escalationRuleAssignmentStrategy")
    if isinstance(strategy, dict):
        body["escalation_rule_assignment_strategy"] = (
            {"type": strategy["type"]} if set_value(strategy.get("type")) else {}
        )
    targets = [
        {"id": target.get("id"), "type": target.get("type")} for target in rule.get("targets") or []
    ]
    if targets:
        body["targets"] = targets
    return body


def policy_state(policy: dict[str, Any], prior: dict[str, Any]) -> dict[str, Any]:
    """`setResourceEPProps`: the state from a GET, targets in the order `prior` lists them."""
    teams = [team.get("id") for team in policy.get("teams") or []]
    prior_rules = prior.get("rules") or []
    rules = []
    for index, rule in enumerate(policy.get("escalation_rules") or []):
        strategy = rule.get("escalation_rule_assignment_strategy")
        planned = prior_rules[index].get("targets") or [] if index < len(prior_rules) else []
        rules.append(
            {
                "id": rule.get("id") or "",
                "escalationDelayInMinutes": rule.get("escalation_delay_in_minutes") or 0,
                "escalationRuleAssignmentStrategy": (
                    {"type": strategy.get("type") or ""} if isinstance(strategy, dict) else None
                ),
                "targets": _targets_in_plan_order(rule.get("targets") or [], planned),
            }
        )
    return {
        "id": policy.get("id"),
        "name": policy.get("name") or "",
        "description": policy.get("description") or "",
        "numLoops": policy.get("num_loops") or 0,
        "teams": teams[0] if teams else None,
        "rules": rules,
    }


def _targets_in_plan_order(
    targets: list[dict[str, Any]], planned: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    def shown(target: dict[str, Any]) -> dict[str, Any]:
        kind = target.get("type")
        # Schedules made with the v3 API come back as schedule_v3_reference.
        return {
            "id": target.get("id"),
            "type": "schedule_reference" if kind == "schedule_v3_reference" else kind,
        }

    ordered, seen = [], set()
    for wanted in planned:
        match = next((t for t in targets if t.get("id") == wanted.get("id")), None)
        if match is not None:
            ordered.append(shown(match))
            seen.add(match.get("id"))
    ordered += [shown(t) for t in targets if t.get("id") not in seen]
    return ordered


class EscalationPolicy(ResourceType):
    token = "pagerduty:index/escalationPolicy:EscalationPolicy"
    schema = SCHEMA

    def create(self, api: Api, plan: dict[str, Any], urn: str) -> tuple[str, dict[str, Any]]:
        body = policy_body(plan)

        # A 429 waits 30 s "as recommended by PagerDuty"; anything else fails.
        created = call_retrying(
            api.sdkv2,
            api.timing,
            "POST",
            "/escalation_policies",
            300,
            retry=lambda error: error.status == 429,
            body=body,
            pause=30.0,
        )["escalation_policy"]
        return self.read_created(api, created["id"], plan)

    def fetch(
        self, api: Api, resource_id: str, prior: dict[str, Any], gone_is_error: bool
    ) -> dict[str, Any] | None:
        path = f"/escalation_policies/{resource_id}"
        include: list[tuple[str, str]] | None = INCLUDE
        try:
            return policy_state(api.sdkv2.get(path, include)["escalation_policy"], prior)
        except RestError as error:
            if error.status == 403:
                include = None  # accounts without the strategies entitlement
        answer = read_retrying(
            api.sdkv2, api.timing, path, 300, gone_is_error, include, stop=(400, 403), pause=2.0
        )
        return None if answer is None else policy_state(answer["escalation_policy"], prior)

    def update(
        self, api: Api, resource_id: str, plan: dict[str, Any], prior: dict[str, Any], urn: str
    ) -> dict[str, Any]:
        body = policy_body(plan)
        path = f"/escalation_policies/{resource_id}"
        try:
            api.sdkv2.call("PUT", path, body=body)
            return {**strip_unknowns(plan), "id": resource_id}
        except RestError as error:
            if error.status == 403:
                body = _without_strategies(body)

        try:
            call_retrying(
                api.sdkv2,
                api.timing,
                "PUT",
                path,
                300,
                retry=lambda error: error.status not in (400, 403),
                body=body,
            )
        except RestError:
            api.timing.sleep(2.0)
            raise
        return {**strip_unknowns(plan), "id": resource_id}

    def delete(self, api: Api, resource_id: str, state: dict[str, Any]) -> None:
        try:
            call_retrying(
                api.sdkv2,
                api.timing,
                "DELETE",
                f"/escalation_policies/{resource_id}",
                120,
                retry=lambda error: error.bad_request,
                done=lambda error: error.not_found,
            )
        except RestError:
            api.timing.sleep(2.0)
            raise
        api.timing.sleep(1.0)  # "giving the API time to catch up"


def _without_strategies(body: dict[str, Any]) -> dict[str, Any]:
    """The update retried for accounts without round robin (a 403 on the first PUT)."""
    policy = dict(body["escalation_policy"])
    rules = []
    for index, rule in enumerate(policy.get("escalation_rules") or []):
        strategy = rule.get("escalation_rule_assignment_strategy")
        if isinstance(strategy, dict) and strategy.get("type") == "round_robin":
            raise ProviderError(
                "Round Robin Scheduling is available for accounts on the following pricing "
                "plans: Business, Digital Operations (legacy) and Enterprise for Incident "
                "Management. Therefore, set the escalation_rule_assignment_strategy to "
                f"'assign_to_everyone' for the escalation rule at index {index}"
            )
        rules.append({k: v for k, v in rule.items() if k != "escalation_rule_assignment_strategy"})
    policy["escalation_rules"] = rules
    return {"escalation_policy": policy}
