"""infra.validate: one test per rule (message and line:col pinned), resolution, robustness."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.routes_file import MaintenanceWindow
from infra.errors import Problem, StackFileInvalid
from infra.model import (
    AlertGrouping,
    ExistingPolicy,
    ExistingService,
    NewPolicy,
    NewService,
    Rule,
    Stack,
    SupportHours,
    Target,
    UrgencyRule,
)
from infra.validate import (
    check_file,
    default_integration_name,
    load_stack,
    parse_stack,
    validate_files,
)

from .conftest import MINIMAL_STACK, STACKS

Problems = Callable[[str], list[str]]
Stacks = Callable[[str], Stack]

# A head shared by the service-level cases below: the policy block is lines 1-6.
HEAD = MINIMAL_STACK


def with_web(*lines: str) -> str:
    """HEAD plus extra lines of the `web` service (they start at line 11)."""
    return HEAD + "".join(f"    {line}\n" for line in lines)


# --- keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            MINIMAL_STACK.replace("    escalation_policy: oncall", "    escalaton_policy: oncall"),
            [
                "stack.yaml:10:5: services.web: unknown key 'escalaton_policy'; "
                "did you mean 'escalation_policy'?"
            ],
            id="misspelt-key-suggests",
        ),
        pytest.param(
            with_web("colour: blue"),
            [
                "stack.yaml:11:5: services.web: unknown key 'colour'; allowed here: name, "
                "description, escalation_policy, urgency, auto_resolve_timeout, "
                "acknowledgement_timeout, alert_grouping, auto_pause, team, protect, "
                "integration, adopt"
            ],
            id="unknown-key-lists-allowed",
        ),
        pytest.param(
            MINIMAL_STACK.replace("services:", "service:"),
            ["stack.yaml:7:1: (top level): unknown key 'service'; did you mean 'services'?"],
            id="misspelt-top-level-key-hides-missing",
        ),
        pytest.param(
            "escalation_policies: {}\n",
            [
                "stack.yaml:1:1: (top level): missing required key 'services': a stack "
                "declares at least one service"
            ],
            id="no-services",
        ),
        pytest.param(
            "services: {}\n",
            ["stack.yaml:1:11: services: must declare at least 1 entry"],
            id="empty-services",
        ),
        pytest.param(
            HEAD + "  api:\n    description: no name\n    escalation_policy: oncall\n",
            [
                "stack.yaml:11:3: services.api: missing required key 'name' (or `existing: "
                "<name>` to use a service that already exists)"
            ],
            id="new-service-without-name",
        ),
        pytest.param(
            HEAD + "  old:\n    existing: Old\n    name: Old\n",
            [
                "stack.yaml:13:5: services.old: 'name' cannot be combined with 'existing': an "
                "existing service is only looked up by name (allowed here: existing, integration)"
            ],
            id="existing-service-takes-no-settings",
        ),
        pytest.param(
            HEAD.replace("services:", "  sre:\n    existing: SRE\n    loops: 2\nservices:"),
            [
                "stack.yaml:9:5: escalation_policies.sre: 'loops' cannot be combined with "
                "'existing': an existing policy is only looked up by name (allowed here: existing)"
            ],
            id="existing-policy-takes-no-settings",
        ),
        pytest.param(
            HEAD + "  Checkout:\n    name: Checkout\n    escalation_policy: oncall\n",
            [
                "stack.yaml:11:3: services: service key 'Checkout' is not a valid route name: "
                "use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
            ],
            id="service-key-not-a-route-name",
        ),
        pytest.param(
            HEAD.replace("  oncall:", "  On Call:").replace("policy: oncall", "policy: x"),
            [
                "stack.yaml:2:3: escalation_policies: escalation policy key 'On Call' is not a "
                "valid name: use 1-63 lowercase letters, digits, '-' or '_', starting with a "
                "letter or digit",
                "stack.yaml:10:24: services.web.escalation_policy: unknown escalation policy "
                "'x'; declared in escalation_policies: On Call",
            ],
            id="policy-key-not-a-name",
        ),
        pytest.param(
            "services: [web]\n",
            ["stack.yaml:1:11: services: must be a mapping of keys to values, got a list"],
            id="services-not-a-mapping",
        ),
        pytest.param(
            HEAD + "  api: Checkout\n",
            [
                "stack.yaml:11:8: services.api: must be a mapping: {name: ..., ...} or "
                "{existing: <name>}"
            ],
            id="service-not-a-mapping",
        ),
    ],
)
def test_key_rules(problems_of: Problems, content: str, expected: list[str]) -> None:
    assert problems_of(content) == expected


# --- references -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            MINIMAL_STACK.replace("policy: oncall", "policy: oncal"),
            [
                "stack.yaml:10:24: services.web.escalation_policy: unknown escalation policy "
                "'oncal'; did you mean 'oncall'?"
            ],
            id="unknown-policy-suggests",
        ),
        pytest.param(
            MINIMAL_STACK.replace("policy: oncall", "policy: payments"),
            [
                "stack.yaml:10:24: services.web.escalation_policy: unknown escalation policy "
                "'payments'; declared in escalation_policies: oncall"
            ],
            id="unknown-policy-lists-declared",
        ),
        pytest.param(
            "defaults:\n  escalation_policy: oncall\nservices:\n  web: {name: Web}\n",
            [
                "stack.yaml:2:22: defaults.escalation_policy: unknown escalation policy "
                "'oncall'; escalation_policies declares none"
            ],
            id="unknown-default-policy",
        ),
        pytest.param(
            MINIMAL_STACK.replace("    escalation_policy: oncall\n", ""),
            [
                "stack.yaml:8:3: services.web: a new service needs an escalation policy: set "
                "`escalation_policy: <key>` here or `defaults.escalation_policy`"
            ],
            id="new-service-without-policy",
        ),
        pytest.param(
            MINIMAL_STACK + "catch_all: wbe\n",
            ["stack.yaml:11:12: catch_all: 'wbe' is not a service key; did you mean 'web'?"],
            id="unknown-catch-all",
        ),
        pytest.param(
            MINIMAL_STACK + "catch_all: search\n",
            ["stack.yaml:11:12: catch_all: 'search' is not a service key; services are: web"],
            id="unknown-catch-all-lists-services",
        ),
        pytest.param(
            MINIMAL_STACK + "catch_all: Web\n",
            [
                "stack.yaml:11:12: catch_all: 'Web' is not a valid service key: use 1-63 "
                "lowercase letters, digits, '-' or '_', starting with a letter or digit"
            ],
            id="catch-all-not-a-route-name",
        ),
    ],
)
def test_reference_rules(problems_of: Problems, content: str, expected: list[str]) -> None:
    assert problems_of(content) == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            MINIMAL_STACK + "    team: Payments\n",
            [
                "stack.yaml:11:11: services.web.team: 'Payments' does not match escalation "
                "policy 'oncall', which has no team; a PagerDuty service belongs to its "
                "escalation policy's team: set `team: Payments` on the policy, or remove it "
                "from the service"
            ],
            id="service-team-policy-without-team",
        ),
        pytest.param(
            "defaults:\n  team: Ops\n"
            + MINIMAL_STACK.replace("    name: On-call\n", "    name: On-call\n    team: Web\n"),
            [
                "stack.yaml:11:3: defaults.team: 'Ops' does not match escalation policy "
                "'oncall', which has team 'Web'; a PagerDuty service belongs to its "
                "escalation policy's team: set `team: Ops` on the policy, or remove it "
                "from the service"
            ],
            id="default-team-differs-from-policy-team",
        ),
    ],
)
def test_service_team_rules(problems_of: Problems, content: str, expected: list[str]) -> None:
    assert problems_of(content) == expected


def test_service_team_matching_its_policy_any_case(stack_of: Stacks) -> None:
    content = MINIMAL_STACK.replace("    name: On-call\n", "    name: On-call\n    team: web\n")
    web = stack_of(content + "    team: Web\n").services["web"]
    assert isinstance(web, NewService) and web.team == "Web"


# --- uniqueness and routing -------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            HEAD + "  web2:\n    name: WEB\n    escalation_policy: oncall\n",
            [
                "stack.yaml:12:11: services.web2.name: service name 'WEB' is already used by "
                "'web' (line 9); names must differ, ignoring case"
            ],
            id="duplicate-service-name",
        ),
        pytest.param(
            HEAD + "  old:\n    existing: web\n",
            [
                "stack.yaml:12:15: services.old.existing: service name 'web' is already used "
                "by 'web' (line 9); names must differ, ignoring case"
            ],
            id="new-and-existing-service-same-name",
        ),
        pytest.param(
            HEAD.replace("services:", "  other:\n    existing: ON-CALL\nservices:"),
            [
                "stack.yaml:8:15: escalation_policies.other.existing: escalation policy name "
                "'ON-CALL' is already used by 'oncall' (line 3); names must differ, ignoring case"
            ],
            id="duplicate-policy-name",
        ),
        pytest.param(
            with_web("integration: {checks: {ids: [1, 2]}}")
            + "  api:\n    name: API\n    escalation_policy: oncall\n"
            + "    integration: {checks: {ids: [2]}}\n",
            [
                "stack.yaml:15:34: services.api.integration.checks.ids[0]: check id 2 is "
                "already routed to service 'web' (line 11); route each check to one service"
            ],
            id="check-id-routed-twice",
        ),
        pytest.param(
            with_web("integration: {checks: {guids: [AB-1]}}")
            + "  api:\n    name: API\n    escalation_policy: oncall\n"
            + "    integration: {checks: {guids: [ab-1]}}\n",
            [
                "stack.yaml:15:36: services.api.integration.checks.guids[0]: check GUID 'ab-1' "
                "is already routed to service 'web' (line 11); route each check to one service"
            ],
            id="check-guid-routed-twice-ignoring-case",
        ),
        pytest.param(
            with_web("integration: {checks: {tags: ['Team: Web']}}")
            + "  api:\n    name: API\n    escalation_policy: oncall\n"
            + "    integration: {checks: {tags: ['team: web']}}\n",
            [
                "stack.yaml:15:35: services.api.integration.checks.tags[0]: tag 'team: web' is "
                "already routed to service 'web' (line 11); route each check to one service"
            ],
            id="tag-routed-twice",
        ),
        pytest.param(
            with_web("integration: {checks: {tags: ['Team: Checkout']}}")
            + "  api:\n    name: API\n    escalation_policy: oncall\n"
            + "    integration: {checks: {tags: ['team :checkout']}}\n",
            [
                "stack.yaml:15:35: services.api.integration.checks.tags[0]: tag 'team :checkout' "
                "is already routed to service 'web' (line 11); route each check to one service"
            ],
            id="tag-routed-twice-as-the-bridge-normalises",
        ),
        pytest.param(
            with_web("integration: {checks: {tags: ['Team: Checkout']}}")
            + "  api:\n    name: API\n    escalation_policy: oncall\n"
            + "    integration: {checks: {tags: [' TEAM ']}}\n",
            [
                "stack.yaml:15:35: services.api.integration.checks.tags[0]: tag ' TEAM ' overlaps "
                "tag 'Team: Checkout' of service 'web' (line 11): a check carrying both would "
                "page only one of them; make the tags tell the services apart"
            ],
            id="key-only-tag-overlaps-a-valued-one",
        ),
        pytest.param(
            with_web("integration: {checks: {tags: [Team]}}")
            + "  api:\n    name: API\n    escalation_policy: oncall\n"
            + "    integration: {checks: {tags: ['Team: API', 'Env: prod']}}\n",
            [
                "stack.yaml:15:35: services.api.integration.checks.tags[0]: tag 'Team: API' "
                "overlaps tag 'Team' of service 'web' (line 11): a check carrying both would "
                "page only one of them; make the tags tell the services apart"
            ],
            id="valued-tag-overlaps-a-key-only-one",
        ),
        pytest.param(
            with_web("integration: {checks: {ids: [7, 7]}}"),
            [
                "stack.yaml:11:37: services.web.integration.checks.ids[1]: check id 7 is "
                "listed twice"
            ],
            id="check-listed-twice",
        ),
    ],
)
def test_uniqueness_rules(problems_of: Problems, content: str, expected: list[str]) -> None:
    assert problems_of(content) == expected


# --- support hours ----------------------------------------------------------------

SUPPORT = "urgency:\n      support_hours:\n"


def with_hours(*lines: str) -> str:
    """HEAD plus `urgency: support_hours:` on web; the hours' own keys start at line 13."""
    body = "".join(f"        {line}\n" for line in lines)
    return HEAD + "    urgency:\n      support_hours:\n" + body


