"""Terraform's plan and diff: values kept from state, "known after apply", zero values, replaces."""

from __future__ import annotations

from sandbox.pulumi_provider.alert_grouping_setting import SCHEMA as SETTING
from sandbox.pulumi_provider.escalation_policy import SCHEMA as POLICY
from sandbox.pulumi_provider.plan import Change, changes, planned
from sandbox.pulumi_provider.properties import UNKNOWN, Secret
from sandbox.pulumi_provider.service import SCHEMA as SERVICE
from sandbox.pulumi_provider.service_integration import SCHEMA as INTEGRATION

TARGETS = [{"type": "user_reference", "id": "PUSER01"}]
POLICY_CONFIG = {
    "name": "Ops",
    "description": "Managed by Pulumi",
    "rules": [{"escalationDelayInMinutes": 10, "targets": TARGETS}],
}
POLICY_STATE = {
    "id": "PPOL001",
    "name": "Ops",
    "description": "Managed by Pulumi",
    "numLoops": 0,
    "teams": None,
    "rules": [
        {
            "id": "PRULE01",
            "escalationDelayInMinutes": 10,
            "escalationRuleAssignmentStrategy": {"type": "assign_to_everyone"},
            "targets": TARGETS,
        }
    ],
}


def test_a_create_plans_computed_values_as_known_after_apply():
    plan = planned(POLICY, POLICY_CONFIG, None)
    rule = plan["rules"][0]
    assert rule["id"] is UNKNOWN
    assert rule["escalationRuleAssignmentStrategy"] is UNKNOWN
    assert "numLoops" not in plan and "teams" not in plan  # optional, not computed


def test_an_update_keeps_computed_values_from_state():
    plan = planned(POLICY, {**POLICY_CONFIG, "name": "Ops 2"}, POLICY_STATE)
    assert plan["rules"][0]["id"] == "PRULE01"
    assert plan["rules"][0]["escalationRuleAssignmentStrategy"] == {"type": "assign_to_everyone"}
    assert changes(POLICY, plan, POLICY_STATE, zero_is_null=True) == [
        Change("name", "update", replace=False)
    ]


def test_sdkv2_sees_no_difference_between_unset_and_zero():
    plan = planned(POLICY, POLICY_CONFIG, POLICY_STATE)  # numLoops 0 and teams None in state
    assert changes(POLICY, plan, POLICY_STATE, zero_is_null=True) == []
    state = {**POLICY_STATE, "teams": "PTEAM01"}
    assert changes(POLICY, plan, state, zero_is_null=True) == [
        Change("teams", "delete", replace=False)
    ]
    added = planned(POLICY, {**POLICY_CONFIG, "numLoops": 2}, POLICY_STATE)
    assert changes(POLICY, added, POLICY_STATE, zero_is_null=True) == [
        Change("numLoops", "update", replace=False)
    ]


def test_an_optional_property_left_out_is_a_delete_and_a_suppressed_one_never_differs():
    """The real provider's perpetual diff: support hours PagerDuty kept after a PUT."""
    state = {
        "name": "Checkout",
        "escalationPolicy": "PPOL001",
        "alertCreation": "create_alerts_and_incidents",
        "supportHours": {"type": "fixed_time_per_day", "timeZone": "UTC"},
    }
    config = {
        "name": "Checkout",
        "escalationPolicy": "PPOL001",
        "alertCreation": "create_incidents",
    }
    plan = planned(SERVICE, config, state)
    assert plan["alertCreation"] == "create_alerts_and_incidents"  # the stored value is sent
    assert changes(SERVICE, plan, state, zero_is_null=True) == [
        Change("supportHours", "delete", replace=False)
    ]


def test_force_new_properties_replace_and_unknowns_count_as_changes():
    state = {
        "service": "PSVC001",
        "vendor": "PVEND01",
        "name": "Apica-Checkout",
        "integrationKey": "k" * 32,
        "type": "",
    }
    plan = planned(
        INTEGRATION, {"service": "PSVC001", "vendor": "PVEND02", "name": "Apica-Checkout"}, state
    )
    assert plan["integrationKey"] == "k" * 32  # optional+computed: kept, and sent on a PUT
    assert changes(INTEGRATION, plan, state, zero_is_null=True) == [
        Change("vendor", "update", replace=True)
    ]
    unknown = planned(
        INTEGRATION,
        {"service": UNKNOWN, "vendor": "PVEND01", "name": Secret("Apica-Checkout")},
        state,
    )
    assert changes(INTEGRATION, unknown, state, zero_is_null=True) == [
        Change("service", "update", replace=True)
    ]


def test_the_framework_keeps_null_apart_from_empty_and_compares_sets_unordered():
    state = {
        "name": None,
        "description": "Managed by Terraform",
        "type": "content_based",
        "services": ["PSVC001", "PSVC002"],
        "config": {
            "timeWindow": 300,
            "aggregate": "all",
            "fields": ["summary", "source"],
            "timeout": None,
            "iagFields": None,
        },
    }
    config = {
        "type": "content_based",
        "services": ["PSVC002", "PSVC001"],
        "config": {"aggregate": "all", "fields": ["source", "summary"]},
    }
    plan = planned(SETTING, config, state)
    assert plan["config"]["timeWindow"] == 300
    assert changes(SETTING, plan, state, zero_is_null=False) == []
    named = planned(SETTING, {**config, "name": ""}, state)
    assert changes(SETTING, named, state, zero_is_null=False) == [
        Change("name", "add", replace=False)
    ]
    assert changes(SETTING, named, {**state, "name": ""}, zero_is_null=True) == []
