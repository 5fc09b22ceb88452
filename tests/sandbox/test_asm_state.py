"""The ASM sandbox's account: checks, results and what a check shows of its last result."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sandbox.asm_state import AsmState, NoSuchCheck
from sandbox.clock import ManualClock
from tests.conftest import ASM_START

GUID = "e99ff7fb-d614-4518-9de2-9a9cedad6090"
RESULT_ID = "0bd93e97-4a7c-4f11-9957-1d7dac16b41d"


@pytest.fixture
def state(asm_clock: ManualClock) -> AsmState:
    return AsmState(asm_clock)


def test_a_new_check_in_the_apis_shape(state):
    check = state.add_check("Login page", id=12345, guid=GUID, tags={"Team": ["Payments"]},
                            threshold_w=1500, threshold_e=3000)
    assert check == {
        "id": 12345, "guid": GUID, "name": "Login page", "enabled": True, "severity": "U",
        "value": None, "unit": None, "timestamp_utc": None, "location": "Stockholm, Sweden",
        "country_code": "SE", "check_type": "url", "check_type_name": "URL",
        "check_type_api": "url", "check_symbol": "N12345_URL",
        "url": "https://www.example.com/", "interval_seconds": 300, "threshold_w": 1500,
        "threshold_e": 3000, "target_sla": 99.5, "sla_percent_current_month": None,
        "scheduled_inclusion": None, "scheduled_exclusion": None, "last_result_details": None,
        "tags": {"Team": ["Payments"]},
    }
    assert state.checks() == [check]


def test_ids_count_up_and_guids_are_generated(state):
    first, second = state.add_check("A"), state.add_check("B")
    assert (first["id"], second["id"]) == (1001, 1002)
    assert first["guid"] != second["guid"] and len(first["guid"]) == 36


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"id": 5}, "check id 5 is already used"),
        ({"guid": GUID}, f"guid '{GUID}' is already used"),
        ({"guid": GUID.upper()}, f"guid '{GUID.upper()}' is not a lower-case dashed GUID"),
        ({"id": -1}, "id must be a non-negative integer (got -1)"),
        ({"tags": {"Team": "Payments"}}, "tag 'Team': values must be a list of non-empty texts"),
        ({"tags": {"": ["x"]}}, "tag key '' must be non-empty text"),
        ({"enabled": "yes"}, "enabled must be true or false (got 'yes')"),
        ({"threshold_w": "fast"}, "threshold_w must be a number or null (got 'fast')"),
    ],
)
def test_bad_checks_are_refused(state, arguments, message):
    state.add_check("Existing", id=5, guid=GUID)
    with pytest.raises(ValueError) as caught:
        state.add_check("New", **arguments)
    assert str(caught.value) == message
    assert len(state.checks()) == 1


def test_a_result_sets_the_checks_severity_value_and_message(state):
    state.add_check("Login", id=1, threshold_w=1500)
    result = state.set_severity(1, "E", value=4637, message="HTTP 500", result_id=RESULT_ID,
                                threshold_e=3000)
    assert result == {
        "message": "HTTP 500", "identifier": RESULT_ID, "attempts": 1, "result_code": 0,
        "check_id": 1, "timestamp_utc": "2026-03-02T09:00:00", "severity": "E",
        "value": 4637, "unit": "ms",
    }
    check = state.check(1)
    assert {k: check[k] for k in ("severity", "value", "unit", "timestamp_utc",
                                  "last_result_details", "threshold_w", "threshold_e")} == {
        "severity": "E", "value": 4637, "unit": "ms", "timestamp_utc": "2026-03-02T09:00:00",
        "last_result_details": {"message": "HTTP 500"}, "threshold_w": 1500,
        "threshold_e": 3000}


def test_an_older_result_does_not_change_what_the_check_shows(state, asm_clock):
    state.add_check("Login", id=1)
    state.set_severity(1, "F")
    state.set_severity(1, "I", at=ASM_START - timedelta(hours=1))
    assert state.check(1)["severity"] == "F"
    assert [r["severity"] for r in state.results(1)] == ["I", "F"]  # oldest first


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"severity": "U"}, "severity 'U' is not one of I, W, E, F"),
        ({"severity": "E", "result_id": "ABC"}, "result_id 'ABC' is not a lower-case dashed GUID"),
        ({"severity": "E", "value": "1 s"}, "value must be a number or null (got '1 s')"),
    ],
)
def test_bad_results_are_refused(state, arguments, message):
    state.add_check("Login", id=1)
    with pytest.raises(ValueError) as caught:
        state.set_severity(1, **arguments)
    assert str(caught.value) == message
    assert state.results(1) == []


def test_update_and_remove_a_check(state):
    state.add_check("Login", id=1)
    updated = state.update_check(1, enabled=False, tags={"Team": ["A", "B"]},
                                 scheduled_exclusion="Sun 01:00-02:00")
    assert (updated["enabled"], updated["tags"], updated["scheduled_exclusion"]) == (
        False, {"Team": ["A", "B"]}, "Sun 01:00-02:00")
    with pytest.raises(ValueError, match=r"^cannot change guid, id; changeable: enabled, "):
        state.update_check(1, id=2, guid=GUID)
    with pytest.raises(ValueError, match=r"^enabled must be true or false"):
        state.update_check(1, enabled=None)
    assert state.check(1)["enabled"] is False  # nothing of a refused change was kept
    state.remove_check(1)
    assert state.checks() == []
    with pytest.raises(NoSuchCheck, match="no check with id 1"):
        state.set_severity(1, "E")


def test_checks_only_the_customer_context_sees(state):
    state.add_check("Mine", id=1)
    state.add_check("Account-wide", id=2, visible_to_user=False)
    assert [c["id"] for c in state.checks(customer_context=False)] == [1]
    assert state.check(2, customer_context=False) is None
    state.update_check(2, visible_to_user=True)
    assert [c["id"] for c in state.checks(customer_context=False)] == [1, 2]
