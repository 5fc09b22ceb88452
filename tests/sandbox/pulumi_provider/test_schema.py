"""Check on a schema: defaults, autonaming, types, required properties, Terraform's validators."""

from __future__ import annotations

import re

from sandbox.pulumi_provider.escalation_policy import SCHEMA as POLICY
from sandbox.pulumi_provider.properties import UNKNOWN, Secret
from sandbox.pulumi_provider.schema import (
    Failure,
    allowed_name,
    autoname,
    check_values,
    int_at_least,
    int_between,
    int_in,
    none_of,
    one_of,
    with_defaults,
)
from sandbox.pulumi_provider.service import SCHEMA as SERVICE

RULE = {"escalationDelayInMinutes": 10, "targets": [{"id": "PUSER01"}]}


def test_defaults_fill_what_the_program_left_out_at_every_depth():
    filled = with_defaults(POLICY, {"rules": [RULE], "description": None})
    assert filled["description"] == "Managed by Pulumi"
    assert filled["rules"][0]["targets"] == [{"id": "PUSER01", "type": "user_reference"}]
    service = with_defaults(SERVICE, {"escalationPolicy": "P1", "acknowledgementTimeout": "null"})
    assert (service["autoResolveTimeout"], service["acknowledgementTimeout"]) == ("14400", "null")
    # Secrets and unknowns are values the program gave: no default over them.
    assert with_defaults(POLICY, {"description": Secret("d")})["description"] == Secret("d")
    assert with_defaults(POLICY, {"description": UNKNOWN})["description"] is UNKNOWN


def test_autoname_is_stable_per_seed_and_keeps_a_given_name():
    first = autoname("oncall", b"seed-1", None)
    assert re.fullmatch(r"oncall-[0-9a-f]{7}", first)
    assert autoname("oncall", b"seed-1", None) == first
    assert autoname("oncall", b"seed-2", None) != first
    assert autoname("oncall", b"seed-2", "Kept Name") == "Kept Name"
    assert len(autoname("x" * 300, b"s", None)) == 255


def test_check_values_reports_paths_and_terraforms_wording():
    failures = check_values(
        POLICY,
        with_defaults(
            POLICY,
            {
                "name": "Ops/Platform",
                "numLoops": 12,
                "rules": [
                    {"escalationDelayInMinutes": 0, "targets": [{"type": "team_reference"}]},
                    {"escalationDelayInMinutes": "ten", "targets": UNKNOWN},
                ],
            },
        ),
    )
    assert failures == [
        Failure(
            "name",
            "Name can not be blank, nor contain the characters '\\', '/', '&', '<', '>', or any "
            "non-printable characters. Trailing white spaces are not allowed either.",
        ),
        Failure("numLoops", "expected num_loops to be in the range (0 - 9), got 12"),
        Failure(
            "rules[0].escalationDelayInMinutes",
            "expected escalation_delay_in_minutes to be at least (1), got 0",
        ),
        Failure(
            "rules[0].targets[0].type",
            '"team_reference" is an invalid value. Must be one of '
            '[]string{"user_reference", "schedule_reference"}',
        ),
        Failure("rules[0].targets[0].id", "Missing required property 'id'"),
        Failure(
            "rules[1].escalationDelayInMinutes",
            "rules[1].escalationDelayInMinutes must be an integer, not a string",
        ),
    ]


def test_required_properties_and_list_bounds():
    assert check_values(POLICY, {}) == [Failure("rules", "Missing required property 'rules'")]
    hours = {"daysOfWeeks": [1, 2, 3, 4, 5, 6, 7, 1], "timeZone": "Mars/Olympus"}
    problems = {
        f.path: f.reason
        for f in check_values(SERVICE, {"escalationPolicy": "P", "supportHours": hours})
    }
    assert problems == {
        "supportHours.timeZone": '"Mars/Olympus" is a not valid input. Please refer to the list '
        "of allowed Time Zone values at https://developer.pagerduty.com/docs/"
        "1afe25e9c94cb-types#time-zone",
        "supportHours.daysOfWeeks": "supportHours.daysOfWeeks must have at most 7 item(s)",
    }


def test_validators():
    assert one_of("a", "b")("a", "x") == []
    assert int_between(0, 9)(9, "n") == []
    assert int_at_least(1)(1, "d") == []
    assert int_in(120, 180)(150, "timeout") == ["expected timeout to be one of [120, 180], got 150"]
    assert none_of(0)(0, "t") == ["value must be none of: [0], got: 0"]
    service_name = allowed_name(special_chars=False)
    assert service_name("Ops/Platform", "name") == []
    assert service_name("trailing ", "name") != [] and service_name("", "name") != []
    assert service_name("bell\x07", "name") != []
