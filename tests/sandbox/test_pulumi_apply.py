"""The unchanged program applied to the sandbox's REST API under the mock runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.routes_file import parse_routes
from infra.validate import load_stack
from sandbox.pulumi_apply import SEED_POLICY_FOR_EXISTING_SERVICES, account_seed, apply_stack
from sandbox.rest_mocks import RestApplyError
from sandbox.seed import apply_seed

EXAMPLE = Path(__file__).resolve().parents[2] / "stacks" / "example.yaml"


@pytest.fixture(scope="module")
def stack():
    return load_stack(EXAMPLE)


def test_seed_holds_what_the_stack_refers_to(stack):
    seed = account_seed(stack)
    assert seed == {
        "users": [
            {"email": "alice@example.com", "name": "Alice"},
            {"email": "bob@example.com", "name": "Bob"},
            {"email": "carol@example.com", "name": "Carol"},
        ],
        "schedules": [{"name": "Platform Primary"}, {"name": "Payments Primary"}],
        "teams": [{"name": "Platform"}, {"name": "Payments"}],
        "vendors": [{"name": "Apica", "id": "PAPICA1"}, {"name": "Apica", "id": "PAPICA2"}],
        "escalation_policies": [
            {"name": "SRE Escalation"}, {"name": SEED_POLICY_FOR_EXISTING_SERVICES},
        ],
        "services": [{
            "name": "Legacy Web", "urgency": "severity_based",
            "escalation_policy": SEED_POLICY_FOR_EXISTING_SERVICES,
        }],
    }


def test_apply_creates_the_declared_services_and_hands_back_real_keys(stack, pd):
    apply_seed(pd.state, account_seed(stack))
    routes = parse_routes(apply_stack(stack, "example", pd.api_url, pd.token), "out")

    services = {s["name"]: s for s in pd.state.services()}
    assert sorted(services) == ["Checkout API", "Legacy Web", "Search", "Status Page"]
    checkout = services["Checkout API"]
    assert checkout["incident_urgency_rule"] == {
        "type": "use_support_hours",
        "during_support_hours": {"type": "constant", "urgency": "high"},
        "outside_support_hours": {"type": "constant", "urgency": "low"},
    }
    assert checkout["support_hours"]["time_zone"] == "Europe/Berlin"
    assert checkout["support_hours"]["days_of_week"] == [1, 2, 3, 4, 5]
    assert checkout["auto_resolve_timeout"] is None
    status_page = services["Status Page"]
    assert status_page["incident_urgency_rule"] == {"type": "constant", "urgency": "low"}

    assert sorted(routes.routes) == ["checkout", "legacy-web", "search", "status-page"]
    for name, route in routes.routes.items():
        integration, service = pd.state.directory.integration_by_key(
            route.routing_key.get_secret_value()
        )
        assert (service["name"], service["id"]) == (route.service_name, route.service_id), name
        assert integration["name"] == route.integration_name
        assert integration["id"] == route.integration_id
    legacy = routes.routes["legacy-web"].routing_key.get_secret_value()
    assert pd.state.directory.integration_by_key(legacy)[0]["vendor"]["id"] == "PAPICA2"
    search = routes.routes["search"].routing_key.get_secret_value()
    plain = pd.state.directory.integration_by_key(search)[0]  # integration: {type: events_api_v2}
    assert (plain["type"], plain["vendor"]) == ("events_api_v2_inbound_integration", None)
    assert routes.catch_all == "status-page"


def test_apply_groups_alerts_through_settings_in_seconds(stack, pd):
    apply_seed(pd.state, account_seed(stack))
    apply_stack(stack, "example", pd.api_url, pd.token)
    directory = pd.state.directory
    grouping = {}
    for service in directory.list("services"):
        # Nothing on the service itself: that would leave any account-wide setting.
        assert service["alert_grouping_parameters"] == {"type": None, "config": None}
        setting = directory.grouping_setting_of(service["id"])
        if setting is not None:
            grouping[service["name"]] = (setting["name"], setting["type"], setting["config"])
    assert grouping == {
        "Checkout API": ("Checkout API", "time", {"timeout": 900}),  # 15m
        "Search": (
            "Search",
            "content_based",
            {"time_window": 3600, "aggregate": "all", "fields": ["source", "component"]},
        ),
        "Status Page": (
            "Status Page", "intelligent", {"time_window": 300, "iag_fields": ["summary"]}
        ),
    }


def test_missing_existing_policy_names_what_to_create(stack, pd):
    seed = account_seed(stack)
    seed["escalation_policies"] = [
        p for p in seed["escalation_policies"] if p["name"] != "SRE Escalation"
    ]
    apply_seed(pd.state, seed)
    with pytest.raises(RestApplyError) as caught:
        apply_stack(stack, "example", pd.api_url, pd.token)
    assert str(caught.value) == (
        "Unable to locate any escalation policy with the name: SRE Escalation"
    )


def test_a_schedule_spelt_in_another_case_is_refused_as_the_provider_would(stack, pd):
    seed = account_seed(stack)
    seed["schedules"] = [{"name": "platform primary"}, {"name": "Payments Primary"}]
    apply_seed(pd.state, seed)
    with pytest.raises(RestApplyError) as caught:
        apply_stack(stack, "example", pd.api_url, pd.token)
    assert str(caught.value) == (
        "Unable to locate any schedule with the name: Platform Primary (PagerDuty has "
        "'platform primary': look-ups match the name exactly, case included; write it as "
        "PagerDuty has it)"
    )
