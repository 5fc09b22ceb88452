"""PagerDutyRestMocks: registrations become the provider's REST calls, look-ups its queries."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from pulumi.runtime import MockCallArgs, MockResourceArgs

from sandbox.rest_mocks import PagerDutyRestMocks, RestApplyError

GET_VENDOR = "pagerduty:index/getVendor:getVendor"
GET_USER = "pagerduty:index/getUser:getUser"
GET_SCHEDULE = "pagerduty:index/getSchedule:getSchedule"
GET_TEAM = "pagerduty:index/getTeam:getTeam"
GET_SERVICE = "pagerduty:index/getService:getService"
GET_POLICY = "pagerduty:index/getEscalationPolicy:getEscalationPolicy"


class RecordingSession(requests.Session):
    """A real session that also keeps (method, path, params, JSON body) of each request."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str, dict[str, Any], Any]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        path = "/" + url.split("/", 3)[3]
        self.sent.append((method, path, dict(kwargs.get("params") or {}), kwargs.get("json")))
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def session():
    with RecordingSession() as recording:
        yield recording


@pytest.fixture
def mocks(pd, session):
    return PagerDutyRestMocks(pd.api_url, pd.token, session)


@pytest.fixture
def policy(pd):
    return pd.state.create_escalation_policy("Ops")


def call(token: str, **args: str) -> MockCallArgs:
    return MockCallArgs(token=token, args=args, provider="")


def resource(typ: str, logical_name: str, **inputs: object) -> MockResourceArgs:
    return MockResourceArgs(
        typ=typ, name=logical_name, inputs=inputs, provider="", resource_id=""
    )


def web_service(mocks, policy, **inputs: object) -> str:
    service_id, _ = mocks.new_resource(resource(
        "pagerduty:index/service:Service", "service-web",
        name="Web", escalationPolicy=policy["id"], autoResolveTimeout="14400",
        acknowledgementTimeout="null",
        incidentUrgencyRule={"type": "constant", "urgency": "severity_based"}, **inputs,
    ))
    return service_id


# -- look-ups ------------------------------------------------------------------------


def test_vendor_look_up_pages_the_catalogue_without_a_query(pd, mocks, session):
    # A partial match on the first page; the exact one (ignoring case) on the second wins.
    pd.state.add_vendor("Acme Monitor Pro", id="PPART1")
    for number in range(143):
        pd.state.add_vendor(f"Filler {number:03}")
    pd.state.add_vendor("monitor", id="PEXACT")
    found, _ = mocks.call(call(GET_VENDOR, name="Monitor"))
    assert found["id"] == "PEXACT"
    assert [sent[:3] for sent in session.sent] == [
        ("GET", "/vendors", {"limit": 100, "offset": 0}),
        ("GET", "/vendors", {"limit": 100, "offset": 100}),
    ]


def test_vendor_look_up_falls_back_to_the_first_partial_match(pd, mocks):
    pd.state.add_vendor("Zeta Monitor Pro", id="PZETA01")
    partial, _ = mocks.call(call(GET_VENDOR, name="zeta mon"))
    assert (partial["id"], partial["name"]) == ("PZETA01", "Zeta Monitor Pro")


def test_unknown_user_is_refused_like_the_provider(mocks):
    with pytest.raises(RestApplyError, match=r"^Unable to locate any user with the email: x@y\.z$"):
        mocks.call(call(GET_USER, email="x@y.z"))


def test_user_e_mail_must_match_case_included(pd, mocks, session):
    pd.state.add_user("Ann@Example.com", "Ann")
    with pytest.raises(RestApplyError) as caught:
        mocks.call(call(GET_USER, email="ann@example.com"))
    assert str(caught.value) == (
        "Unable to locate any user with the email: ann@example.com (PagerDuty has "
        "'Ann@Example.com': look-ups match the email exactly, case included; write it as "
        "PagerDuty has it)"
    )
    assert session.sent[0][:3] == ("GET", "/users", {"query": "ann@example.com"})