GOOD_HOURS = ("time_zone: Europe/Berlin", "days: [mon, tue]", 'start: "09:00"', 'end: "17:00"')


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(
            ("time_zone: Europe/Berln", *GOOD_HOURS[1:]),
            [
                "stack.yaml:13:20: services.web.urgency.support_hours.time_zone: unknown time "
                "zone 'Europe/Berln'; did you mean 'Europe/Berlin'?"
            ],
            id="unknown-time-zone",
        ),
        pytest.param(
            (*GOOD_HOURS[:2], 'start: "17:00"', 'end: "09:00"'),
            [
                "stack.yaml:16:14: services.web.urgency.support_hours.end: end 09:00 must be "
                "after start 17:00 (PagerDuty support hours cannot cross midnight)"
            ],
            id="end-before-start",
        ),
        pytest.param(
            (*GOOD_HOURS[:2], "start: 9am", 'end: "17:00"'),
            [
                "stack.yaml:15:16: services.web.urgency.support_hours.start: '9am' is not a "
                'time of day: write HH:MM, e.g. "09:00"'
            ],
            id="start-not-hh-mm",
        ),
        pytest.param(
            (*GOOD_HOURS[:2], "start: 900", 'end: "17:00"'),
            [
                "stack.yaml:15:16: services.web.urgency.support_hours.start: must be a time "
                'such as "09:00" (quote it)'
            ],
            id="start-a-number",
        ),
        pytest.param(
            GOOD_HOURS[1:],
            [
                "stack.yaml:12:7: services.web.urgency.support_hours: missing required key "
                "'time_zone'"
            ],
            id="missing-time-zone",
        ),
        pytest.param(
            (GOOD_HOURS[0], "days: []", *GOOD_HOURS[2:]),
            [
                "stack.yaml:14:15: services.web.urgency.support_hours.days: must have at "
                "least 1 item"
            ],
            id="no-days",
        ),
        pytest.param(
            (GOOD_HOURS[0], "days: [mon, monday, mon]", *GOOD_HOURS[2:]),
            [
                "stack.yaml:14:21: services.web.urgency.support_hours.days[1]: must be one of "
                "mon, tue, wed, thu, fri, sat, sun; got 'monday'; did you mean 'mon'?",
                "stack.yaml:14:29: services.web.urgency.support_hours.days[2]: 'mon' is "
                "listed twice",
            ],
            id="bad-and-repeated-days",
        ),
        pytest.param(
            (*GOOD_HOURS, "during: low", "outside: low"),
            [
                "stack.yaml:12:7: services.web.urgency.support_hours: during and outside are "
                "both 'low', so support hours change nothing: write `urgency: low` instead"
            ],
            id="during-equals-outside",
        ),
    ],
)
def test_support_hours_rules(
    problems_of: Problems, lines: tuple[str, ...], expected: list[str]
) -> None:
    assert problems_of(with_hours(*lines)) == expected


