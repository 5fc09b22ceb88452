"""ASM API answers -> typed checks and results; bad answers are one-line errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.asm_model import AsmCheck, AsmResult, parse_check, parse_checks, parse_results
from bridge.errors import AsmApiError

# The example of the research notes: shape from clients of the real API, values invented.
EXAMPLE_CHECK = {
    "id": 12345, "guid": "e99ff7fb-d614-4518-9de2-9a9cedad6090", "name": "Login page",
    "enabled": True, "severity": "W", "value": 1834, "unit": "ms",
    "timestamp_utc": "2025-05-22T09:39:43", "location": "Stockholm, Sweden",
    "country_code": "SE", "check_type": "url", "check_type_name": "URL",
    "check_type_api": "url", "check_symbol": "N84_M377_C1000_URL_20090227_013715_307",
    "url": "https://example.com/login", "interval_seconds": 300, "threshold_w": 1500,
    "threshold_e": 3000, "target_sla": 99.5, "sla_percent_current_month": 99.91,
    "scheduled_inclusion": None, "scheduled_exclusion": "Mon 02:00-03:00",
    "last_result_details": {"message": "1 url, 148/6797 sent/received bytes."},
    "tags": {"Environment": ["Prod"], "Team": ["Payments", "Checkout"]},
}
EXAMPLE_RESULT = {
    "message": "1 url, 148/6797 sent/received bytes.",
    "identifier": "0bd93e97-4a7c-4f11-9957-1d7dac16b41d", "attempts": 3, "result_code": 0,
    "check_id": 12345, "timestamp_utc": "2025-05-22T09:39:43", "severity": "F",
    "value": 1234, "unit": "ms",
}


def test_a_check_as_the_api_lists_it():
    check = parse_check(EXAMPLE_CHECK, "GET /checks/12345")
    assert check == AsmCheck(
        id=12345, guid="e99ff7fb-d614-4518-9de2-9a9cedad6090", name="Login page",
        enabled=True, severity="W", tags={"Environment": ("Prod",),
                                          "Team": ("Payments", "Checkout")},
        check_type="url", check_type_name="URL", value=1834, unit="ms",
        timestamp=datetime(2025, 5, 22, 9, 39, 43, tzinfo=UTC),
        message="1 url, 148/6797 sent/received bytes.", location="Stockholm, Sweden",
        url="https://example.com/login", interval_seconds=300, threshold_w=1500,
        threshold_e=3000, target_sla=99.5, sla_percent_current_month=99.91,
        scheduled_inclusion=None, scheduled_exclusion="Mon 02:00-03:00",
    )


def test_a_check_without_results_or_tags():
    check = parse_check({"id": 1, "guid": "g", "name": "New", "enabled": False,
                         "severity": None, "tags": None, "last_result_details": None,
                         "timestamp_utc": None}, "GET /checks/1")
    assert (check.severity, check.tags, check.message, check.timestamp) == ("U", {}, None, None)


def test_a_tag_without_values_has_an_empty_tuple():
    check = parse_check({**EXAMPLE_CHECK, "tags": {"Tier": None}}, "x")
    assert check.tags == {"Tier": ()}


def test_fields_the_api_adds_are_ignored():
    check = parse_check({**EXAMPLE_CHECK, "extended": {"steps": 3}}, "x")
    assert check.id == 12345


def test_a_time_with_a_zone_is_converted_to_utc():
    check = parse_check({**EXAMPLE_CHECK, "timestamp_utc": "2025-05-22T11:39:43+02:00"}, "x")
    assert check.timestamp == datetime(2025, 5, 22, 9, 39, 43, tzinfo=UTC)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([EXAMPLE_CHECK, {**EXAMPLE_CHECK, "severity": "X"}],
         "GET /checks: unexpected answer: item 1: severity: Input should be 'F', 'E', 'W', "
         "'I' or 'U' (got 'X')"),
        ({"checks": []}, "GET /checks: unexpected answer: Input should be a valid list"),
        ([{"id": 1}],
         "GET /checks: unexpected answer: item 0: guid: Field required (and 2 more)"),
        ([{**EXAMPLE_CHECK, "tags": {"Team": "Payments"}}],
         "GET /checks: unexpected answer: item 0: tags: Team: Input should be a valid tuple "
         "(got 'Payments')"),
    ],
)
def test_an_answer_of_the_wrong_shape_is_one_line(data, message):
    with pytest.raises(AsmApiError) as caught:
        parse_checks(data, "GET /checks")
    assert str(caught.value) == message


def test_results_at_detail_level_1():
    (result,) = parse_results([EXAMPLE_RESULT], "GET /checks/12345/results")
    assert result == AsmResult(
        check_id=12345, severity="F", timestamp=datetime(2025, 5, 22, 9, 39, 43, tzinfo=UTC),
        value=1234, unit="ms", message="1 url, 148/6797 sent/received bytes.",
        result_id="0bd93e97-4a7c-4f11-9957-1d7dac16b41d", attempts=3, result_code=0,
    )
    # The webhook's %RESULT_GUID% is the same id without dashes.
    assert result.result_guid == "0bd93e974a7c4f1199571d7dac16b41d"


def test_results_at_detail_level_0_have_no_message_or_id():
    detail_0 = {k: EXAMPLE_RESULT[k]
                for k in ("check_id", "timestamp_utc", "severity", "value", "unit")}
    (result,) = parse_results([detail_0], "x")
    assert (result.message, result.result_id, result.result_guid) == (None, None, None)


def test_a_result_needs_its_time():
    with pytest.raises(AsmApiError, match=r"^x: unexpected answer: item 0: timestamp_utc: "
                                          r"Field required$"):
        parse_results([{"check_id": 1, "severity": "E"}], "x")
