"""EscalationPolicy: the body heimweh sends, the state a GET gives, and its REST flow."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.pulumi_provider.escalation_policy import (
    EscalationPolicy,
    policy_body,
    policy_state,
)
from sandbox.pulumi_provider.plan import planned
from sandbox.pulumi_provider.resource_type import Api
from sandbox.pulumi_provider.rest import RestError
from sandbox.pulumi_provider.schema import with_defaults
from sandbox.server import PagerDutySandbox
from tests.sandbox.pulumi_provider.conftest import FakeTime

POLICY = EscalationPolicy()


def plan_of(config: dict[str, Any], prior: dict[str, Any] | None = None) -> dict[str, Any]:
    return planned(POLICY.schema, with_defaults(POLICY.schema, config), prior)


def config(user_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": "Checkout Escalation",
        "rules": [
            {
                "escalationDelayInMinutes": 10,
                "targets": [{"id": user_id}],
                "escalationRuleAssignmentStrategy": {"type": "round_robin"},
            }
        ],
        **changes,
    }


def test_the_body_has_num_loops_always_and_teams_null_without_one():
    body = policy_body(plan_of(config("PUSER01")))
    assert body == {
        "escalation_policy": {
            "name": "Checkout Escalation",
            "description": "Managed by Pulumi",
            "escalation_rules": [
                {
                    "escalation_delay_in_minutes": 10,
                    "escalation_rule_assignment_strategy": {"type": "round_robin"},
                    "targets": [{"id": "PUSER01", "type": "user_reference"}],
                }
            ],
            "num_loops": 0,
            "teams": None,
        }
    }
    with_team = policy_body(plan_of(config("PUSER01", teams="PTEAM01", numLoops=2)))
    assert with_team["escalation_policy"]["teams"] == [{"id": "PTEAM01", "type": "team_reference"}]
    assert with_team["escalation_policy"]["num_loops"] == 2


def test_the_state_keeps_the_plans_target_order_and_names_v3_schedules_as_schedules():
    answer = {
        "id": "PPOL001",
        "name": "Ops",
        "description": None,
        "num_loops": 1,
        "teams": [{"id": "PTEAM01", "type": "team_reference"}],
        "escalation_rules": [
            {
                "id": "PRULE01",
                "escalation_delay_in_minutes": 5,
                "targets": [
                    {"id": "PSCHED1", "type": "schedule_v3_reference"},
                    {"id": "PUSER01", "type": "user_reference"},
                    {"id": "PUSER02", "type": "user_reference"},
                ],
            }
        ],
    }
    prior = {"rules": [{"targets": [{"id": "PUSER01"}, {"id": "PSCHED1"}]}]}
    assert policy_state(answer, prior) == {
        "id": "PPOL001",
        "name": "Ops",
        "description": "",
        "numLoops": 1,
        "teams": "PTEAM01",
        "rules": [
            {
                "id": "PRULE01",
                "escalationDelayInMinutes": 5,
                "escalationRuleAssignmentStrategy": None,
                "targets": [
                    {"id": "PUSER01", "type": "user_reference"},
                    {"id": "PSCHED1", "type": "schedule_reference"},
                    {"id": "PUSER02", "type": "user_reference"},
                ],
            }
        ],
    }


def test_create_read_update_delete_on_the_sandbox(
    pd: PagerDutySandbox, api: Api, user: dict[str, Any], fake_time: FakeTime
):
    plan = plan_of(config(user["id"]))
    policy_id, state = POLICY.create(api, plan, "urn:policy")
    stored = pd.state.directory.get("escalation_policies", policy_id)
    assert stored["escalation_rules"][0]["escalation_rule_assignment_strategy"] == {
        "type": "round_robin"
    }
    assert state["rules"][0]["id"] == stored["escalation_rules"][0]["id"]
    assert state["rules"][0]["escalationRuleAssignmentStrategy"] == {"type": "round_robin"}

    update = plan_of(config(user["id"], name="Checkout On-call"), state)
    after = POLICY.update(api, policy_id, update, state, "urn:policy")
    assert stored["name"] == "Checkout On-call"
    # No read after a PUT: the state is the plan, rule ids as they were planned.
    assert after["rules"][0]["id"] == state["rules"][0]["id"]
    assert POLICY.read(api, policy_id, after)["rules"][0]["id"] != state["rules"][0]["id"]

    POLICY.delete(api, policy_id, after)
    assert pd.state.directory.get("escalation_policies", policy_id) is None
    assert fake_time.sleeps == [1.0]  # "giving the API time to catch up"
    # A refresh of a deleted policy: gone. A second delete: already done.
    assert POLICY.read(api, policy_id, after) is None
    POLICY.delete(api, policy_id, after)


def test_a_policy_in_use_is_retried_for_two_minutes_then_refused(
    pd: PagerDutySandbox, api: Api, user: dict[str, Any], fake_time: FakeTime
):
    policy_id, state = POLICY.create(api, plan_of(config(user["id"])), "urn:policy")
    pd.state.create_service(name="Uses it", escalation_policy_id=policy_id)
    with pytest.raises(RestError, match="Escalation policy is in use by one or more services"):
        POLICY.delete(api, policy_id, state)
    assert 110 <= sum(fake_time.sleeps) <= 122
    assert fake_time.sleeps[-1] == 2.0


def test_a_refused_create_is_not_retried(api: Api, fake_time: FakeTime):
    with pytest.raises(RestError, match="target PNOBODY not found"):
        POLICY.create(api, plan_of(config("PNOBODY")), "urn:policy")
    assert fake_time.sleeps == []