def with_windows(*lines: str) -> str:
    """HEAD plus `integration: maintenance:` on web; the windows' lines start at line 13."""
    return HEAD + "    integration:\n      maintenance:\n" + "".join(
        f"        {line}\n" for line in lines)


WEEKLY_WINDOW = ("- name: deploy", "  time_zone: Europe/Berlin",
                 '  weekly: {days: [sat], start: "22:00", end: "02:00"}')


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(
            ("- name: move", "  time_zone: Europe/Berln",
             '  once: {start: "2026-12-05 22:00", end: "2026-12-06 02:00"}'),
            ["stack.yaml:14:22: services.web.integration.maintenance[0].time_zone: unknown "
             "time zone 'Europe/Berln'; did you mean 'Europe/Berlin'?"],
            id="unknown-time-zone",
        ),
        pytest.param(
            ("- name: move", "  time_zone: UTC",
             '  once: {start: "2026-12-05 22:00", end: "2026-12-05 21:00"}'),
            ["stack.yaml:15:50: services.web.integration.maintenance[0].once.end: end "
             "2026-12-05T21:00:00 must be after start 2026-12-05T22:00:00"],
            id="end-before-start",
        ),
        pytest.param(
            ("- name: move", "  time_zone: Europe/Berlin",
             '  once: {start: "2026-03-29 02:30", end: "2026-03-29 05:00"}'),
            ["stack.yaml:15:25: services.web.integration.maintenance[0].once.start: "
             "2026-03-29T02:30:00 does not exist in Europe/Berlin (the clocks skip it): pick a "
             "time outside the change"],
            id="time-the-clocks-skip",
        ),
        pytest.param(
            ("- name: move", "  time_zone: UTC",
             '  once: {start: "2026-12-05T22:00+01:00", end: "2026-12-06 02:00"}'),
            ["stack.yaml:15:25: services.web.integration.maintenance[0].once.start: "
             "'2026-12-05T22:00+01:00' is not a local date and time: write YYYY-MM-DDTHH:MM, "
             "e.g. '2026-12-05T22:00', without an offset (the window's time_zone gives it)"],
            id="offset-given",
        ),
        pytest.param(
            ("- name: move", "  time_zone: UTC",
             '  once: {start: "2026-12-05 22:00", end: "2027-12-05 22:00"}'),
            ["stack.yaml:15:50: services.web.integration.maintenance[0].once.end: the window "
             "lasts 365 days; at most 31 days (take checks held longer out of the stack file)"],
            id="too-long",
        ),
        pytest.param(
            ("- name: deploy", "  time_zone: UTC",
             '  weekly: {days: [sat, sun, sat], start: "22:00", end: "22:00"}'),
            ["stack.yaml:15:37: services.web.integration.maintenance[0].weekly.days[2]: 'sat' "
             "is listed twice",
             "stack.yaml:15:64: services.web.integration.maintenance[0].weekly.end: end 22:00 "
             "equals start 22:00: a window needs a length (an end before the start runs past "
             "midnight)"],
            id="weekly-rules",
        ),
        pytest.param(
            ("- name: deploy", "  time_zone: UTC",
             '  weekly: {days: [saturday], start: "22:00", end: 2200}'),
            ["stack.yaml:15:27: services.web.integration.maintenance[0].weekly.days[0]: must "
             "be one of mon, tue, wed, thu, fri, sat, sun; got 'saturday'",
             "stack.yaml:15:59: services.web.integration.maintenance[0].weekly.end: must be a "
             'time such as "09:00" (quote it)'],
            id="weekly-values",
        ),
        pytest.param(
            ("- name: deploy", "  time_zone: UTC"),
            ["stack.yaml:13:11: services.web.integration.maintenance[0]: a window needs "
             "exactly one of `once` (one-off) or `weekly`"],
            id="no-schedule",
        ),
        pytest.param(
            (*WEEKLY_WINDOW, "  checks: {}"),
            ["stack.yaml:16:11: services.web.integration.maintenance[0].checks: name at least "
             "one check id, GUID or tag (leave `checks` out to cover every check of the "
             "service)"],
            id="empty-checks",
        ),
        pytest.param(
            (*WEEKLY_WINDOW, *WEEKLY_WINDOW),
            ["stack.yaml:16:17: services.web.integration.maintenance[1].name: window name "
             "'deploy' is already used (line 13)"],
            id="name-twice",
        ),
        pytest.param(
            (*WEEKLY_WINDOW, "  checks: {ids: [x]}", "  every: week"),
            ["stack.yaml:16:26: services.web.integration.maintenance[0].checks.ids[0]: must "
             "be a whole number, got a string ('x')",
             "stack.yaml:17:11: services.web.integration.maintenance[0]: unknown key 'every'; "
             "allowed here: name, time_zone, once, weekly, checks"],
            id="bad-keys",
        ),
    ],
)
def test_maintenance_window_rules(
    problems_of: Problems, lines: tuple[str, ...], expected: list[str]
) -> None:
    assert problems_of(with_windows(*lines)) == expected


def test_maintenance_windows_resolve_to_the_routes_files_model(stack_of: Stacks) -> None:
    stack = stack_of(with_windows(
        *WEEKLY_WINDOW,
        "- name: move", "  time_zone: UTC",
        '  once: {start: "2026-12-05 22:00", end: "2026-12-06T02:00:30"}',
        "  checks: {ids: [101], tags: ['Env: Staging']}",
    ))
    deploy, move = stack.services["web"].integration.maintenance
    assert isinstance(deploy, MaintenanceWindow) and deploy.checks is None
    assert (deploy.weekly.days, deploy.weekly.start, deploy.weekly.end) == (
        ("sat",), "22:00", "02:00")
    assert (move.once.start, move.once.end) == ("2026-12-05T22:00:00", "2026-12-06T02:00:30")
    assert (move.checks.ids, move.checks.tags) == ((101,), ("Env: Staging",))


def test_unquoted_clock_times_are_strings(stack_of: Stacks) -> None:
    stack = stack_of(with_hours(*GOOD_HOURS[:2], "start: 09:00", "end: 17:30"))
    urgency = stack.services["web"].urgency  # type: ignore[union-attr]
    assert urgency.support_hours == SupportHours(
        time_zone="Europe/Berlin", days_of_week=(1, 2), start_time="09:00:00", end_time="17:30:00"
    )


