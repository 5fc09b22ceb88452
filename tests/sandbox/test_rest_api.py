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
    include = {"include[]": "auto_pause_notifications_parameters"}
    url = f"{pd.url}/services/{service['id']}"
    assert api.get(url, params=include, timeout=5).json()["service"] == service
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


# -- the calls the real provider makes (/work/notes/provider-calls.md) ---------------

# What both Go clients send on every request, GET and DELETE included.
GO_CLIENT_HEADERS = {
    **HEADERS,
    "Content-Type": "application/json",
    "User-Agent": "(linux amd64) Terraform/0.11+compatible",
}


@pytest.fixture
def provider(http: requests.Session) -> requests.Session:
    http.headers.update(GO_CLIENT_HEADERS)
    return http


def test_abilities_answer_the_credential_check(pd, provider):
    listed = provider.get(pd.url + "/abilities", timeout=5)
    assert listed.status_code == 200
    assert "teams" in listed.json()["abilities"]
    assert provider.get(pd.url + "/abilities/teams", timeout=5).status_code == 204
    missing = provider.get(pd.url + "/abilities/unicorns", timeout=5)
    assert (missing.status_code, missing.json()) == (
        402,
        {"error": {"message": "Missing Account Ability", "code": 2014}},
    )


def test_every_rest_answer_carries_the_rate_limit_headers(pd, provider):
    answer = provider.get(pd.url + "/abilities", timeout=5)
    assert answer.headers["ratelimit-limit"] == "960"
    assert answer.headers["ratelimit-remaining"] == "959"
    assert answer.headers["ratelimit-reset"] == "60"