@pytest.mark.parametrize(
    ("token", "seed", "message"),
    [
        (GET_SCHEDULE, "add_schedule", "Unable to locate any schedule with the name: web primary"),
        (GET_TEAM, "add_team", "Unable to locate any team with name: web primary"),
        (
            GET_POLICY,
            "create_escalation_policy",
            "Unable to locate any escalation policy with the name: web primary",
        ),
    ],
)
def test_names_must_match_case_included(pd, mocks, token, seed, message):
    getattr(pd.state, seed)("Web Primary")
    with pytest.raises(RestApplyError) as caught:
        mocks.call(call(token, name="web primary"))
    assert str(caught.value) == (
        f"{message} (PagerDuty has 'Web Primary': look-ups match the name exactly, case "
        "included; write it as PagerDuty has it)"
    )


def test_service_look_up_pages_with_teams_and_takes_the_exact_name(pd, mocks, session):
    for number in range(3):
        pd.state.create_service(f"Legacy Web {number}")
    legacy = pd.state.create_service("Legacy Web")
    found, _ = mocks.call(call(GET_SERVICE, name="Legacy Web"))
    assert found["id"] == legacy["id"]
    assert session.sent[0][:3] == (
        "GET", "/services", {"include[]": "teams", "limit": 100, "query": "Legacy Web"},
    )


def test_policy_and_schedule_look_ups_send_the_providers_queries(pd, mocks, session):
    pd.state.create_escalation_policy("SRE")
    pd.state.add_schedule("Primary")
    mocks.call(call(GET_POLICY, name="SRE"))
    mocks.call(call(GET_SCHEDULE, name="Primary"))
    assert [sent[:3] for sent in session.sent] == [
        ("GET", "/escalation_policies", {"include[]": "teams", "query": "SRE"}),
        ("GET", "/schedules", {"query": "Primary"}),
    ]


# -- resources -----------------------------------------------------------------------


def test_policy_is_created_then_read_with_assignment_strategies(pd, mocks, session):
    user = pd.state.add_user("ann@example.com", "Ann")
    policy_id, _ = mocks.new_resource(resource(
        "pagerduty:index/escalationPolicy:EscalationPolicy", "policy-oncall",
        name="On-call", description="Managed by Pulumi", numLoops=1.0,
        rules=[{
            "escalationDelayInMinutes": 30.0,
            "escalationRuleAssignmentStrategy": {"type": "round_robin"},
            "targets": [{"type": "user_reference", "id": user["id"]}],
        }],
    ))
    (_, _, _, body), (method, path, params, _) = session.sent
    assert body == {"escalation_policy": {
        "name": "On-call",
        "description": "Managed by Pulumi",
        "num_loops": 1,
        "teams": None,
        "escalation_rules": [{
            "escalation_delay_in_minutes": 30,
            "escalation_rule_assignment_strategy": {"type": "round_robin"},
            "targets": [{"type": "user_reference", "id": user["id"]}],
        }],
    }}
    assert (method, path, params) == (
        "GET", f"/escalation_policies/{policy_id}",
        {"include[]": "escalation_rule_assignment_strategies"},
    )


def test_service_is_sent_as_the_provider_sends_it_and_read_back(pd, mocks, session, policy):
    service_id, outputs = mocks.new_resource(resource(
        "pagerduty:index/service:Service", "service-web",
        name="Web", description="Managed by Pulumi", escalationPolicy=policy["id"],
        autoResolveTimeout="null", acknowledgementTimeout="1800",
        incidentUrgencyRule={
            "type": "use_support_hours",
            "duringSupportHours": {"type": "constant", "urgency": "high"},
            "outsideSupportHours": {"type": "constant", "urgency": "severity_based"},
        },
        supportHours={
            "type": "fixed_time_per_day", "timeZone": "UTC", "startTime": "09:00:00",
            "endTime": "17:00:00", "daysOfWeeks": [1.0, 2.0],
        },
        autoPauseNotificationsParameters={"enabled": False},
    ))
    (_, _, _, body), (method, path, params, _) = session.sent
    assert body["service"] == {
        "name": "Web",
        "description": "Managed by Pulumi",
        "escalation_policy": {"id": policy["id"], "type": "escalation_policy_reference"},
        "auto_resolve_timeout": None,
        "acknowledgement_timeout": 1800,
        "response_play": None,
        "incident_urgency_rule": {
            "type": "use_support_hours",
            "during_support_hours": {"type": "constant", "urgency": "high"},
            "outside_support_hours": {"type": "constant", "urgency": "severity_based"},
        },
        "support_hours": {
            "type": "fixed_time_per_day", "time_zone": "UTC", "start_time": "09:00:00",
            "end_time": "17:00:00", "days_of_week": [1, 2],
        },
        # Support hours without actions: the provider's one null action.
        "scheduled_actions": [None],
        "auto_pause_notifications_parameters": {"enabled": False, "timeout": None},
    }
    assert (method, path, params) == (
        "GET", f"/services/{service_id}", {"include[]": "auto_pause_notifications_parameters"},
    )
    stored = pd.state.directory.get("services", service_id)
    assert stored["scheduled_actions"] == []
    assert outputs["htmlUrl"] == stored["html_url"]