# --- PagerDuty's limits on values ---------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "auto_resolve_timeout: 0s",
            "11:27: services.web.auto_resolve_timeout: must be more than 0; write 'off' instead",
            id="auto-resolve-zero",
        ),
        pytest.param(
            "auto_resolve_timeout: 240",
            "11:27: services.web.auto_resolve_timeout: must be a duration with a unit such as "
            "'240m' or '240s' (a bare number has no unit); or 'off'",
            id="auto-resolve-bare-number",
        ),
        pytest.param(
            "acknowledgement_timeout: 4 hours",
            "11:30: services.web.acknowledgement_timeout: '4 hours' is not a duration: write a "
            "number and one unit, s, m, h or d (e.g. '90s', '30m', '4h', '1d'); or 'off'",
            id="ack-timeout-words",
        ),
        pytest.param(
            "alert_grouping: {type: time, timeout: 25h}",
            "11:43: services.web.alert_grouping.timeout: must be between 1m and 24h "
            "(PagerDuty's limit), got '25h'",
            id="time-grouping-too-long",
        ),
        pytest.param(
            "alert_grouping: {type: time, timeout: 90s}",
            "11:43: services.web.alert_grouping.timeout: must be whole minutes, e.g. '2m'",
            id="time-grouping-not-whole-minutes",
        ),
        pytest.param(
            "alert_grouping: {type: intelligent, time_window: 1m}",
            "11:54: services.web.alert_grouping.time_window: must be between 5m and 1h "
            "(PagerDuty's limit), got '1m'",
            id="intelligent-window-too-short",
        ),
        pytest.param(
            "alert_grouping: {type: intelligent, time_window: 24h}",
            "11:54: services.web.alert_grouping.time_window: must be between 5m and 1h "
            "(PagerDuty's limit), got '24h'",
            id="intelligent-window-no-24h",
        ),
        pytest.param(
            "alert_grouping: {type: content_based, aggregate: all, fields: [a], time_window: 2h}",
            "11:85: services.web.alert_grouping.time_window: must be between 5m and 1h or "
            "exactly 24h (PagerDuty's limit), got '2h'",
            id="content-window-2h",
        ),
        pytest.param(
            "alert_grouping: {type: content_based, aggregate: all}",
            "11:5: services.web.alert_grouping: missing required key 'fields'",
            id="content-without-fields",
        ),
        pytest.param(
            "alert_grouping: {type: time, timeout: 5m, time_window: 5m}",
            "11:47: services.web.alert_grouping: unknown key 'time_window'; allowed here: "
            "type, timeout",
            id="window-on-time-grouping",
        ),
        pytest.param(
            "alert_grouping: {type: smart}",
            "11:21: services.web.alert_grouping: must be none or a mapping whose type is time, "
            "intelligent or content_based",
            id="unknown-grouping-type",
        ),
        pytest.param(
            "auto_pause: {enabled: true, timeout: 4m}",
            "11:42: services.web.auto_pause.timeout: must be one of 2m, 3m, 5m, 10m, 15m "
            "(PagerDuty accepts no other value)",
            id="auto-pause-timeout",
        ),
        pytest.param(
            "urgency: urgent",
            "11:14: services.web.urgency: must be one of high, low, severity_based; got 'urgent'",
            id="urgency-word",
        ),
        pytest.param(
            "urgency: [high]",
            "11:14: services.web.urgency: must be severity_based, high, low or "
            "{support_hours: {...}}",
            id="urgency-list",
        ),
        pytest.param(
            "protect: yes",
            "11:14: services.web.protect: must be true or false, got a string ('yes')",
            id="yaml-1-1-boolean",
        ),
        pytest.param(
            "integration: {name: " + "x" * 256 + "}",
            "11:25: services.web.integration.name: must be at most 255 characters (has 256)",
            id="integration-name-too-long",
        ),
        pytest.param(
            "integration: {vendor_id: apica}",
            "11:30: services.web.integration.vendor_id: 'apica' is not a PagerDuty vendor id "
            "(upper-case letters and digits, e.g. 'PAPICA1')",
            id="vendor-id-shape",
        ),
        pytest.param(
            "integration: {type: events_api}",
            "11:25: services.web.integration.type: must be one of apica, events_api_v2; got "
            "'events_api'; did you mean 'events_api_v2'?",
            id="integration-type",
        ),
        pytest.param(
            "integration: {type: events_api_v2, vendor_id: PAPICA1}",
            "11:40: services.web.integration.vendor_id: an events_api_v2 integration has no "
            "vendor: remove vendor_id, or write `type: apica` for the Apica vendor's integration",
            id="events-api-v2-with-a-vendor",
        ),
        pytest.param(
            "integration: {severity_map: {X: error}}",
            "11:34: services.web.integration.severity_map: 'X' is not an ASM severity: use F, "
            "E, W or I (fatal, error, warning, info)",
            id="severity-map-key",
        ),
        pytest.param(
            "integration: {severity_map: {W: warn}}",
            "11:37: services.web.integration.severity_map.W: must be one of critical, error, "
            "warning, info; got 'warn'; did you mean 'warning'?",
            id="severity-map-value",
        ),
        pytest.param(
            "integration: {links: [{href: 'ftp://x', text: Runbook}]}",
            "11:34: services.web.integration.links[0].href: 'ftp://x' is not an http(s) URL",
            id="link-href",
        ),
        pytest.param(
            "integration: {checks: {ids: [-1]}}",
            "11:34: services.web.integration.checks.ids[0]: must be at least 0, got -1",
            id="negative-check-id",
        ),
        pytest.param(
            "integration: {checks: {ids: [1234567890123456789]}}",
            "11:34: services.web.integration.checks.ids[0]: 1234567890123456789 is not an ASM "
            "check id (at most 18 digits): the bridge could never match it",
            id="check-id-over-18-digits",
        ),
        pytest.param(
            "integration: {checks: {guids: ['7d3f 0c2e']}}",
            "11:36: services.web.integration.checks.guids[0]: '7d3f 0c2e' is not an ASM check "
            "GUID (1-64 letters, digits, '-' or '_'): the bridge could never match it",
            id="check-guid-with-white-space",
        ),
        pytest.param(
            "integration: {checks: {guids: ['" + "a" * 65 + "']}}",
            "11:36: services.web.integration.checks.guids[0]: '" + "a" * 35 + "...' "
            "is not an ASM check GUID (1-64 letters, digits, '-' or '_'): the bridge could never "
            "match it",
            id="check-guid-too-long",
        ),
        pytest.param(
            "team: ''",
            "11:11: services.web.team: must not be blank",
            id="blank-team",
        ),
    ],
)
def test_value_rules(problems_of: Problems, line: str, expected: str) -> None:
    assert problems_of(with_web(line)) == [f"stack.yaml:{expected}"]