def test_rest_rate_limit_answers_429_with_the_reset_the_clients_read(clock, http):
    http.headers.update(GO_CLIENT_HEADERS)
    with PagerDutySandbox(clock=clock, token="test-token", rest_requests_per_minute=2) as pd:
        assert [http.get(pd.url + "/vendors", timeout=5).status_code for _ in range(2)] == [
            200,
            200,
        ]
        clock.advance(15)
        limited = http.get(pd.url + "/vendors", timeout=5)
        assert limited.status_code == 429
        assert limited.json() == {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
        assert limited.headers["ratelimit-remaining"] == "0"
        assert limited.headers["ratelimit-reset"] == "45"
        clock.advance(45)
        assert http.get(pd.url + "/vendors", timeout=5).status_code == 200


def provider_policy_body(user_id: str, **rule: Any) -> dict[str, Any]:
    """`buildEscalationPolicyStruct`: no type, num_loops always, `teams: null` when none."""
    return {
        "escalation_policy": {
            "name": "Checkout On-call",
            "description": "Managed by Pulumi",
            "num_loops": 0,
            "teams": None,
            "escalation_rules": [
                {
                    "escalation_delay_in_minutes": 10,
                    "targets": [{"id": user_id, "type": "user_reference"}],
                    **rule,
                }
            ],
        }
    }


def test_policy_as_the_provider_writes_and_reads_it(pd, provider, user):
    created = provider.post(
        pd.url + "/escalation_policies", json=provider_policy_body(user["id"]), timeout=5
    )
    assert created.status_code == 201
    url = f"{pd.url}/escalation_policies/{created.json()['escalation_policy']['id']}"
    include = {"include[]": "escalation_rule_assignment_strategies"}
    read = provider.get(url, params=include, timeout=5).json()["escalation_policy"]
    assert (read["name"], read["description"], read["num_loops"], read["teams"]) == (
        "Checkout On-call",
        "Managed by Pulumi",
        0,
        [],
    )
    [rule] = read["escalation_rules"]
    assert rule["escalation_rule_assignment_strategy"] == {"type": "assign_to_everyone"}
    assert rule["targets"][0]["id"] == user["id"]
    plain = provider.get(url, timeout=5).json()["escalation_policy"]
    assert "escalation_rule_assignment_strategy" not in plain["escalation_rules"][0]

    body = provider_policy_body(
        user["id"], escalation_rule_assignment_strategy={"type": "round_robin"}
    )
    body["escalation_policy"]["num_loops"] = 3
    assert provider.put(url, json=body, timeout=5).status_code == 200
    read = provider.get(url, params=include, timeout=5).json()["escalation_policy"]
    assert read["num_loops"] == 3
    assert read["escalation_rules"][0]["escalation_rule_assignment_strategy"] == {
        "type": "round_robin"
    }
    deleted = provider.delete(url, timeout=5)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert provider.get(url, timeout=5).status_code == 404


SUPPORT_HOURS = {
    "type": "fixed_time_per_day",
    "time_zone": "Europe/Berlin",
    "start_time": "09:00:00",
    "end_time": "17:00:00",
    "days_of_week": [1, 2, 3, 4, 5],
}


def provider_service_body(policy_id: str, **fields: Any) -> dict[str, Any]:
    """`buildServiceStruct` for a use_support_hours service with no scheduled actions."""
    return {
        "service": {
            "name": "Checkout API",
            "description": "Managed by Pulumi",
            "auto_resolve_timeout": None,
            "acknowledgement_timeout": 1800,
            "escalation_policy": {"id": policy_id, "type": "escalation_policy_reference"},
            "incident_urgency_rule": {
                "type": "use_support_hours",
                "during_support_hours": {"type": "constant", "urgency": "high"},
                "outside_support_hours": {"type": "constant", "urgency": "low"},
            },
            "support_hours": SUPPORT_HOURS,
            "scheduled_actions": [None],
            "auto_pause_notifications_parameters": {"enabled": False, "timeout": None},
            "response_play": None,
            **fields,
        }
    }


AUTO_PAUSE = {"include[]": "auto_pause_notifications_parameters"}


def test_service_as_the_provider_writes_and_reads_it(pd, provider, policy):
    body = provider_service_body(policy["id"])
    created = provider.post(pd.url + "/services", json=body, timeout=5)
    assert created.status_code == 201
    url = f"{pd.url}/services/{created.json()['service']['id']}"
    read = provider.get(url, params=AUTO_PAUSE, timeout=5).json()["service"]
    sent = body["service"]
    for field in (
        "name",
        "description",
        "auto_resolve_timeout",
        "acknowledgement_timeout",
        "incident_urgency_rule",
        "support_hours",
        "auto_pause_notifications_parameters",
        "response_play",
    ):
        assert read[field] == sent[field], field
    assert read["scheduled_actions"] == []  # [null]: "no scheduled actions"
    assert read["escalation_policy"]["id"] == policy["id"]
    assert (read["type"], read["alert_creation"]) == ("service", "create_alerts_and_incidents")
    assert read["created_at"] == "2026-01-05T12:00:00Z"
    assert read["html_url"].endswith(read["id"])
    assert (
        "auto_pause_notifications_parameters" not in provider.get(url, timeout=5).json()["service"]
    )


def test_service_update_to_a_constant_rule_drops_scheduled_actions(pd, provider, policy):
    action = {
        "type": "urgency_change",
        "to_urgency": "high",
        "at": {"type": "named_time", "name": "support_hours_start"},
    }
    body = provider_service_body(policy["id"], scheduled_actions=[action])
    created = provider.post(pd.url + "/services", json=body, timeout=5).json()["service"]
    assert created["scheduled_actions"] == [action]
    update = provider_service_body(
        policy["id"], incident_urgency_rule={"type": "constant", "urgency": "severity_based"}
    )
    for absent in ("support_hours", "scheduled_actions"):  # omitempty: not sent once unset
        del update["service"][absent]
    url = f"{pd.url}/services/{created['id']}"
    answer = provider.put(url, json=update, timeout=5)
    assert answer.status_code == 200
    read = provider.get(url, params=AUTO_PAUSE, timeout=5).json()["service"]
    assert read["incident_urgency_rule"] == {"type": "constant", "urgency": "severity_based"}
    assert read["scheduled_actions"] == []
    deleted = provider.delete(url, timeout=5)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert provider.get(url, timeout=5).status_code == 404


def test_service_zero_timeout_is_stored_as_disabled(pd, provider, policy):
    body = provider_service_body(policy["id"], acknowledgement_timeout=0)
    created = provider.post(pd.url + "/services", json=body, timeout=5).json()["service"]
    assert created["acknowledgement_timeout"] is None


def provider_integration_body(service_id: str, vendor_id: str) -> dict[str, Any]:
    """`buildServiceIntegrationStruct` with `vendor=`: type service_integration."""
    return {
        "integration": {
            "name": "Apica-Checkout-API",
            "type": "service_integration",
            "service": {"id": service_id, "type": "service"},
            "vendor": {"id": vendor_id, "type": "vendor"},
        }
    }


def test_vendor_integration_as_the_provider_writes_reads_and_deletes_it(pd, provider, policy):
    service = provider.post(
        pd.url + "/services", json=provider_service_body(policy["id"]), timeout=5
    ).json()["service"]
    apica = next(v for v in pd.state.directory.list("vendors") if v["name"] == "Apica")
    url = f"{pd.url}/services/{service['id']}/integrations"
    created = provider.post(url, json=provider_integration_body(service["id"], apica["id"]))
    assert created.status_code == 201
    url += "/" + created.json()["integration"]["id"]
    read = provider.get(url, timeout=5).json()["integration"]
    assert read["name"] == "Apica-Checkout-API"
    assert len(read["integration_key"]) == 32
    assert {k: read["vendor"][k] for k in ("id", "type", "summary")} == {
        "id": apica["id"],
        "type": "vendor_reference",
        "summary": "Apica",
    }
    assert read["service"]["id"] == service["id"]
    assert read["type"] == "events_api_v2_inbound_integration"
    assert read["html_url"] == url

    event = {
        "routing_key": read["integration_key"],
        "event_action": "trigger",
        "payload": {"summary": "down", "source": "asm", "severity": "critical"},
    }
    assert provider.post(pd.events_url, json=event, timeout=5).status_code == 202
    assert [i["service_id"] for i in pd.state.incidents()] == [service["id"]]

    deleted = provider.delete(url, timeout=5)
    assert (deleted.status_code, deleted.content) == (204, b"")
    again = provider.delete(url, timeout=5)
    assert (again.status_code, again.json()) == (
        404,
        {"error": {"message": "Not Found", "code": 2100}},
    )


def test_service_integration_type_without_a_vendor_is_refused(pd, provider, policy):
    service = provider.post(
        pd.url + "/services", json=provider_service_body(policy["id"]), timeout=5
    ).json()["service"]
    body = provider_integration_body(service["id"], "x")
    del body["integration"]["vendor"]
    answer = provider.post(f"{pd.url}/services/{service['id']}/integrations", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["errors"][0].startswith("Type must be one of:")


def test_vendors_page_as_get_vendor_reads_them(pd, provider):
    for n in range(120):
        pd.state.add_vendor(f"Vendor {n:03}")
    first = provider.get(pd.url + "/vendors", params={"limit": 100}, timeout=5).json()
    assert (len(first["vendors"]), first["limit"], first["offset"], first["more"]) == (
        100,
        100,
        0,
        True,
    )
    params = {"limit": 100, "offset": first["offset"] + first["limit"]}
    second = provider.get(pd.url + "/vendors", params=params, timeout=5).json()
    assert (len(second["vendors"]), second["more"]) == (25, False)  # 120 + 5 seeded
    names = [v["name"] for v in first["vendors"] + second["vendors"]]
    assert "Apica" in names and len(set(names)) == 125


def test_look_ups_send_query_and_include_teams(pd, provider, user):
    team = pd.state.add_team("Platform", description="SRE")
    body = provider_policy_body(user["id"])
    body["escalation_policy"]["teams"] = [{"id": team["id"], "type": "team_reference"}]
    provider.post(pd.url + "/escalation_policies", json=body, timeout=5)
    pd.state.add_schedule("Platform Primary")
    params = {"include[]": "teams", "query": "checkout on-call"}
    [policy] = provider.get(pd.url + "/escalation_policies", params=params).json()[
        "escalation_policies"
    ]
    assert [(t["id"], t["name"]) for t in policy["teams"]] == [(team["id"], "Platform")]
    # `query` is PagerDuty's case-insensitive substring filter; exactness is the provider's.
    found = provider.get(pd.url + "/teams", params={"query": "plat"}).json()["teams"]
    assert [t["name"] for t in found] == ["Platform"]
    found = provider.get(pd.url + "/schedules", params={"query": "Platform Primary"}).json()
    assert [s["name"] for s in found["schedules"]] == ["Platform Primary"]
    found = provider.get(pd.url + "/users", params={"query": "ann@example.com"}).json()
    assert [u["email"] for u in found["users"]] == ["ann@example.com"]


def test_service_look_up_gets_its_policys_team_objects(pd, provider, policy):
    team = pd.state.add_team("Payments")
    pd.state.directory.get("escalation_policies", policy["id"])["teams"] = [
        pd.state.directory.reference("teams", pd.state.directory.get("teams", team["id"]))
    ]
    provider.post(pd.url + "/services", json=service_body(policy["id"]), timeout=5)
    params = {"include[]": "teams", "limit": 100, "query": "Checkout API"}
    [service] = provider.get(pd.url + "/services", params=params).json()["services"]
    assert [(t["id"], t["name"], t["type"]) for t in service["teams"]] == [
        (team["id"], "Payments", "team")
    ]
    assert service["escalation_policy"]["id"] == policy["id"]
    [plain] = provider.get(pd.url + "/services", params={"query": "checkout"}).json()["services"]
    assert plain["teams"][0]["type"] == "team_reference"


def test_a_service_shows_its_escalation_policys_teams(pd, provider, policy):
    # Service.teams is read-only in PagerDuty: the policy's teams, whatever was sent.
    ops, web = pd.state.add_team("Ops"), pd.state.add_team("Web")
    body = service_body(policy["id"], teams=[{"id": ops["id"], "type": "team_reference"}])
    created = provider.post(pd.url + "/services", json=body, timeout=5).json()["service"]
    assert created["teams"] == []
    policy_body = {
        "escalation_policy": {
            "name": policy["name"],
            "teams": [{"id": web["id"], "type": "team_reference"}],
            "escalation_rules": policy["escalation_rules"],
        }
    }
    assert (
        provider.put(
            f"{pd.url}/escalation_policies/{policy['id']}", json=policy_body, timeout=5
        ).status_code
        == 200
    )
    url = f"{pd.url}/services/{created['id']}"
    read = provider.get(url, timeout=5).json()["service"]
    assert [(t["id"], t["summary"]) for t in read["teams"]] == [(web["id"], "Web")]


def test_references_show_the_current_name_after_a_rename(pd, provider, policy):
    service = provider.post(
        pd.url + "/services", json=service_body(policy["id"]), timeout=5
    ).json()["service"]
    url = f"{pd.url}/services/{service['id']}"
    integration = provider.post(
        url + "/integrations",
        json={
            "integration": {"name": "Apica-Checkout", "type": "events_api_v2_inbound_integration"}
        },
        timeout=5,
    ).json()["integration"]
    renamed = provider.put(url, json=service_body(policy["id"], name="Checkout"), timeout=5)
    assert renamed.json()["service"]["integrations"][0]["summary"] == "Apica-Checkout"
    integration_url = f"{url}/integrations/{integration['id']}"
    provider.put(integration_url, json={"integration": {"name": "Apica-Checkout-2"}}, timeout=5)
    provider.put(
        f"{pd.url}/escalation_policies/{policy['id']}",
        json={"escalation_policy": {**policy, "name": "Checkout Duty"}},
        timeout=5,
    )
    read = provider.get(integration_url, timeout=5).json()["integration"]
    assert read["service"]["summary"] == "Checkout"
    shown = provider.get(url, timeout=5).json()["service"]
    assert [ref["summary"] for ref in shown["integrations"]] == ["Apica-Checkout-2"]
    assert shown["escalation_policy"]["summary"] == "Checkout Duty"
    [listed] = provider.get(pd.url + "/services", timeout=5).json()["services"]
    assert listed["integrations"][0]["summary"] == "Apica-Checkout-2"


def test_alert_grouping_setting_as_the_provider_writes_reads_and_deletes_it(pd, provider):
    service = pd.state.create_service("Checkout API")
    body = {
        "alert_grouping_setting": {
            "name": "Checkout grouping",
            "description": "Managed by Terraform",
            "type": "time",
            "config": {"timeout": 0},  # unset in the program: group until resolved
            "services": [{"id": service["id"]}],
        }
    }
    created = provider.post(pd.url + "/alert_grouping_settings", json=body, timeout=5)
    assert created.status_code == 201
    setting = created.json()["alert_grouping_setting"]
    url = f"{pd.url}/alert_grouping_settings/{setting['id']}"
    read = provider.get(url, timeout=5).json()["alert_grouping_setting"]
    assert {k: read[k] for k in ("name", "description", "type", "config")} == {
        "name": "Checkout grouping",
        "description": "Managed by Terraform",
        "type": "time",
        "config": {"timeout": 0},
    }
    assert [(s["id"], s["type"]) for s in read["services"]] == [
        (service["id"], "service_reference")
    ]

    listed = provider.get(
        pd.url + "/alert_grouping_settings", params={"service_ids[]": service["id"]}
    ).json()
    assert [s["id"] for s in listed["alert_grouping_settings"]] == [setting["id"]]
    assert listed["after"] is None
    other = provider.get(pd.url + "/alert_grouping_settings", params={"service_ids[]": "PX"})
    assert other.json()["alert_grouping_settings"] == []

    body["alert_grouping_setting"].update(
        id=setting["id"], type="intelligent", config={"time_window": 300}
    )
    updated = provider.put(url, json=body, timeout=5)
    assert updated.status_code == 200
    assert updated.json()["alert_grouping_setting"]["config"] == {
        "time_window": 300,
        "iag_fields": ["summary"],
    }
    again = provider.post(pd.url + "/alert_grouping_settings", json=body, timeout=5)
    assert again.json() == invalid(
        f"Service {service['id']} already belongs to alert grouping setting {setting['id']}"
    )
    deleted = provider.delete(url, timeout=5)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert provider.get(url, timeout=5).status_code == 404


def test_alert_grouping_settings_page_by_cursor(pd, provider):
    for n in range(3):
        service = pd.state.create_service(f"Service {n}")
        pd.state.directory.add_alert_grouping_setting("time", {"timeout": 60}, [service["id"]])
    first = provider.get(pd.url + "/alert_grouping_settings", params={"limit": 2}).json()
    assert (len(first["alert_grouping_settings"]), first["limit"]) == (2, 2)
    params = {"limit": 2, "after": first["after"]}
    second = provider.get(pd.url + "/alert_grouping_settings", params=params).json()
    assert (len(second["alert_grouping_settings"]), second["after"]) == (1, None)


def test_grouping_on_the_service_takes_it_out_of_its_setting(pd, provider, policy):
    created = provider.post(
        pd.url + "/services", json=service_body(policy["id"]), timeout=5
    ).json()["service"]
    setting = pd.state.directory.add_alert_grouping_setting(
        "time", {"timeout": 60}, [created["id"]]
    )
    update = {"service": {"alert_grouping_parameters": {"type": None}}}
    answer = provider.put(f"{pd.url}/services/{created['id']}", json=update, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["service"]["alert_grouping_parameters"] == {"type": None}
    assert pd.state.directory.get("alert_grouping_settings", setting["id"]) is None