def test_vendor_integration_is_a_service_integration_read_back_plainly(
    pd, mocks, session, policy
):
    service_id = web_service(mocks, policy)
    session.sent.clear()
    apica = next(v for v in pd.state.directory.list("vendors") if v["name"] == "Apica")
    integration_id, outputs = mocks.new_resource(resource(
        "pagerduty:index/serviceIntegration:ServiceIntegration", "service-web-apica",
        name="Apica-Web", service=service_id, vendor=apica["id"],
    ))
    (_, _, _, body), (method, path, params, _) = session.sent
    assert body == {"integration": {
        "name": "Apica-Web",
        "type": "service_integration",
        "service": {"id": service_id, "type": "service"},
        "vendor": {"id": apica["id"], "type": "vendor"},
    }}
    assert (method, path, params) == (
        "GET", f"/services/{service_id}/integrations/{integration_id}", {},
    )
    stored = pd.state.directory.get("integrations", integration_id)
    assert outputs["integrationKey"] == stored["integration_key"]
    assert outputs["vendor"] == apica["id"]


def test_events_api_v2_integration_is_sent_with_its_type_and_no_vendor(
    pd, mocks, session, policy
):
    service_id = web_service(mocks, policy)
    session.sent.clear()
    integration_id, outputs = mocks.new_resource(
        resource(
            "pagerduty:index/serviceIntegration:ServiceIntegration",
            "service-web-apica",
            name="Apica-Web",
            service=service_id,
            type="events_api_v2_inbound_integration",
        )
    )
    assert session.sent[0][3] == {
        "integration": {
            "name": "Apica-Web",
            "type": "events_api_v2_inbound_integration",
            "service": {"id": service_id, "type": "service"},
        }
    }
    stored = pd.state.directory.get("integrations", integration_id)
    assert (stored["type"], stored["vendor"]) == ("events_api_v2_inbound_integration", None)
    assert outputs["type"] == "events_api_v2_inbound_integration"
    assert outputs["integrationKey"] == stored["integration_key"]


def test_grouping_setting_is_sent_with_the_providers_config_and_read_back(
    pd, mocks, session, policy
):
    service_id = web_service(mocks, policy)
    session.sent.clear()
    setting_id, _ = mocks.new_resource(resource(
        "pagerduty:index/alertGroupingSetting:AlertGroupingSetting", "service-web-grouping",
        name="Web", description="Alert grouping of Web", type="time", config={},
        services=[service_id],
    ))
    (_, _, _, body), (method, path, _, _) = session.sent
    assert body == {"alert_grouping_setting": {
        "name": "Web",
        "description": "Alert grouping of Web",
        "type": "time",
        "config": {"timeout": 0},  # unset: until resolved, as the provider sends it
        "services": [{"id": service_id}],
    }}
    assert (method, path) == ("GET", f"/alert_grouping_settings/{setting_id}")
    assert pd.state.directory.grouping_setting_of(service_id)["id"] == setting_id


def test_refusal_by_the_api_names_the_call(mocks):
    with pytest.raises(RestApplyError, match=r"^POST /services answered 4\d\d: "):
        mocks.new_resource(resource(
            "pagerduty:index/service:Service", "service-web",
            name="Web", escalationPolicy="PNOPE00",
        ))


