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