# Python's `$` also matches before a final newline: every pattern must refuse one.
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            with_web(
                'urgency: {support_hours: {time_zone: UTC, days: [mon], start: "09:00\\n",'
                ' end: "17:00"}}'
            ),
            "11:67: services.web.urgency.support_hours.start: '09:00\\n' is not a time of day: "
            'write HH:MM, e.g. "09:00"',
            id="start",
        ),
        pytest.param(
            with_web(
                'urgency: {support_hours: {time_zone: UTC, days: [mon], start: "09:00",'
                ' end: "17:00\\n"}}'
            ),
            "11:81: services.web.urgency.support_hours.end: '17:00\\n' is not a time of day: "
            'write HH:MM, e.g. "09:00"',
            id="end",
        ),
        pytest.param(
            'apica: {vendor_id: "PAPICA1\\n"}\n' + HEAD,
            "1:20: apica.vendor_id: 'PAPICA1\\n' is not a PagerDuty vendor id (upper-case "
            "letters and digits, e.g. 'PAPICA1')",
            id="vendor-id",
        ),
        pytest.param(
            with_web('integration: {vendor_id: "PAPICA1\\n"}'),
            "11:30: services.web.integration.vendor_id: 'PAPICA1\\n' is not a PagerDuty vendor id "
            "(upper-case letters and digits, e.g. 'PAPICA1')",
            id="integration-vendor-id",
        ),
        pytest.param(
            HEAD.replace("{user: ann@example.com}", '{user: "a@example.com\\n"}'),
            "6:26: escalation_policies.oncall.rules[0].targets[0].user: 'a@example.com\\n' is not "
            "an e-mail address (users are named by e-mail)",
            id="user",
        ),
        pytest.param(
            HEAD.replace("{user: ann@example.com}", '{schedule: "Primary\\n"}'),
            "6:30: escalation_policies.oncall.rules[0].targets[0].schedule: must not contain "
            "control or other non-printable characters",
            id="schedule",
        ),
        pytest.param(
            HEAD.replace("  web:\n", '  "web\\n":\n'),
            "8:3: services: service key 'web\\n' is not a valid route name: use 1-63 lowercase "
            "letters, digits, '-' or '_', starting with a letter or digit",
            id="service-key",
        ),
        pytest.param(
            HEAD.replace("escalation_policy: oncall", 'escalation_policy: "oncall\\n"'),
            "10:24: services.web.escalation_policy: 'oncall\\n' is not a valid escalation policy "
            "key: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
            id="policy-reference",
        ),
        pytest.param(
            HEAD + 'catch_all: "web\\n"\n',
            "11:12: catch_all: 'web\\n' is not a valid service key: use 1-63 lowercase letters, "
            "digits, '-' or '_', starting with a letter or digit",
            id="catch-all",
        ),
        pytest.param(
            HEAD + 'allow_destroy: ["web\\n"]\n',
            "11:17: allow_destroy[0]: 'web\\n' is not a valid service or escalation policy key: "
            "use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
            id="allow-destroy",
        ),
        pytest.param(
            with_web('integration: {links: [{href: "https://x.example\\n", text: R}]}'),
            "11:34: services.web.integration.links[0].href: 'https://x.example\\n' is not an "
            "http(s) URL",
            id="link-href",
        ),
        pytest.param(
            with_web('integration: {links: [{href: "https://x.example", text: "R\\n"}]}'),
            "11:61: services.web.integration.links[0].text: must be one line of text",
            id="link-text",
        ),
        pytest.param(
            with_web('team: "Web\\n"'),
            "11:11: services.web.team: must not contain control or other non-printable characters",
            id="team",
        ),
    ],
)
def test_trailing_newlines_are_refused(problems_of: Problems, content: str, expected: str) -> None:
    assert problems_of(content) == [f"stack.yaml:{expected}"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "'Web '",
            "must not end with white space (PagerDuty refuses it)",
            id="trailing-space",
        ),
        pytest.param(
            '"Web\\u200b"',
            "must not contain control or other non-printable characters",
            id="invisible-character",
        ),
        pytest.param("''", "must not be blank", id="empty"),
        pytest.param("42", "must be a string, got a number (42)", id="number"),
    ],
)
def test_service_name_rules(problems_of: Problems, name: str, expected: str) -> None:
    content = MINIMAL_STACK.replace("name: Web", f"name: {name}")
    assert problems_of(content) == [f"stack.yaml:9:11: services.web.name: {expected}"]


def test_default_integration_name_too_long(problems_of: Problems) -> None:
    assert problems_of(MINIMAL_STACK.replace("name: Web", "name: " + "w" * 250)) == [
        "stack.yaml:9:11: services.web.name: the default integration name would be 256 "
        "characters (at most 255): set integration.name"
    ]


def policy(*rule_lines: str, extra: str = "") -> str:
    """A stack whose policy has the given rule lines (rules start at line 5)."""
    rules = "".join(f"      {line}\n" for line in rule_lines)
    return (
        "escalation_policies:\n  oncall:\n    name: On-call\n"
        + extra
        + "    rules:\n"
        + rules
        + "services:\n  web: {name: Web, escalation_policy: oncall}\n"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            policy("- delay: 30s", "  targets: [{user: ann@example.com}]"),
            "5:16: escalation_policies.oncall.rules[0].delay: must be at least 1m "
            "(PagerDuty's limit), got '30s'",
            id="delay-below-a-minute",
        ),
        pytest.param(
            policy("- delay: 90s", "  targets: [{user: ann@example.com}]"),
            "5:16: escalation_policies.oncall.rules[0].delay: must be whole minutes, e.g. '2m'",
            id="delay-not-whole-minutes",
        ),
        pytest.param(
            policy("- delay: 30m", "  targets: [{user: ann@example.com}]", extra="    loops: 10\n"),
            "4:12: escalation_policies.oncall.loops: must be at most 9, got 10",
            id="too-many-loops",
        ),
        pytest.param(
            policy(
                "- delay: 30m", "  targets: [{user: ann@example.com}]", extra="    loops: '2'\n"
            ),
            "4:12: escalation_policies.oncall.loops: must be a whole number, got a string ('2')",
            id="loops-as-string",
        ),
        pytest.param(
            policy("- delay: 30m", "  targets: []"),
            "6:18: escalation_policies.oncall.rules[0].targets: must have at least 1 item",
            id="no-targets",
        ),
        pytest.param(
            policy("- delay: 30m", "  targets: [" + ", ".join(["{schedule: S}"] * 11) + "]"),
            "6:18: escalation_policies.oncall.rules[0].targets: must have at most 10 items "
            "(PagerDuty's limit), has 11",
            id="too-many-targets",
        ),
        pytest.param(
            policy("- delay: 30m", "  targets: [{user: ann@example.com, schedule: S}]"),
            "6:19: escalation_policies.oncall.rules[0].targets[0]: a target is either "
            "{user: <e-mail>} or {schedule: <name>}",
            id="user-and-schedule",
        ),
        pytest.param(
            policy("- delay: 30m", "  targets: [{user: ann}]"),
            "6:26: escalation_policies.oncall.rules[0].targets[0].user: 'ann' is not an e-mail "
            "address (users are named by e-mail)",
            id="user-not-an-email",
        ),
        pytest.param(
            policy("- delay: 30m", "  assignment: everyone", "  targets: [{schedule: S}]"),
            "6:21: escalation_policies.oncall.rules[0].assignment: must be one of notify_all, "
            "round_robin; got 'everyone'",
            id="assignment-word",
        ),
        pytest.param(
            policy("- delay: 30m", "  targets: [{schedule: S}]").replace(
                "name: On-call", "name: Ops/On-call"
            ),
            "3:11: escalation_policies.oncall.name: must not contain / (PagerDuty refuses "
            "\\ / & < > here)",
            id="policy-name-special-character",
        ),
        pytest.param(
            "escalation_policies:\n  oncall:\n    name: On-call\n    rules: []\n"
            "services:\n  web: {name: Web, escalation_policy: oncall}\n",
            "4:12: escalation_policies.oncall.rules: must have at least 1 item",
            id="no-rules",
        ),
    ],
)
def test_policy_rules(problems_of: Problems, content: str, expected: str) -> None:
    assert problems_of(content) == [f"stack.yaml:{expected}"]


def test_all_problems_of_a_file_come_at_once(problems_of: Problems) -> None:
    problems = problems_of(
        """\
        defaults:
          urgency: hihg
        escalation_policies:
          oncall:
            name: On-call
            loops: 12
            rules:
              - delay: 30m
                targets: [{user: ann@example.com}]
        services:
          web:
            name: Web
            escalation_policy: oncal
            auto_resolve_timeout: 30
        catch_all: api
        """
    )
    assert problems == [
        "stack.yaml:2:12: defaults.urgency: must be one of high, low, severity_based; "
        "got 'hihg'; did you mean 'high'?",
        "stack.yaml:6:12: escalation_policies.oncall.loops: must be at most 9, got 12",
        "stack.yaml:13:24: services.web.escalation_policy: unknown escalation policy 'oncal'; "
        "did you mean 'oncall'?",
        "stack.yaml:14:27: services.web.auto_resolve_timeout: must be a duration with a unit "
        "such as '30m' or '30s' (a bare number has no unit); or 'off'",
        "stack.yaml:15:12: catch_all: 'api' is not a service key; services are: web",
    ]


