"""The ASM sandbox's control API, as the demo and other processes drive it."""

from __future__ import annotations

import pytest
import requests

from sandbox.asm_api import AsmSandbox
from sandbox.asm_control import apply_asm_seed
from tests.conftest import ASM_TICKET

RESULT_ID = "0bd93e97-4a7c-4f11-9957-1d7dac16b41d"


def call(asm: AsmSandbox, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(method, asm.url + path, json=body, timeout=5)


def test_seed_checks_with_their_last_result(asm):
    seed = {"checks": [
        {"name": "Login", "id": 101, "tags": {"Team": ["Checkout"]},
         "result": {"severity": "F", "value": 9000, "message": "down",
                    "at": "2026-03-02T08:00:00+00:00"}},
        {"name": "Search", "id": 102, "enabled": False},
    ]}
    answer = call(asm, "POST", "/sandbox/seed", seed)
    assert answer.status_code == 201
    assert [(c["id"], c["severity"], c["timestamp_utc"]) for c in answer.json()["checks"]] == [
        (101, "F", "2026-03-02T08:00:00"), (102, "U", None)]
    listed = call(asm, "GET", "/sandbox/checks").json()["checks"]
    assert listed == asm.state.checks()


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ({"services": []}, 'a seed is {"checks": [...]}'),
        ({"checks": [{"name": "A", "id": 1}, {"name": "B", "id": 1}]},
         "check id 1 is already used"),
        ({"checks": [{"name": "A", "result": {"severity": "X"}}]},
         "severity 'X' is not one of I, W, E, F"),
        ({"checks": [{"id": 3}]}, "every check needs a name"),
        ({"checks": [{"name": "A", "result": {"severity": "E", "at": "2026-03-02T08:00:00"}}]},
         "times must be timezone-aware"),
    ],
)
def test_a_bad_seed_adds_nothing(asm, seed, message):
    answer = call(asm, "POST", "/sandbox/seed", seed)
    assert (answer.status_code, answer.json()) == (400, {"error": f"bad request: {message}"})
    assert asm.state.checks() == []


def test_a_seed_may_not_reuse_an_existing_id(asm):
    asm.state.add_check("Existing", id=1)
    with pytest.raises(ValueError, match="check id 1 is already used"):
        apply_asm_seed(asm.state,
                       {"checks": [{"name": "Other", "id": 2}, {"name": "Dup", "id": 1}]})
    assert [c["id"] for c in asm.state.checks()] == [1]


def test_add_change_set_severity_and_remove_a_check(asm):
    created = call(asm, "POST", "/sandbox/checks", {"name": "Login", "id": 7})
    assert (created.status_code, created.json()["severity"]) == (201, "U")
    changed = call(asm, "PATCH", "/sandbox/checks/7",
                   {"enabled": False, "scheduled_exclusion": "Sat 00:00-06:00"})
    assert (changed.json()["enabled"], changed.json()["scheduled_exclusion"]) == (
        False, "Sat 00:00-06:00")
    result = call(asm, "POST", "/sandbox/checks/7/results",
                  {"severity": "E", "value": 5000, "unit": "ms", "message": "slow",
                   "result_id": RESULT_ID, "threshold_e": 3000})
    assert (result.status_code, result.json()["identifier"]) == (201, RESULT_ID)
    assert asm.state.check(7)["threshold_e"] == 3000
    assert call(asm, "DELETE", "/sandbox/checks/7").status_code == 204
    assert asm.state.checks() == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("PATCH", "/sandbox/checks/9", {"enabled": False}, 404, "no check with id 9"),
        ("POST", "/sandbox/checks/9/results", {"severity": "E"}, 404, "no check with id 9"),
        ("PATCH", "/sandbox/checks/1", {"guid": "x"}, 400, "bad request: cannot change guid; "
         "changeable: enabled, interval_seconds, location, name, scheduled_exclusion, "
         "scheduled_inclusion, tags, target_sla, threshold_e, threshold_w, url, "
         "visible_to_user"),
        ("PATCH", "/sandbox/checks/1", [1], 400, "bad request: expected a JSON object"),
        ("POST", "/sandbox/checks", {"name": "X", "colour": "red"}, 400,
         "bad request: AsmState.add_check() got an unexpected keyword argument 'colour'"),
    ],
)
def test_control_errors(asm, method, path, body, status, error):
    asm.state.add_check("Login", id=1)
    answer = call(asm, method, path, body)
    assert (answer.status_code, answer.json()) == (status, {"error": error})


def test_requests_and_faults_over_http(asm):
    assert call(asm, "POST", "/sandbox/faults", {"action": "fail", "status": 502}).json() == {
        "latency": 0.0, "rules": [{"status": 502, "remaining": 1, "until": None}]}
    failed = requests.get(asm.api_url + "/checks", params={"auth_ticket": ASM_TICKET}, timeout=5)
    assert failed.status_code == 502
    logged = call(asm, "GET", "/sandbox/requests").json()["requests"]
    assert [(r["path"], r["status"], r["query"]) for r in logged] == [
        ("/v3/checks", 502, [["auth_ticket", "...06CC"]])]
