"""The /sandbox view and fault control, as other processes use them."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import change, trigger


def test_incidents_json_can_be_filtered_by_status(pd, http, key):
    http.post(pd.events_url, json=trigger(key, dedup_key="a"), timeout=5)
    http.post(pd.events_url, json=trigger(key, dedup_key="b"), timeout=5)
    resolve = {"routing_key": key, "event_action": "resolve", "dedup_key": "a"}
    http.post(pd.events_url, json=resolve, timeout=5)
    everything = http.get(pd.url + "/sandbox/incidents", timeout=5).json()["incidents"]
    open_only = http.get(
        pd.url + "/sandbox/incidents", params={"status": "triggered"}, timeout=5
    ).json()["incidents"]
    assert [i["incident_key"] for i in everything] == ["a", "b"]
    assert [i["incident_key"] for i in open_only] == ["b"]


def test_events_view_never_shows_a_routing_key_in_full(pd, http, key):
    http.post(pd.events_url, json=trigger(key), timeout=5)
    [event] = http.get(pd.url + "/sandbox/events", timeout=5).json()["events"]
    assert event["status"] == 202
    assert event["body"]["routing_key"] == "..." + key[-4:]
    assert pd.state.events()[0]["body"]["routing_key"] == key


def test_faults_can_be_set_and_cleared_over_http(pd, http, key):
    answer = http.post(
        pd.url + "/sandbox/faults", json={"action": "fail", "status": 502, "count": 1}, timeout=5
    )
    assert answer.json()["rules"] == [{"status": 502, "remaining": 1, "until": None}]
    assert http.post(pd.events_url, json=trigger(key), timeout=5).status_code == 502
    http.post(pd.url + "/sandbox/faults", json={"action": "latency", "seconds": 0.05}, timeout=5)
    assert http.get(pd.url + "/sandbox/faults", timeout=5).json()["latency"] == 0.05
    http.post(pd.url + "/sandbox/faults", json={"action": "clear"}, timeout=5)
    assert http.get(pd.url + "/sandbox/faults", timeout=5).json() == {"latency": 0.0, "rules": []}


@pytest.mark.parametrize(
    "command", [{"action": "explode"}, {"action": "fail", "status": 200}, [1, 2], {"x": 1}]
)
def test_bad_fault_commands_get_400(pd, http, command):
    response = http.post(pd.url + "/sandbox/faults", json=command, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"].startswith("bad fault command:")


def test_seed_over_http(pd, http):
    seed = {"users": [{"email": "ann@example.com", "name": "Ann"}], "teams": [{"name": "Ops"}]}
    answer = http.post(pd.url + "/sandbox/seed", json=seed, timeout=5)
    assert answer.status_code == 201
    assert answer.json()["users"][0]["email"] == "ann@example.com"
    assert [t["name"] for t in pd.state.directory.list("teams")] == ["Ops"]
    refused = http.post(pd.url + "/sandbox/seed", json={"users": [{}]}, timeout=5)
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": "bad seed: users[0] needs a name"},
    )


def test_change_events_are_shown_by_service_and_keys_shortened(pd, http, key, service):
    http.post(pd.url + "/v2/change/enqueue", json=change(key), timeout=5)
    other = pd.state.create_service("Search")
    other_key = pd.state.add_integration(other["id"])["integration_key"]
    http.post(pd.url + "/v2/change/enqueue", json=change(other_key), timeout=5)
    found = http.get(pd.url + "/sandbox/change_events", params={"service_id": service["id"]},
                     timeout=5).json()["change_events"]
    assert [e["service_name"] for e in found] == ["Checkout API"]
    seen = http.get(pd.url + "/sandbox/change_requests", timeout=5).json()["change_requests"]
    assert [r["body"]["routing_key"] for r in seen] == ["..." + key[-4:], "..." + other_key[-4:]]
    assert key not in str(seen)