def test_after_a_failure_nothing_more_is_sent(mocks, session):
    with pytest.raises(RestApplyError):
        mocks.call(call(GET_USER, email="x@y.z"))
    sent = len(session.sent)
    with pytest.raises(RestApplyError, match=r"^GET /users not sent: Unable to locate"):
        mocks.call(call(GET_USER, email="a@b.c"))
    assert len(session.sent) == sent


def test_component_resources_are_echoed(mocks):
    resource_id, outputs = mocks.new_resource(
        resource("apica-pagerduty:index:ApicaService", "web", name="Web")
    )
    assert (resource_id, outputs) == ("web-id", {"name": "Web"})


# -- adopted resources (import_) ------------------------------------------------------


def imported(typ: str, logical_name: str, import_id: str, **inputs: object) -> MockResourceArgs:
    return MockResourceArgs(
        typ=typ, name=logical_name, inputs=inputs, provider="", resource_id=import_id
    )


SERVICE_INPUTS = {
    "name": "Web", "description": "", "autoResolveTimeout": "14400",
    "acknowledgementTimeout": "1800",
    "incidentUrgencyRule": {"type": "constant", "urgency": "high"},
    "autoPauseNotificationsParameters": {"enabled": False},
}


def test_an_adopted_service_that_matches_is_read_not_written(pd, mocks):
    policy = pd.state.create_escalation_policy("Ops")
    service = pd.state.create_service("Web", escalation_policy_id=policy["id"])
    before = pd.state.directory.get("services", service["id"]).copy()
    service_id, outputs = mocks.new_resource(imported(
        "pagerduty:index/service:Service", "service-web", service["id"],
        escalationPolicy=policy["id"], **SERVICE_INPUTS,
    ))
    assert (service_id, mocks.imported, mocks.updated, mocks.created) == (
        service["id"], ["service-web"], {}, [],
    )
    assert pd.state.directory.get("services", service["id"]) == before
    assert outputs["htmlUrl"] == service["html_url"]


def test_an_adopted_service_that_differs_is_updated_like_the_engine_does(pd, mocks):
    policy = pd.state.create_escalation_policy("Ops")
    service = pd.state.create_service("Web", escalation_policy_id=policy["id"])
    mocks.new_resource(imported(
        "pagerduty:index/service:Service", "service-web", service["id"],
        escalationPolicy=policy["id"], **{**SERVICE_INPUTS, "name": "Web site",
                                          "acknowledgementTimeout": "null"},
    ))
    assert mocks.updated == {"service-web": ["name", "acknowledgement_timeout"]}
    stored = pd.state.directory.get("services", service["id"])
    assert (stored["name"], stored["acknowledgement_timeout"]) == ("Web site", None)


def test_an_adopted_integration_hands_back_its_key(pd, mocks):
    service = pd.state.create_service("Web")
    vendor = pd.state.add_vendor("Apica", id="PAPICA9")
    integration = pd.state.add_integration(service["id"], "Apica-Web", vendor_id=vendor["id"])
    integration_id, outputs = mocks.new_resource(imported(
        "pagerduty:index/serviceIntegration:ServiceIntegration", "service-web-apica",
        f"{service['id']}.{integration['id']}", name="Apica-Web", service=service["id"],
        vendor="PAPICA9",
    ))
    assert (integration_id, mocks.updated) == (integration["id"], {})
    assert outputs["integrationKey"] == integration["integration_key"]


def test_an_import_id_of_another_service_is_refused(pd, mocks):
    service = pd.state.create_service("Web")
    integration = pd.state.add_integration(service["id"], "Apica-Web")
    with pytest.raises(RestApplyError) as caught:
        mocks.new_resource(imported(
            "pagerduty:index/serviceIntegration:ServiceIntegration", "service-web-apica",
            f"POTHER1.{integration['id']}", name="Apica-Web", service=service["id"],
        ))
    assert str(caught.value) == (
        f"import id POTHER1.{integration['id']} names service POTHER1, but the program puts "
        f"the integration on {service['id']}"
    )


def test_an_adopted_policy_that_is_gone_names_the_call(pd, mocks):
    with pytest.raises(RestApplyError, match=r"^GET /escalation_policies/PGONE00 answered 404: "):
        mocks.new_resource(imported(
            "pagerduty:index/escalationPolicy:EscalationPolicy", "policy-ops", "PGONE00",
            name="Ops", rules=[],
        ))