def test_yaml_problems_come_before_any_model_check(problems_of: Problems) -> None:
    assert problems_of("services:\n  web: {name: Web}\n  web: {name: Web}\n") == [
        "stack.yaml:3:3: duplicate key 'web' (first at line 2, again at line 3): keep one"
    ]


# --- resolution -------------------------------------------------------------------


def test_builtin_defaults(stack_of: Stacks) -> None:
    web = stack_of(MINIMAL_STACK).services["web"]
    assert web == NewService(
        key="web",
        name="Web",
        description=None,
        escalation_policy="oncall",
        urgency=UrgencyRule(type="constant", urgency="severity_based"),
        auto_resolve_timeout=4 * 3600,
        acknowledgement_timeout=30 * 60,
        alert_grouping=None,
        auto_pause_timeout=None,
        team=None,
        protect=True,
        integration=web.integration,
    )
    assert web.integration.name == "Apica-Web"
    assert web.integration.severity_map == {
        "F": "critical",
        "E": "error",
        "W": "warning",
        "I": "info",
    }


DEFAULTS = """\
defaults:
  escalation_policy: oncall
  urgency: high
  auto_resolve_timeout: 2h
  acknowledgement_timeout: off
  alert_grouping: {type: time, timeout: until_resolved}
  auto_pause: {enabled: true}
  team: Platform
  severity_map: {I: warning}
  protect: false
"""


def test_defaults_apply_to_every_service(stack_of: Stacks) -> None:
    policy_in_platform = MINIMAL_STACK.replace(
        "    name: On-call\n", "    name: On-call\n    team: Platform\n"
    )
    stack = stack_of(DEFAULTS + policy_in_platform.replace("    escalation_policy: oncall\n", ""))
    web = stack.services["web"]
    assert isinstance(web, NewService)
    assert web.escalation_policy == "oncall"
    assert web.urgency == UrgencyRule(type="constant", urgency="high")
    assert (web.auto_resolve_timeout, web.acknowledgement_timeout) == (7200, None)
    assert web.alert_grouping == AlertGrouping(type="time", timeout=0)
    assert web.auto_pause_timeout == 300
    assert (web.team, web.protect) == ("Platform", False)
    assert web.integration.severity_map["I"] == "warning"
    policy = stack.escalation_policies["oncall"]
    assert isinstance(policy, NewPolicy)
    assert policy.protect is False  # defaults.protect covers policies too


def test_a_service_overrides_defaults(stack_of: Stacks) -> None:
    content = DEFAULTS + with_web(
        "urgency: low",
        "auto_resolve_timeout: off",
        "acknowledgement_timeout: 10m",
        "alert_grouping: none",
        "auto_pause: {enabled: false}",
        "team: Payments",
        "protect: true",
        "integration: {severity_map: {I: info, W: error}}",
    ).replace("    name: On-call\n", "    name: On-call\n    team: Payments\n")
    web = stack_of(content).services["web"]
    assert isinstance(web, NewService)
    assert web.urgency == UrgencyRule(type="constant", urgency="low")
    assert (web.auto_resolve_timeout, web.acknowledgement_timeout) == (None, 600)
    assert (web.alert_grouping, web.auto_pause_timeout) == (None, None)
    assert (web.team, web.protect) == ("Payments", True)
    assert web.integration.severity_map == {
        "F": "critical",
        "E": "error",
        "W": "error",
        "I": "info",
    }


def test_support_hours_urgency_is_normalised(stack_of: Stacks) -> None:
    stack = stack_of(with_hours("time_zone: UTC", "days: [sun, mon]", *GOOD_HOURS[2:]))
    assert stack.services["web"].urgency == UrgencyRule(  # type: ignore[union-attr]
        type="use_support_hours",
        during_support_hours="high",
        outside_support_hours="low",
        support_hours=SupportHours(
            time_zone="UTC", days_of_week=(1, 7), start_time="09:00:00", end_time="17:00:00"
        ),
        raise_at_support_hours_start=True,
    )


def test_no_scheduled_action_unless_high_during_and_low_outside(stack_of: Stacks) -> None:
    stack = stack_of(with_hours(*GOOD_HOURS, "during: severity_based"))
    urgency = stack.services["web"].urgency  # type: ignore[union-attr]
    assert (urgency.during_support_hours, urgency.raise_at_support_hours_start) == (
        "severity_based",
        False,
    )


@pytest.mark.parametrize(
    ("grouping", "expected"),
    [
        ("{type: time, timeout: 15m}", AlertGrouping(type="time", timeout=15)),
        ("{type: intelligent}", AlertGrouping(type="intelligent", time_window=None)),
        (
            "{type: intelligent, time_window: 10m}",
            AlertGrouping(type="intelligent", time_window=600),
        ),
        (
            "{type: content_based, aggregate: any, fields: [source], time_window: 24h}",
            AlertGrouping(
                type="content_based", aggregate="any", fields=("source",), time_window=86400
            ),
        ),
        ("none", None),
    ],
)
def test_alert_grouping_resolution(
    stack_of: Stacks, grouping: str, expected: AlertGrouping | None
) -> None:
    web = stack_of(with_web(f"alert_grouping: {grouping}")).services["web"]
    assert web.alert_grouping == expected  # type: ignore[union-attr]


def test_policies_resolve(stack_of: Stacks) -> None:
    stack = stack_of(
        """\
        escalation_policies:
          oncall:
            name: On-call
            description: Day and night.
            loops: 2
            team: Platform
            rules:
              - delay: 1h
                assignment: round_robin
                targets: [{user: ann@example.com}, {schedule: Primary}]
          sre:
            existing: SRE Escalation
        services:
          web: {name: Web, escalation_policy: sre}
        """
    )
    assert stack.escalation_policies == {
        "oncall": NewPolicy(
            key="oncall",
            name="On-call",
            description="Day and night.",
            num_loops=2,
            team="Platform",
            protect=True,
            rules=(
                Rule(
                    delay_minutes=60,
                    assignment="round_robin",
                    targets=(
                        Target(type="user", ref="ann@example.com"),
                        Target(type="schedule", ref="Primary"),
                    ),
                ),
            ),
        ),
        "sre": ExistingPolicy(key="sre", name="SRE Escalation"),
    }


def test_integrations_resolve(stack_of: Stacks) -> None:
    stack = stack_of(
        "apica: {vendor_id: PSTACK1}\n"
        + with_web(
            "integration:",
            "  checks: {ids: [1, 2], guids: [g-1], tags: ['Team: Web']}",
            "  links: [{href: 'https://runbooks.example.com/web', text: Runbook}]",
        )
        + "  legacy:\n    existing: Legacy   Web  App\n"
        + "    integration: {vendor_id: POWN123, name: Apica-Legacy}\n"
    )
    web, legacy = stack.services["web"], stack.services["legacy"]
    assert (web.integration.name, web.integration.vendor_id) == ("Apica-Web", "PSTACK1")
    assert web.integration.check_ids == (1, 2)
    assert web.integration.check_guids == ("g-1",)
    assert web.integration.check_tags == ("Team: Web",)
    assert [link.href for link in web.integration.links] == ["https://runbooks.example.com/web"]
    assert isinstance(legacy, ExistingService)
    assert (legacy.name, legacy.integration.name) == ("Legacy   Web  App", "Apica-Legacy")
    assert legacy.integration.vendor_id == "POWN123"
    assert stack.apica_vendor_id == "PSTACK1"
    assert web.integration.type == legacy.integration.type == "apica"


