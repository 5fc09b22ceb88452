"""Service: the body heimweh sends, what a GET sets over state, CustomizeDiff, the REST flow."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.pulumi_provider.plan import changes, planned
from sandbox.pulumi_provider.resource_type import Api, ProviderError
from sandbox.pulumi_provider.schema import with_defaults
from sandbox.pulumi_provider.service import (
    GROUPING_REMOVED_WARNING,
    Service,
    service_body,
    service_state,
    urgency_problems,
)
from sandbox.server import PagerDutySandbox
from tests.sandbox.pulumi_provider.conftest import FakeTime

SERVICE = Service()
SUPPORT_HOURS = {
    "type": "fixed_time_per_day",
    "timeZone": "Europe/Berlin",
    "startTime": "09:00:00",
    "endTime": "17:00:00",
    "daysOfWeeks": [1, 2, 3, 4, 5],
}
BY_HOURS = {
    "type": "use_support_hours",
    "duringSupportHours": {"type": "constant", "urgency": "high"},
    "outsideSupportHours": {"type": "constant", "urgency": "low"},
}


def plan_of(config: dict[str, Any], prior: dict[str, Any] | None = None) -> dict[str, Any]:
    return planned(SERVICE.schema, with_defaults(SERVICE.schema, config), prior)


def config(policy_id: str = "PPOL001", **changes: Any) -> dict[str, Any]:
    return {"name": "Checkout", "escalationPolicy": policy_id, **changes}


@pytest.fixture
def policy_id(pd: PagerDutySandbox) -> str:
    return pd.state.create_escalation_policy("Checkout Escalation")["id"]


def test_a_constant_service_sends_timeouts_and_response_play_always():
    body = service_body(
        plan_of(
            config(
                incidentUrgencyRule={"type": "constant", "urgency": "high"},
                acknowledgementTimeout="null",
            )
        ),
        None,
    )
    assert body == {
        "service": {
            "name": "Checkout",
            "description": "Managed by Pulumi",
            "auto_resolve_timeout": 14400,
            "acknowledgement_timeout": None,
            "escalation_policy": {"id": "PPOL001", "type": "escalation_policy_reference"},
            "incident_urgency_rule": {"type": "constant", "urgency": "high"},
            "response_play": None,
        }
    }


def test_support_hours_send_a_null_action_unless_actions_are_configured():
    plain = service_body(
        plan_of(
            config(incidentUrgencyRule=BY_HOURS, supportHours=SUPPORT_HOURS, scheduledActions=[])
        ),
        None,
    )["service"]
    assert plain["scheduled_actions"] == [None]
    assert plain["support_hours"] == {
        "type": "fixed_time_per_day",
        "time_zone": "Europe/Berlin",
        "start_time": "09:00:00",
        "end_time": "17:00:00",
        "days_of_week": [1, 2, 3, 4, 5],
    }
    assert plain["incident_urgency_rule"] == {
        "type": "use_support_hours",
        "during_support_hours": {"type": "constant", "urgency": "high"},
        "outside_support_hours": {"type": "constant", "urgency": "low"},
    }
    action = {
        "type": "urgency_change",
        "toUrgency": "high",
        "ats": [{"type": "named_time", "name": "support_hours_start"}],
    }
    with_action = service_body(
        plan_of(
            config(
                incidentUrgencyRule=BY_HOURS, supportHours=SUPPORT_HOURS, scheduledActions=[action]
            )
        ),
        None,
    )["service"]
    assert with_action["scheduled_actions"] == [
        {
            "type": "urgency_change",
            "to_urgency": "high",
            "at": {"type": "named_time", "name": "support_hours_start"},
        }
    ]


def test_grouping_parameters_by_type_and_their_removal():
    def grouping(parameters: dict[str, Any]) -> Any:
        return service_body(plan_of(config(alertGroupingParameters=parameters)), None)["service"][
            "alert_grouping_parameters"
        ]

    assert grouping({"type": "time", "config": {"timeout": 5}}) == {
        "type": "time",
        "config": {"timeout": 5},
    }
    assert grouping({"type": "intelligent", "config": {}}) == {
        "type": "intelligent",
        "config": {"time_window": 0},
    }
    assert grouping(
        {
            "type": "content_based",
            "config": {"aggregate": "all", "fields": ["summary"], "timeout": 9},
        }
    ) == {
        "type": "content_based",
        "config": {"time_window": 0, "fields": ["summary"], "aggregate": "all"},
    }
    prior = {"alertGroupingParameters": {"type": "time", "config": {"timeout": 5}}}
    removed = service_body(plan_of(config(), prior), prior)["service"]
    assert removed["alert_grouping_parameters"] == {"type": None}
    assert "alert_grouping_parameters" not in service_body(plan_of(config()), None)["service"]


def test_auto_pause_sends_no_timeout_when_disabled():
    def pause(parameters: dict[str, Any]) -> Any:
        return service_body(plan_of(config(autoPauseNotificationsParameters=parameters)), None)[
            "service"
        ]["auto_pause_notifications_parameters"]

    assert pause({"enabled": True, "timeout": 300}) == {"enabled": True, "timeout": 300}
    assert pause({"enabled": False, "timeout": 300}) == {"enabled": False, "timeout": None}


def test_a_bad_timeout_fails_like_strconv():
    with pytest.raises(ProviderError, match=r'strconv\.Atoi: parsing "soon": invalid syntax'):
        service_body(plan_of(config(autoResolveTimeout="soon")), None)


def test_the_state_sets_what_the_answer_has_and_keeps_the_rest():
    answer = {
        "id": "PSVC001",
        "name": "Checkout",
        "type": "service",
        "html_url": "http://x/service-directory/PSVC001",
        "created_at": "2026-01-05T12:00:00Z",
        "escalation_policy": {"id": "PPOL001"},
        "description": "Managed by Pulumi",
        "alert_creation": "create_alerts_and_incidents",
        "auto_resolve_timeout": None,
        "acknowledgement_timeout": 1800,
        "auto_pause_notifications_parameters": {"enabled": False, "timeout": None},
        "incident_urgency_rule": {"type": "constant", "urgency": "high"},
        "alert_grouping_parameters": {"type": "time", "config": {"timeout": 5}},
        "scheduled_actions": [],
        "response_play": None,
    }
    prior = {"supportHours": SUPPORT_HOURS, "status": None}
    state = service_state(answer, prior)
    assert state["autoResolveTimeout"] == "null"
    assert state["acknowledgementTimeout"] == "1800"
    assert state["alertGroupingTimeout"] == "null"
    assert state["autoPauseNotificationsParameters"] == {"enabled": False, "timeout": 120}
    assert state["incidentUrgencyRule"] == {"type": "constant", "urgency": "high"}
    # No support hours in the answer: the old ones stay; grouping only if the program had it.
    assert state["supportHours"] == SUPPORT_HOURS
    assert "alertGroupingParameters" not in state
    grouped = service_state(answer, {"alertGroupingParameters": {"type": "time"}})
    assert grouped["alertGroupingParameters"] == {
        "type": "time",
        "config": {"aggregate": None, "fields": None, "timeout": 5, "timeWindow": None},
    }
    with pytest.raises(ProviderError, match="answered no escalation_policy"):
        service_state({**answer, "escalation_policy": None}, prior)
    with pytest.raises(ProviderError, match="a scheduled action without `at`"):
        service_state({**answer, "scheduled_actions": [None]}, prior)


def test_customize_diff_problems():
    assert urgency_problems(
        plan_of(config(incidentUrgencyRule={**BY_HOURS, "urgency": "high"}))
    ) == [
        "general urgency cannot be set for a use_support_hours incident urgency rule type",
        "when using type = use_support_hours in incident_urgency_rule you must specify exactly "
        "one (otherwise optional) support_hours block",
    ]
    content = plan_of(config(alertGroupingParameters={"type": "content_based", "config": {}}))
    assert urgency_problems(content) == [
        'When using Alert grouping parameters configuration of type "content_based" is in use, '
        'attributes "aggregate" and "fields" are required'
    ]
    timed = plan_of(
        config(alertGroupingParameters={"type": "intelligent", "config": {"timeout": 5}})
    )
    assert urgency_problems(timed) == [
        'Alert grouping parameters configuration attribute "timeout" is only supported by '
        '"time" type Alert Grouping'
    ]


def test_create_update_read_delete_on_the_sandbox(
    pd: PagerDutySandbox, api: Api, policy_id: str, fake_time: FakeTime
):
    plan = plan_of(config(policy_id, incidentUrgencyRule=BY_HOURS, supportHours=SUPPORT_HOURS))
    service_id, state = SERVICE.create(api, plan, "urn:svc")
    assert fake_time.sleeps == [0.5]
    assert state["htmlUrl"] == pd.state.directory.get("services", service_id)["html_url"]
    assert state["supportHours"] == SUPPORT_HOURS
    assert state["scheduledActions"] == []
    assert (
        changes(
            SERVICE.schema,
            plan_of(
                config(policy_id, incidentUrgencyRule=BY_HOURS, supportHours=SUPPORT_HOURS), state
            ),
            state,
            zero_is_null=True,
        )
        == []
    )

    renamed = SERVICE.update(
        api,
        service_id,
        plan_of(
            config(
                policy_id,
                name="Checkout API",
                incidentUrgencyRule=BY_HOURS,
                supportHours=SUPPORT_HOURS,
            ),
            state,
        ),
        state,
        "urn:svc",
    )
    assert renamed["name"] == pd.state.directory.get("services", service_id)["name"]

    SERVICE.delete(api, service_id, renamed)
    assert SERVICE.read(api, service_id, renamed) is None
    SERVICE.delete(api, service_id, renamed)  # a 404: already gone
    with pytest.raises(ProviderError, match="no longer exists in PagerDuty; run `pulumi refresh`"):
        SERVICE.update(api, service_id, plan_of(config(policy_id), renamed), renamed, "urn:svc")


def test_switching_to_a_constant_rule_leaves_support_hours_in_state(api: Api, policy_id: str):
    """The real provider's perpetual diff (notes G1): a PUT cannot clear support hours."""
    by_hours = config(policy_id, incidentUrgencyRule=BY_HOURS, supportHours=SUPPORT_HOURS)
    service_id, state = SERVICE.create(api, plan_of(by_hours), "urn:svc")
    constant = config(policy_id, incidentUrgencyRule={"type": "constant", "urgency": "high"})
    state = SERVICE.update(api, service_id, plan_of(constant, state), state, "urn:svc")
    assert state["supportHours"] == SUPPORT_HOURS
    assert [c.name for c in changes(SERVICE.schema, plan_of(constant, state), state, True)] == [
        "supportHours"
    ]


def test_removing_grouping_parameters_warns(
    api: Api, policy_id: str, warnings: list[tuple[str, str]]
):
    grouped = config(policy_id, alertGroupingParameters={"type": "time", "config": {"timeout": 5}})
    service_id, state = SERVICE.create(api, plan_of(grouped), "urn:svc")
    assert state["alertGroupingParameters"]["config"]["timeout"] == 5
    SERVICE.update(api, service_id, plan_of(config(policy_id), state), state, "urn:svc")
    assert warnings == [("urn:svc", GROUPING_REMOVED_WARNING)]
