"""PagerDutyRestMocks: registrations become REST calls, look-ups REST queries."""

from __future__ import annotations

import pytest
from pulumi.runtime import MockCallArgs, MockResourceArgs

from sandbox.rest_mocks import PagerDutyRestMocks, RestApplyError


@pytest.fixture
def mocks(pd):
    return PagerDutyRestMocks(pd.api_url, pd.token)


def call(token: str, **args: str) -> MockCallArgs:
    return MockCallArgs(token=token, args=args, provider="")


def resource(typ: str, logical_name: str, **inputs: object) -> MockResourceArgs:
    return MockResourceArgs(
        typ=typ, name=logical_name, inputs=inputs, provider="", resource_id=""
    )


def test_vendor_look_up_prefers_exact_name_then_takes_a_partial(pd, mocks):
    pd.state.add_vendor("Acme Monitor Pro", id="PPART1")
    pd.state.add_vendor("Acme Monitor", id="PEXACT")
    found, _ = mocks.call(call("pagerduty:index/getVendor:getVendor", name="acme monitor"))
    assert found["id"] == "PEXACT"
    pd.state.add_vendor("Zeta Monitor Pro", id="PZETA01")
    partial, _ = mocks.call(call("pagerduty:index/getVendor:getVendor", name="Zeta Mon"))
    assert partial["id"] == "PZETA01"


def test_unknown_user_is_refused_like_the_provider(mocks):
    with pytest.raises(RestApplyError, match=r"^Unable to locate any user with the email: x@y\.z$"):
        mocks.call(call("pagerduty:index/getUser:getUser", email="x@y.z"))


def test_service_is_created_with_timeouts_as_numbers(pd, mocks):
    policy = pd.state.create_escalation_policy("Ops")
    service_id, outputs = mocks.new_resource(resource(
        "pagerduty:index/service:Service", "service-web",
        name="Web", escalationPolicy=policy["id"], autoResolveTimeout="null",
        acknowledgementTimeout="1800",
        incidentUrgencyRule={"type": "constant", "urgency": "severity_based"},
    ))
    stored = pd.state.directory.get("services", service_id)
    assert stored["auto_resolve_timeout"] is None
    assert stored["acknowledgement_timeout"] == 1800
    assert outputs["htmlUrl"].endswith(f"/services/{service_id}")


def test_refusal_by_the_api_names_the_call(mocks):
    with pytest.raises(RestApplyError, match=r"^POST /services answered 4\d\d: "):
        mocks.new_resource(resource(
            "pagerduty:index/service:Service", "service-web",
            name="Web", escalationPolicy="PNOPE00",
        ))


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