def test_an_events_api_v2_integration_has_no_vendor(stack_of: Stacks) -> None:
    stack = stack_of(
        "apica: {vendor_id: PSTACK1}\n" + with_web("integration: {type: events_api_v2}")
    )
    integration = stack.services["web"].integration
    assert (integration.type, integration.vendor_id) == ("events_api_v2", None)
    assert integration.name == "Apica-Web"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Checkout API", "Apica-Checkout-API"),
        ("Legacy   Web", "Apica-Legacy-Web"),
        ("x", "Apica-x"),
    ],
)
def test_default_integration_name(name: str, expected: str) -> None:
    assert default_integration_name(name) == expected


def test_the_resolved_stack_is_frozen(stack_of: Stacks) -> None:
    stack = stack_of(MINIMAL_STACK)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        stack.catch_all = "web"  # type: ignore[misc]


def test_dict_order_is_file_order(stack_of: Stacks) -> None:
    stack = stack_of(
        HEAD
        + "  api: {name: API}\n  zeta: {name: Zeta}\n".replace("}", ", escalation_policy: oncall}")
    )
    assert list(stack.services) == ["web", "api", "zeta"]


# --- committed stacks and entry points --------------------------------------------


@pytest.mark.parametrize("name", ["example.yaml", "dev.yaml", "prod.yaml"])
def test_committed_stacks_are_valid(name: str) -> None:
    path = STACKS / name
    stack = load_stack(path)
    assert stack.services
    assert path.read_text(encoding="utf-8").startswith(
        "# yaml-language-server: $schema=./schema.json\n"
    )


def test_example_covers_new_and_existing(tmp_path: Path) -> None:
    stack = load_stack(STACKS / "example.yaml")
    kinds = {s.kind for s in stack.services.values()} | {
        p.kind for p in stack.escalation_policies.values()
    }
    assert kinds == {"new", "existing"}
    assert stack.catch_all in stack.services


def test_validate_files_collects_every_file(write_stack: Callable[..., Path]) -> None:
    good = write_stack(MINIMAL_STACK, "good.yaml")
    bad = write_stack("services: {}\n", "bad.yaml")
    assert validate_files([good]) == []
    assert [str(p) for p in validate_files([bad, good])] == [
        f"{bad}:1:11: services: must declare at least 1 entry"
    ]


def test_check_file_never_raises_for_a_missing_file(tmp_path: Path) -> None:
    result = check_file(tmp_path / "gone.yaml")
    assert result.stack is None
    assert result.problems == (Problem(str(tmp_path / "gone.yaml"), None, None, "no such file"),)


def test_parse_stack_reads_text() -> None:
    assert list(parse_stack(MINIMAL_STACK, "inline.yaml").services) == ["web"]


# --- robustness: anything at all gives a Stack or problems ---------------------------

_VOCABULARY = [
    "defaults", "apica", "escalation_policies", "services", "catch_all", "name", "existing",
    "escalation_policy", "urgency", "support_hours", "time_zone", "days", "start", "end",
    "during", "outside", "auto_resolve_timeout", "acknowledgement_timeout", "alert_grouping",
    "type", "timeout", "time_window", "aggregate", "fields", "auto_pause", "enabled", "team",
    "severity_map", "protect", "integration", "checks", "ids", "guids", "tags", "links",
    "href", "text", "vendor_id", "rules", "delay", "targets", "user", "schedule", "loops",
    "assignment", "web", "oncall", "F", "W", "Web",
]  # fmt: skip
_WORDS = [
    "off", "30m", "4h", "90s", "until_resolved", "recommended", "high", "low", "none",
    "severity_based", "time", "intelligent", "content_based", "all", "mon", "09:00", "17:00",
    "UTC", "ann@example.com", "critical", "oncall", "web", "PAPICA1", "https://x.example", "",
    "apica", "events_api_v2",
]  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=10**6),
    st.floats(allow_nan=True),
    st.sampled_from(_WORDS),
    st.text(max_size=8),
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(_VOCABULARY) | st.text(max_size=5), inner, max_size=5),
    ),
    max_leaves=30,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_VOCABULARY), _DOCUMENTS, max_size=6))
def test_random_documents_give_a_stack_or_problems(document: dict[str, object]) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    try:
        stack = parse_stack(text, "random.yaml")
    except StackFileInvalid as exc:
        assert exc.problems
        for problem in exc.problems:
            assert str(problem).startswith("random.yaml:")
            assert problem.line is not None and problem.line >= 1
    else:
        assert isinstance(stack, Stack)


@given(st.binary(max_size=200))
def test_random_bytes_give_problems(raw: bytes) -> None:
    with pytest.raises(StackFileInvalid) as caught:
        parse_stack(raw, "random.yaml")
    assert caught.value.problems


# Where a mutation lands in an otherwise valid stack, to reach the deeper rules.
_PATHS = [
    ("defaults",),
    ("defaults", "urgency"),
    ("defaults", "alert_grouping"),
    ("defaults", "escalation_policy"),
    ("apica",),
    ("escalation_policies", "oncall"),
    ("escalation_policies", "oncall", "rules"),
    ("escalation_policies", "oncall", "rules", 0, "targets"),
    ("escalation_policies", "other"),
    ("services", "web"),
    ("services", "web", "urgency"),
    ("services", "web", "urgency", "support_hours"),
    ("services", "web", "alert_grouping"),
    ("services", "web", "auto_pause"),
    ("services", "web", "integration"),
    ("services", "web", "integration", "checks"),
    ("services", "api"),
    ("catch_all",),
]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _DOCUMENTS), min_size=1, max_size=4))
def test_mutated_stacks_give_a_stack_or_problems(mutations: list[tuple[tuple, object]]) -> None:
    document = yaml.safe_load(MINIMAL_STACK)
    for path, value in mutations:
        node: Any = document
        for part in path[:-1]:
            if isinstance(node, dict) and not isinstance(node.get(part), dict | list):
                node[part] = {}  # create the way down, so the value lands where aimed
            if isinstance(node, list) and not (isinstance(part, int) and part < len(node)):
                break
            node = node[part]
        else:
            if isinstance(node, dict):
                node[path[-1]] = value
    try:
        stack = parse_stack(yaml.safe_dump(document), "mutated.yaml")
    except StackFileInvalid as exc:
        assert exc.problems
    else:
        assert isinstance(stack, Stack)


def test_allow_destroy_names_keys_that_may_no_longer_exist(stack_of: Stacks) -> None:
    stack = stack_of(
        "allow_destroy: [legacy-web, old-policy]\n"
        "escalation_policies:\n"
        "  ops: {name: Ops, rules: [{delay: 5m, targets: [{user: a@example.com}]}]}\n"
        "services:\n"
        "  web: {name: Web, escalation_policy: ops}\n"
    )
    assert stack.allow_destroy == ("legacy-web", "old-policy")


# --- adopting existing PagerDuty objects, services without an integration, budgets -------

