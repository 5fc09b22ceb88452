"""The REST API v2 subset over real HTTP: auth, wrapped shapes, lists, 400/404 bodies."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox.server import PagerDutySandbox

HEADERS = {
    "Authorization": "Token token=test-token",
    "Accept": "application/vnd.pagerduty+json;version=2",
}


@pytest.fixture
def api(http: requests.Session) -> requests.Session:
    http.headers.update(HEADERS)
    return http


@pytest.fixture
def user(pd: PagerDutySandbox) -> dict[str, Any]:
    return pd.state.add_user(email="ann@example.com", name="Ann Oncall")


@pytest.fixture
def policy(pd: PagerDutySandbox, api: requests.Session, user: dict[str, Any]) -> dict[str, Any]:
    body = {
        "escalation_policy": {
            "type": "escalation_policy",
            "name": "Checkout On-call",
            "num_loops": 2,
            "escalation_rules": [
                {
                    "escalation_delay_in_minutes": 10,
                    "targets": [{"id": user["id"], "type": "user_reference"}],
                }
            ],
        }
    }
    response = api.post(pd.url + "/escalation_policies", json=body, timeout=5)
    assert response.status_code == 201
    return response.json()["escalation_policy"]


def service_body(policy_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "service": {
            "type": "service",
            "name": "Checkout API",
            "escalation_policy": {"id": policy_id, "type": "escalation_policy_reference"},
            **fields,
        }
    }


def invalid(*errors: str) -> dict[str, Any]:
    return {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": list(errors)}}


@pytest.mark.parametrize(
    "authorization", [None, "Token token=wrong", "Bearer test-token", "test-token"]
)
def test_requests_without_the_token_get_401(pd, http, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = http.get(pd.url + "/services", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"error": {"message": "Authentication failed", "code": 2006}}


def test_escalation_policy_is_created_in_pagerdutys_shape(pd, policy, user):
    assert policy["type"] == "escalation_policy"
    assert policy["id"].startswith("P") and len(policy["id"]) == 7
    assert policy["num_loops"] == 2
    [rule] = policy["escalation_rules"]
    assert rule["escalation_delay_in_minutes"] == 10
    assert rule["targets"][0]["id"] == user["id"]
    assert rule["targets"][0]["type"] == "user_reference"
    assert policy["self"] == f"{pd.url}/escalation_policies/{policy['id']}"


def test_escalation_policy_field_rules(pd, api):
    body = {"escalation_policy": {"name": "", "escalation_rules": [], "num_loops": 12}}
    response = api.post(pd.url + "/escalation_policies", json=body, timeout=5)
    assert response.status_code == 400
    assert response.json() == invalid(
        "Name cannot be empty",
        "Escalation rules must contain at least one rule",
        "Num loops must be an integer between 0 and 9",
    )


def test_escalation_policy_target_must_exist(pd, api):
    rule = {"escalation_delay_in_minutes": 5, "targets": [{"id": "PNOUSER", "type": "user"}]}
    body = {"escalation_policy": {"name": "EP", "escalation_rules": [rule]}}
    response = api.post(pd.url + "/escalation_policies", json=body, timeout=5)
    assert response.json() == invalid("Escalation rule 1: target PNOUSER not found")


def test_service_is_created_with_urgency_rule_and_support_hours(pd, api, policy):
    fields = {
        "incident_urgency_rule": {
            "type": "use_support_hours",
            "during_support_hours": {"type": "constant", "urgency": "high"},
            "outside_support_hours": {"type": "constant", "urgency": "low"},
        },
        "support_hours": {
            "type": "fixed_time_per_day",
            "time_zone": "Europe/Stockholm",
            "days_of_week": [1, 2, 3, 4, 5],
            "start_time": "08:00:00",
            "end_time": "18:00:00",
        },
        "scheduled_actions": [
            {
                "type": "urgency_change",
                "to_urgency": "high",
                "at": {"type": "named_time", "name": "support_hours_start"},
            }
        ],
        "auto_resolve_timeout": None,
        "acknowledgement_timeout": 600,
        "alert_grouping_parameters": {"type": "time", "config": {"timeout": 5}},
        "auto_pause_notifications_parameters": {"enabled": True, "timeout": 300},
    }
    response = api.post(pd.url + "/services", json=service_body(policy["id"], **fields), timeout=5)
    assert response.status_code == 201
    service = response.json()["service"]
    assert service["escalation_policy"]["id"] == policy["id"]
    assert service["escalation_policy"]["type"] == "escalation_policy_reference"
    for name, value in fields.items():
        assert service[name] == value  # a null timeout stays null: disabled
    fetched = api.get(f"{pd.url}/services/{service['id']}", timeout=5).json()["service"]
    assert fetched == service
    assert pd.state.services()[0]["id"] == service["id"]


def test_service_name_must_be_unique(pd, api, policy):
    api.post(pd.url + "/services", json=service_body(policy["id"]), timeout=5)
    body = service_body(policy["id"])
    body["service"]["name"] = "checkout api"
    response = api.post(pd.url + "/services", json=body, timeout=5)
    assert (response.status_code, response.json()) == (400, invalid("Name has already been taken"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"escalation_policy": None}, "Escalation policy must be specified"),
        ({"escalation_policy": {"id": "PNOPE"}}, "Escalation policy PNOPE not found"),
        (
            {"incident_urgency_rule": {"type": "constant", "urgency": "medium"}},
            "Incident urgency rule urgency must be one of: high, low, severity_based",
        ),
        (
            {
                "incident_urgency_rule": {
                    "type": "use_support_hours",
                    "during_support_hours": {"type": "constant", "urgency": "high"},
                    "outside_support_hours": {"type": "constant", "urgency": "low"},
                }
            },
            "Support hours must be specified when the urgency rule uses them",
        ),
        (
            {"acknowledgement_timeout": -5},
            "Acknowledgement timeout must be a positive number of seconds or null",
        ),
        ({"status": "maintenance"}, "Status must be active or disabled"),
        (
            {"auto_pause_notifications_parameters": {"enabled": True, "timeout": 42}},
            "Auto pause notifications timeout must be one of 0, 120, 180, 300, 600, 900",
        ),
    ],
)
def test_service_field_rules(pd, api, policy, fields, message):
    body = service_body(policy["id"])
    body["service"].update(fields)
    response = api.post(pd.url + "/services", json=body, timeout=5)
    assert (response.status_code, response.json()) == (400, invalid(message))


def test_unwrapped_body_is_refused(pd, api):
    response = api.post(pd.url + "/services", json={"name": "x"}, timeout=5)
    assert response.json() == invalid("Service must be provided as an object")


def test_service_update_and_delete(pd, api, policy):
    created = api.post(pd.url + "/services", json=service_body(policy["id"]), timeout=5)
    url = f"{pd.url}/services/{created.json()['service']['id']}"
    update = {"service": {"name": "Checkout", "acknowledgement_timeout": 900}}
    updated = api.put(url, json=update, timeout=5)
    assert updated.status_code == 200
    assert updated.json()["service"]["name"] == "Checkout"
    assert updated.json()["service"]["acknowledgement_timeout"] == 900
    assert api.delete(url, timeout=5).status_code == 204
    assert api.get(url, timeout=5).status_code == 404


@pytest.mark.parametrize(
    "path", ["/services/PNOPE", "/escalation_policies/PNOPE", "/vendors/PNOPE", "/users/PNOPE"]
)
def test_unknown_ids_get_404(pd, api, path):
    response = api.get(pd.url + path, timeout=5)
    assert (response.status_code, response.json()) == (
        404,
        {"error": {"message": "Not Found", "code": 2100}},
    )


def test_policy_in_use_cannot_be_deleted(pd, api, policy):
    api.post(pd.url + "/services", json=service_body(policy["id"]), timeout=5)
    response = api.delete(f"{pd.url}/escalation_policies/{policy['id']}", timeout=5)
    assert response.json() == invalid("Escalation policy is in use by one or more services")


def test_apica_integration_gets_a_key_that_routes_events(pd, api, policy):
    service = api.post(pd.url + "/services", json=service_body(policy["id"]), timeout=5)
    service_id = service.json()["service"]["id"]
    apica = api.get(pd.url + "/vendors", params={"query": "apica"}, timeout=5).json()["vendors"]
    body = {
        "integration": {
            "type": "generic_events_api_inbound_integration",
            "name": "Apica-Checkout-API",
            "vendor": {"id": apica[0]["id"], "type": "vendor_reference"},
        }
    }
    response = api.post(f"{pd.url}/services/{service_id}/integrations", json=body, timeout=5)
    assert response.status_code == 201
    integration = response.json()["integration"]
    assert len(integration["integration_key"]) == 32
    assert integration["vendor"]["summary"] == "Apica"
    assert integration["service"]["id"] == service_id

    event = {
        "routing_key": integration["integration_key"],
        "event_action": "trigger",
        "payload": {"summary": "down", "source": "asm", "severity": "error"},
    }
    assert api.post(pd.events_url, json=event, timeout=5).status_code == 202
    assert pd.state.incidents()[0]["service_id"] == service_id

    url = f"{pd.url}/services/{service_id}/integrations/{integration['id']}"
    assert api.get(url, timeout=5).json()["integration"]["name"] == "Apica-Checkout-API"
    assert api.delete(url, timeout=5).status_code == 204
    assert api.get(url, timeout=5).status_code == 404


def test_integration_rules(pd, api, policy):
    service = api.post(pd.url + "/services", json=service_body(policy["id"]), timeout=5)
    url = f"{pd.url}/services/{service.json()['service']['id']}/integrations"
    no_type = api.post(url, json={"integration": {"name": "x"}}, timeout=5)
    assert no_type.status_code == 400
    assert no_type.json()["error"]["errors"][0].startswith("Type must be one of:")
    bad_vendor = {"integration": {"name": "x", "vendor": {"id": "PNOPE", "type": "vendor"}}}
    assert api.post(url, json=bad_vendor, timeout=5).json() == invalid("Vendor PNOPE not found")
    unknown_service = api.post(
        pd.url + "/services/PNOPE/integrations", json={"integration": {}}, timeout=5
    )
    assert unknown_service.status_code == 404


def test_lists_are_wrapped_and_paginated(pd, api):
    for n in range(3):
        pd.state.add_team(name=f"Team {n}")
    first = api.get(pd.url + "/teams", params={"limit": 2, "total": "true"}, timeout=5).json()
    assert [t["name"] for t in first["teams"]] == ["Team 0", "Team 1"]
    assert (first["limit"], first["offset"], first["more"], first["total"]) == (2, 0, True, 3)
    second = api.get(pd.url + "/teams", params={"limit": 2, "offset": 2}, timeout=5).json()
    assert [t["name"] for t in second["teams"]] == ["Team 2"]
    assert (second["more"], second["total"]) == (False, None)


def test_users_are_found_by_email_query(pd, api, user):
    pd.state.add_user(email="bob@example.com", name="Bob")
    found = api.get(pd.url + "/users", params={"query": "ann@example.com"}, timeout=5).json()
    assert [u["id"] for u in found["users"]] == [user["id"]]


def test_schedules_and_teams_are_seedable_and_listed(pd, api):
    schedule = pd.state.add_schedule(name="Checkout Primary", time_zone="Europe/Stockholm")
    found = api.get(pd.url + "/schedules", params={"query": "primary"}, timeout=5).json()
    assert [s["id"] for s in found["schedules"]] == [schedule["id"]]
    created = api.post(pd.url + "/teams", json={"team": {"name": "Payments"}}, timeout=5)
    assert created.status_code == 201
    assert api.get(f"{pd.url}/teams/{created.json()['team']['id']}", timeout=5).status_code == 200
