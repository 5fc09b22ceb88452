"""Object storage and links between policies, services and integrations."""

from __future__ import annotations

import copy

import pytest

from sandbox.clock import ManualClock
from sandbox.directory import Directory


@pytest.fixture
def directory() -> Directory:
    return Directory(ManualClock(), base_url="http://pd.test")


def test_vendors_are_seeded_with_apica(directory):
    assert "Apica" in [v["name"] for v in directory.list("vendors")]


def test_service_without_policy_gets_the_default_one(directory):
    service = directory.create_service("Checkout")
    policy = directory.get("escalation_policies", service["escalation_policy"]["id"])
    assert policy["name"] == "Default"
    assert [r["id"] for r in policy["services"]] == [service["id"]]
    assert directory.create_service("Search")["escalation_policy"]["id"] == policy["id"]


def test_deleting_a_service_forgets_its_keys_and_policy_link(directory):
    service = directory.create_service("Checkout")
    key = directory.add_integration(service["id"], "Apica")["integration_key"]
    assert directory.integration_by_key(key)[1]["id"] == service["id"]
    directory.delete("services", service["id"])
    assert directory.integration_by_key(key) is None
    assert directory.list("integrations") == []
    assert directory.default_escalation_policy()["services"] == []


def test_moving_a_service_relinks_both_policies(directory):
    service = directory.create_service("Checkout")
    other = directory.create_escalation_policy("Other")
    directory.move_service(service, other["id"])
    assert service["escalation_policy"]["id"] == other["id"]
    assert directory.default_escalation_policy()["services"] == []
    assert [r["id"] for r in other["services"]] == [service["id"]]


def test_rebase_moves_every_url(directory):
    service = directory.create_service("Checkout")
    directory.rebase("http://127.0.0.1:1234")
    assert service["self"] == f"http://127.0.0.1:1234/services/{service['id']}"
    assert service["escalation_policy"]["self"].startswith("http://127.0.0.1:1234/")


def test_unknown_references_raise(directory):
    with pytest.raises(KeyError, match="no service"):
        directory.add_integration("PNOPE", "x")
    with pytest.raises(KeyError, match="no escalation policy"):
        directory.create_service("x", escalation_policy_id="PNOPE")


def test_services_have_no_response_play_by_default(directory):
    assert directory.create_service("Checkout")["response_play"] is None


def test_alert_grouping_setting_holds_service_references(directory):
    checkout, search = directory.create_service("Checkout"), directory.create_service("Search")
    setting = directory.add_alert_grouping_setting(
        "content_based",
        {"aggregate": "all", "fields": ["summary"], "time_window": 300},
        [checkout["id"], search["id"]],
        name="Web",
    )
    assert setting["type"] == "content_based"
    assert [r["type"] for r in setting["services"]] == ["service_reference"] * 2
    assert setting["self"] == f"http://pd.test/alert_grouping_settings/{setting['id']}"
    assert directory.grouping_setting_of(search["id"])["id"] == setting["id"]
    with pytest.raises(KeyError, match="no service PNOPE"):
        directory.add_alert_grouping_setting("time", {"timeout": 0}, ["PNOPE"])


def test_deleting_a_settings_last_service_deletes_the_setting(directory):
    checkout, search = directory.create_service("Checkout"), directory.create_service("Search")
    setting = directory.add_alert_grouping_setting(
        "intelligent", {"time_window": 300}, [checkout["id"], search["id"]]
    )
    directory.delete("services", checkout["id"])
    assert [r["id"] for r in setting["services"]] == [search["id"]]
    directory.delete("services", search["id"])
    assert directory.get("alert_grouping_settings", setting["id"]) is None


def test_detaching_keeps_a_setting_that_still_has_services(directory):
    checkout, search = directory.create_service("Checkout"), directory.create_service("Search")
    setting = directory.add_alert_grouping_setting(
        "intelligent", {"time_window": 300}, [checkout["id"], search["id"]]
    )
    directory.detach_from_grouping(checkout["id"])
    assert directory.grouping_setting_of(checkout["id"]) is None
    assert directory.get("alert_grouping_settings", setting["id"]) is not None
    directory.detach_from_grouping("PNOPE")  # not in any setting: nothing happens


def test_references_are_refreshed_from_the_objects_they_name(directory):
    service = directory.create_service("Checkout")
    integration = copy.deepcopy(directory.add_integration(service["id"], "Apica"))
    service["name"] = service["summary"] = "Checkout API"
    stale = {"id": "PGONE00", "type": "service_reference", "summary": "Gone"}
    answer = directory.refresh_references({**integration, "others": [stale]})
    assert answer["service"]["summary"] == "Checkout API"
    assert answer["service"]["self"] == f"http://pd.test/services/{service['id']}"
    assert answer["others"] == [stale]  # names nothing any more: left as it was
    assert answer["name"] == "Apica"  # the object itself is not a reference