ADOPTED = """\
escalation_policies:
  oncall:
    name: On-call
    adopt: PPOL001
    rules:
      - delay: 30m
        targets: [{user: ann@example.com}]
services:
  web:
    name: Web
    adopt: PSVC001
    escalation_policy: oncall
    integration: {adopt: PSVC001.PINT001}
  quiet:
    name: Quiet
    adopt: PSVC002
    escalation_policy: oncall
    integration: none
"""


def test_adopt_ids_resolve(stack_of: Stacks) -> None:
    stack = stack_of(ADOPTED)
    policy = stack.escalation_policies["oncall"]
    web, quiet = stack.services["web"], stack.services["quiet"]
    assert isinstance(policy, NewPolicy) and isinstance(web, NewService)
    assert isinstance(quiet, NewService)
    assert (policy.adopt, web.adopt, quiet.adopt) == ("PPOL001", "PSVC001", "PSVC002")
    assert web.integration is not None and web.integration.adopt == "PSVC001.PINT001"
    assert quiet.integration is None


def test_nothing_is_adopted_unless_asked(stack_of: Stacks) -> None:
    stack = stack_of(MINIMAL_STACK)
    web = stack.services["web"]
    assert isinstance(web, NewService) and web.integration is not None
    assert (web.adopt, web.integration.adopt) == (None, None)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "    adopt: PSVC001\n",
            "    adopt: psvc001\n",
            "stack.yaml:11:12: services.web.adopt: 'psvc001' is not a PagerDuty id (2-20 "
            "upper-case letters and digits, e.g. 'PIJ90N7', as `apica-pd import` writes it)",
            id="lower-case-id",
        ),
        pytest.param(
            "    adopt: PSVC001\n",
            "    adopt: 1234567\n",
            "stack.yaml:11:12: services.web.adopt: must be a PagerDuty id such as 'PIJ90N7', "
            "got a number (1234567)",
            id="number",
        ),
        pytest.param(
            "{adopt: PSVC001.PINT001}",
            "{adopt: PINT001}",
            "stack.yaml:13:26: services.web.integration.adopt: 'PINT001' is not an integration "
            "import id: write the service's id, a dot and the integration's id, e.g. "
            "'PIJ90N7.PQ12345'",
            id="integration-id-without-service",
        ),
        pytest.param(
            "{adopt: PSVC001.PINT001}",
            "{adopt: PSVC002.PINT001}",
            "stack.yaml:13:26: services.web.integration.adopt: integration 'PINT001' belongs "
            "to PagerDuty service 'PSVC002', not to 'PSVC001' (services.web.adopt): an "
            "integration is adopted together with its own service",
            id="integration-of-another-service",
        ),
        pytest.param(
            "    adopt: PSVC001\n",
            "",
            "stack.yaml:12:26: services.web.integration.adopt: integration 'PINT001' belongs "
            "to PagerDuty service 'PSVC001', but services.web is a new service: adopt that "
            "service too (`adopt: PSVC001`), or remove integration.adopt",
            id="integration-of-a-created-service",
        ),
        pytest.param(
            "    adopt: PSVC002\n",
            "    adopt: PSVC001\n",
            "stack.yaml:16:12: services.quiet.adopt: PagerDuty service 'PSVC001' is already "
            "adopted by 'web' (line 11); one PagerDuty object can be adopted only once",
            id="one-service-adopted-twice",
        ),
        pytest.param(
            "  quiet:\n",
            "  legacy:\n    existing: Legacy\n    integration: {adopt: PSVC009.PINT001}\n"
            "  quiet:\n",
            "stack.yaml:16:26: services.legacy.integration.adopt: PagerDuty integration "
            "'PINT001' is already adopted by 'web' (line 13); one PagerDuty object can be "
            "adopted only once",
            id="one-integration-adopted-twice",
        ),
        pytest.param(
            "    integration: none\n",
            "    integration: nothing\n",
            "stack.yaml:18:18: services.quiet.integration: must be a mapping ({checks: ..., "
            "...}) or none (no Apica integration)",
            id="integration-neither-mapping-nor-none",
        ),
        pytest.param(
            "  quiet:\n",
            "  legacy:\n    existing: Legacy\n    integration: none\n  quiet:\n",
            "stack.yaml:16:18: services.legacy.integration: an existing service is in the stack "
            "file only for its Apica integration: give it one (`integration: {...}`), or "
            "remove the entry",
            id="existing-service-without-integration",
        ),
        pytest.param(
            "    integration: none\n",
            "    integration: none\ncatch_all: quiet\n",
            "stack.yaml:19:12: catch_all: service 'quiet' has no Apica integration "
            "(`integration: none`), so it cannot receive the checks no service claims",
            id="catch-all-without-integration",
        ),
    ],
)
def test_adopt_rules(problems_of: Problems, old: str, new: str, expected: str) -> None:
    assert old in ADOPTED
    assert problems_of(ADOPTED.replace(old, new, 1)) == [expected]


def test_a_policy_adopted_twice(problems_of: Problems) -> None:
    text = ADOPTED.replace(
        "services:",
        "  other:\n    name: Other\n    adopt: PPOL001\n"
        "    rules: [{delay: 5m, targets: [{user: ann@example.com}]}]\nservices:",
    )
    assert problems_of(text) == [
        "stack.yaml:10:12: escalation_policies.other.adopt: PagerDuty escalation policy "
        "'PPOL001' is already adopted by 'oncall' (line 4); one PagerDuty object can be "
        "adopted only once"
    ]


def test_an_existing_service_may_adopt_its_integration(stack_of: Stacks) -> None:
    stack = stack_of(ADOPTED + "  legacy:\n    existing: Legacy\n"
                     "    integration: {adopt: PSVC009.PINT009}\n")
    legacy = stack.services["legacy"]
    assert isinstance(legacy, ExistingService)
    assert legacy.integration.adopt == "PSVC009.PINT009"


def test_change_budget_defaults_and_overrides(stack_of: Stacks) -> None:
    default = stack_of(MINIMAL_STACK)
    assert (default.allow_mass_change, default.change_budget.model_dump()) == (
        False,
        {"services_changed": 30, "checks_rerouted": 30, "policies_changed": 30,
         "min_existing": 10},
    )
    custom = stack_of(
        MINIMAL_STACK + "allow_mass_change: true\n"
        "change_budget: {services_changed: 50%, checks_rerouted: 0%, min_existing: 3}\n"
    )
    assert (custom.allow_mass_change, custom.change_budget.model_dump()) == (
        True,
        {"services_changed": 50, "checks_rerouted": 0, "policies_changed": 30,
         "min_existing": 3},
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "change_budget: {services_changed: 30}",
            "stack.yaml:11:35: change_budget.services_changed: must be a percentage from 0% "
            "to 100%, e.g. '30%', got a number (30)",
        ),
        (
            "change_budget: {policies_changed: 101%}",
            "stack.yaml:11:35: change_budget.policies_changed: must be a percentage from 0% "
            "to 100%, e.g. '30%', got a string ('101%')",
        ),
        (
            "change_budget: {min_existing: 0}",
            "stack.yaml:11:31: change_budget.min_existing: must be at least 1, got 0",
        ),
        (
            "change_budget: {services: 10%}",
            "stack.yaml:11:17: change_budget: unknown key 'services'; did you mean "
            "'services_changed'?",
        ),
        (
            "allow_mass_change: yes",
            "stack.yaml:11:20: allow_mass_change: must be true or false, got a string ('yes')",
        ),
    ],
)
def test_change_budget_rules(problems_of: Problems, line: str, expected: str) -> None:
    assert problems_of(MINIMAL_STACK + line + "\n") == [expected]
