"""The fake ASM API v3 over HTTP: auth, strict parameters, filters, results, faults."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
import requests

from sandbox.asm_api import AsmSandbox
from tests.conftest import ASM_PASSWORD, ASM_START, ASM_TICKET, ASM_USER

TICKET = {"auth_ticket": ASM_TICKET}


@pytest.fixture
def seeded(asm: AsmSandbox) -> AsmSandbox:
    state = asm.state
    state.add_check("Login", id=101, tags={"Team": ["Checkout"], "Env": ["Prod"]})
    state.add_check("Search", id=102, tags={"Team": ["Search"], "Env": ["Dev"]})
    state.add_check("Old", id=103, enabled=False, tags={"Owner": ["Checkout"]})
    state.set_severity(101, "E", value=4637, at=ASM_START)
    state.set_severity(102, "W", value=1800, at=ASM_START)
    return asm


def get(asm: AsmSandbox, path: str, params: Any = None, **kwargs: Any) -> requests.Response:
    return requests.get(asm.api_url + path, params=params, timeout=5, **kwargs)


def ids(response: requests.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [check["id"] for check in response.json()]


# -- auth ---------------------------------------------------------------------------------


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


DENIED = {"Message": "Authorization has been denied for this request."}


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({}, {}),
        ({"auth_ticket": "00000000-0000-0000-0000-000000000000"}, {}),
        ({}, _basic(ASM_USER, "wrong")),
        ({}, _basic("nobody", ASM_PASSWORD)),
        ({}, {"Authorization": "Basic !!!"}),
        ({}, {"Authorization": f"Bearer {ASM_TICKET}"}),
        # A ticket that is there must be right, whatever else comes along.
        ({"auth_ticket": "00000000-0000-0000-0000-000000000000"}, _basic(ASM_USER, ASM_PASSWORD)),
        ([("auth_ticket", ASM_TICKET), ("auth_ticket", ASM_TICKET)], {}),
    ],
)
def test_requests_without_a_valid_credential_get_401(seeded, params, headers):
    answer = get(seeded, "/checks", params, headers=headers)
    assert (answer.status_code, answer.json()) == (401, DENIED)


@pytest.mark.parametrize(
    ("params", "headers", "who"),
    [
        (TICKET, {}, "ticket ...06CC"),
        ({"AUTH_TICKET": ASM_TICKET.lower()}, {}, "ticket ...06cc"),
        ({}, _basic(ASM_USER, ASM_PASSWORD), "basic reader"),
    ],
)
def test_a_ticket_or_basic_credentials(seeded, params, headers, who):
    assert ids(get(seeded, "/checks", params, headers=headers)) == [101, 102, 103]
    assert seeded.state.requests()[-1]["auth"] == who


def test_the_request_log_never_holds_the_ticket(seeded):
    get(seeded, "/checks", {"enabled": "true", **TICKET})
    assert seeded.state.requests() == [{
        "method": "GET", "path": "/v3/checks", "query": [["enabled", "true"],
                                                          ["auth_ticket", "...06CC"]],
        "auth": "ticket ...06CC", "status": 200}]


# -- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/checks", {"enable": "true"}, "Unknown query parameter(s): enable."),
        ("/checks", {"enabled": "yes"}, "enabled must be true or false, not 'yes'."),
        ("/checks", {"severity": "EX"}, "severity must be letters of I, W, E and F, not 'EX'."),
        ("/checks", {"severity": "ef"}, "severity must be letters of I, W, E and F, not 'ef'."),
        ("/checks", {"include_tag_op": "xor"}, "include_tag_op must be 'or' or 'and', not 'xor'."),
        ("/checks", {"customer_context": "true"}, "customer_context must be 0 or 1, not 'true'."),
        ("/checks", [("enabled", "true"), ("enabled", "false")],
         "The parameter 'enabled' is given 2 times."),
        ("/checks", {"include_tag": ".4568~Prod"},
         "Tag ids (a leading '.') are not modelled by the ASM sandbox."),
        ("/checks", {"include_tag": "Team~"}, "Invalid tag filter 'Team~'."),
        ("/checks", {"include_tag": "~"}, "Invalid tag filter '~'."),
        ("/checks/101", {"detail_level": "1"}, "Unknown query parameter(s): detail_level."),
        ("/checks/101/results", {}, "Give mostrecent, or fromUtc and toUtc, or "
                                    "fromMillisecondsUtc and toMillisecondsUtc."),
        ("/checks/101/results", {"mostrecent": "1", "fromUtc": "2026-03-02T09:00:00",
                                 "toUtc": "2026-03-02T10:00:00"},
         "Give mostrecent, or fromUtc and toUtc, or fromMillisecondsUtc and toMillisecondsUtc."),
        ("/checks/101/results", {"mostrecent": "0"}, "mostrecent must be 1 to 1000."),
        ("/checks/101/results", {"mostrecent": "-1"}, "mostrecent must be a whole number, not "
                                                      "'-1'."),
        ("/checks/101/results", {"mostrecent": "1", "detail_level": "2"},
         "detail_level must be 0 or 1, not '2'."),
        ("/checks/101/results", {"fromUtc": "2026-03-02T09:00:00"}, "toUtc is missing."),
        ("/checks/101/results", {"fromUtc": "2026-03-02 09:00:00", "toUtc": "2026-03-02T10:00:00"},
         "fromUtc must look like 2013-08-20T13:32:08, not '2026-03-02 09:00:00'."),
        ("/checks/101/results", {"fromUtc": "2026-03-02T10:00:00", "toUtc": "2026-03-02T09:00:00"},
         "The start of the range is after its end."),
        ("/checks/101/results", {"fromMillisecondsUtc": "1e3", "toMillisecondsUtc": "2000"},
         "fromMillisecondsUtc must be a whole number, not '1e3'."),
        ("/checks/101/results", {"fromMillisecondsUtc": "9" * 20, "toMillisecondsUtc": "2000"},
         "fromMillisecondsUtc is out of range."),
    ],
)
def test_bad_parameters_get_400(seeded, path, params, message):
    params = [*(params.items() if isinstance(params, dict) else params), *TICKET.items()]
    answer = get(seeded, path, params)
    assert (answer.status_code, answer.json()) == (400, {"Message": message})


def test_paths_and_parameter_names_ignore_case(seeded):
    assert ids(get(seeded, "/Checks", {"Enabled": "true", **TICKET})) == [101, 102]
    answer = get(seeded, "/Checks/101/Results", {"mostRecent": "1", **TICKET})
    assert [r["severity"] for r in answer.json()] == ["E"]


# -- GET /checks filters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"enabled": "true"}, [101, 102]),
        ({"enabled": "False"}, [103]),
        ({"severity": "EF"}, [101]),
        ({"severity": "IWEF"}, [101, 102]),  # a check without results (U) matches none
        ({"include_tag": "Team"}, [101, 102]),
        ({"include_tag": "team~checkout"}, [101]),
        ({"include_tag": "Team~Checkout;Search"}, [101, 102]),
        ({"include_tag": "~Checkout"}, [101, 103]),
        ([("include_tag", "Team"), ("include_tag", "Env~Prod")], [101, 102]),
        ([("include_tag", "Team"), ("include_tag", "Env~Prod"), ("include_tag_op", "and")],
         [101]),
        ({"exclude_tag": "Env~Dev"}, [101, 103]),
        ({"include_tag": "Team", "exclude_tag": "~Checkout", "enabled": "true"}, [102]),
    ],
)
def test_list_filters(seeded, params, expected):
    params = [*(params.items() if isinstance(params, dict) else params), *TICKET.items()]
    assert ids(get(seeded, "/checks", params)) == expected


def test_customer_context_shows_checks_the_user_does_not_see(seeded):
    seeded.state.add_check("Account-wide", id=104, visible_to_user=False)
    assert ids(get(seeded, "/checks", TICKET)) == [101, 102, 103]
    assert ids(get(seeded, "/checks", {"customer_context": "1", **TICKET})) == [101, 102, 103, 104]
    assert get(seeded, "/checks/104", TICKET).status_code == 404


# -- one check, results ---------------------------------------------------------------------


def test_one_check(seeded):
    answer = get(seeded, "/checks/101", TICKET)
    assert answer.status_code == 200
    assert answer.json() == seeded.state.check(101)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/checks/999", "Check 999 was not found."),
        ("/checks/999/results?mostrecent=1", "Check 999 was not found."),
        ("/checks/abc", "No HTTP resource was found that matches the request URI "
                        "'/v3/checks/abc'."),
        ("/alerts", "No HTTP resource was found that matches the request URI '/v3/alerts'."),
    ],
)
def test_not_found(seeded, path, message):
    answer = requests.get(seeded.api_url + path, params=TICKET, timeout=5)
    assert (answer.status_code, answer.json()) == (404, {"Message": message})
    assert ASM_TICKET not in answer.text


def test_most_recent_results_newest_first_at_both_detail_levels(seeded):
    later = seeded.state.set_severity(101, "I", value=300, message="OK", at=ASM_START
                                      + timedelta(minutes=5))
    detail_0 = get(seeded, "/checks/101/results", {"mostrecent": "5", **TICKET}).json()
    assert detail_0 == [
        {"check_id": 101, "timestamp_utc": "2026-03-02T09:05:00", "severity": "I",
         "value": 300, "unit": "ms"},
        {"check_id": 101, "timestamp_utc": "2026-03-02T09:00:00", "severity": "E",
         "value": 4637, "unit": "ms"},
    ]
    detail_1 = get(seeded, "/checks/101/results",
                   {"mostrecent": "1", "detail_level": "1", **TICKET}).json()
    assert detail_1 == [later]
    assert set(later) == {"message", "identifier", "attempts", "result_code", "check_id",
                          "timestamp_utc", "severity", "value", "unit"}


def test_results_between_two_times_both_ends_included(seeded):
    for minute in (1, 2, 3):
        seeded.state.set_severity(101, "W", value=minute, at=ASM_START + timedelta(minutes=minute))
    by_text = get(seeded, "/checks/101/results", {
        "fromUtc": "2026-03-02T09:01:00", "toUtc": "2026-03-02T09:02:00", **TICKET}).json()
    start_ms = int((ASM_START + timedelta(minutes=1)).timestamp() * 1000)
    by_ms = get(seeded, "/checks/101/results", {
        "fromMillisecondsUtc": str(start_ms), "toMillisecondsUtc": str(start_ms + 60_000),
        **TICKET}).json()
    assert [r["value"] for r in by_text] == [r["value"] for r in by_ms] == [1, 2]


# -- faults -----------------------------------------------------------------------------------


def test_faults_answer_before_anything_else(seeded):
    seeded.faults.fail(status=503, count=1)
    seeded.faults.rate_limit(count=1, retry_after=3)
    first = get(seeded, "/checks")  # no credential: a gateway error comes first
    assert (first.status_code, first.json()) == (503, {"Message": "An error has occurred."})
    second = get(seeded, "/checks", TICKET)
    assert (second.status_code, second.json(), second.headers["Retry-After"]) == (
        429, {"Message": "Too many requests."}, "3")
    assert ids(get(seeded, "/checks", TICKET)) == [101, 102, 103]


def test_latency_delays_the_answer_but_keeps_it(seeded):
    seeded.faults.latency(0.01)
    assert ids(get(seeded, "/checks", TICKET)) == [101, 102, 103]


# -- the server -------------------------------------------------------------------------------


def test_start_stop_and_urls():
    asm = AsmSandbox()
    with pytest.raises(RuntimeError, match=r"^the ASM sandbox is not running"):
        _ = asm.url
    with asm:
        assert asm.api_url == f"http://127.0.0.1:{asm.port}/v3"
        assert len(asm.auth_ticket) == 36 and asm.auth_ticket == asm.auth_ticket.upper()
        answer = requests.get(asm.api_url + "/checks", params={"auth_ticket": asm.auth_ticket},
                              timeout=5)
        assert answer.json() == []
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{asm.port}/v3/checks", timeout=5)
