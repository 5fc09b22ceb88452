"""infra.import_stack: accounts in PagerDuty's shapes, built by hand, as stack files.

Every file written here must load with the stack-file loader (`written()` checks).
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.account_import import Account, Selection
from infra.import_stack import ImportedStack, import_stack, route_key
from infra.model import NewPolicy, NewService, Stack
from infra.validate import parse_stack

APICA = {"id": "PAPICA1", "name": "Apica"}
OTHER_APICA = {"id": "PAPICA2", "name": "apica"}
DATADOG = {"id": "PDOG001", "name": "Datadog"}
ANN = {"id": "PUSER01", "email": "ann@example.com", "name": "Ann"}
PRIMARY = {"id": "PSCHED1", "name": "Primary"}
TEAM = {"id": "PTEAM01", "name": "Web"}

#: Adopting leaves a service's own grouping as it is; the note gives the stack file's words.
GROUPS_ITSELF = (
    "the service groups alerts itself ({}, PagerDuty's deprecated service-level grouping), "
    "left as it is; to manage it here write that as alert_grouping, and `pulumi up` moves it "
    "to an alert grouping setting"
)


def policy(policy_id: str = "PPOL001", name: str = "Web On-call", **fields: Any) -> dict[str, Any]:
    return {
        "id": policy_id,
        "name": name,
        "description": None,
        "num_loops": 0,
        "on_call_handoff_notifications": "if_has_services",
        "teams": [],
        "escalation_rules": [
            {
                "id": "PRULE01",
                "escalation_delay_in_minutes": 30,
                "escalation_rule_assignment_strategy": {"type": "assign_to_everyone"},
                "targets": [{"id": "PUSER01", "type": "user_reference"}],
            }
        ],
        **fields,
    }


def service(service_id: str = "PSVC001", name: str = "Web", **fields: Any) -> dict[str, Any]:
    return {
        "id": service_id,
        "name": name,
        "description": None,
        "status": "active",
        "escalation_policy": {"id": "PPOL001", "type": "escalation_policy_reference"},
        "auto_resolve_timeout": 14400,
        "acknowledgement_timeout": 1800,
        "incident_urgency_rule": {"type": "constant", "urgency": "high"},
        "support_hours": None,
        "scheduled_actions": [],
        "alert_grouping_parameters": {"type": None, "config": None},
        "auto_pause_notifications_parameters": {"enabled": False, "timeout": None},
        "response_play": None,
        "teams": [],
        "integrations": [],
        **fields,
    }


def apica_integration(
    integration_id: str = "PINT001", name: str = "Apica-Web", vendor: dict[str, Any] = APICA
) -> dict[str, Any]:
    return {
        "id": integration_id,
        "name": name,
        "type": "events_api_v2_inbound_integration",
        "vendor": {"id": vendor["id"], "type": "vendor_reference", "summary": vendor["name"]},
    }


def account(
    *services: dict[str, Any],
    policies: tuple[dict[str, Any], ...] = (),
    grouping: dict[str, dict[str, Any]] | None = None,
) -> Account:
    return Account(
        source="https://api.pagerduty.com",
        selection=Selection(everything=True),
        services=services or (service(),),
        policies={p["id"]: p for p in policies or (policy(),)},
        users={ANN["id"]: ANN},
        schedules={PRIMARY["id"]: PRIMARY},
        teams={TEAM["id"]: TEAM},
        vendors={v["id"]: v for v in (APICA, OTHER_APICA, DATADOG)},
        grouping_settings=grouping or {},
    )


def written(imported: ImportedStack) -> Stack:
    return parse_stack(imported.text, "imported.yaml")


def notes(imported: ImportedStack) -> list[str]:
    found = [
        line.strip().removeprefix("# PagerDuty: ")
        for line in imported.text.splitlines()
        if line.strip().startswith("# PagerDuty: ")
    ]
    assert len(found) == imported.notes
    return found


def block_of(imported: ImportedStack, key: str) -> list[str]:
    """The lines of the services' or policies' entry `key` (without the key line)."""
    lines = imported.text.splitlines()
    start = lines.index(f"  {key}:") + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("    ")), None)
    return lines[start:end]


def test_a_minimal_account_as_a_whole_file() -> None:
    imported = import_stack(account())
    assert imported.text == (
        "# yaml-language-server: $schema=./schema.json\n"
        "#\n"
        "# Imported from PagerDuty (https://api.pagerduty.com) by `apica-pd import --all`.\n"
        "# Every escalation policy, service and Apica integration carries `adopt:`, its\n"
        "# PagerDuty id: the first `pulumi up` adopts (imports) them instead of creating\n"
        "# duplicates. Settings are written out in full (no `defaults:`), empty\n"
        '# descriptions as "" (without one, Pulumi would write "Managed by Pulumi").\n'
        '# Comments starting "PagerDuty:" name what PagerDuty holds and a stack file\n'
        "# cannot say: review them. Next: apica-pd validate, apica-pd plan (adopted\n"
        "# resources show as imports), pulumi up.\n"
        "\n"
        "escalation_policies:\n"
        "  web-on-call:\n"
        "    name: Web On-call\n"
        "    adopt: PPOL001\n"
        '    description: ""\n'
        "    loops: 0\n"
        "    rules:\n"
        "      - delay: 30m\n"
        "        targets:\n"
        "          - user: ann@example.com\n"
        "\n"
        "services:\n"
        "  web:\n"
        "    name: Web\n"
        "    adopt: PSVC001\n"
        '    description: ""\n'
        "    escalation_policy: web-on-call\n"
        "    urgency: high\n"
        "    auto_resolve_timeout: 4h\n"
        "    acknowledgement_timeout: 30m\n"
        "    alert_grouping: none\n"
        "    auto_pause: {enabled: false}\n"
        "    # no Apica integration in PagerDuty: to route ASM checks here, write "
        "`integration: {checks: ...}` (then `pulumi up` creates one)\n"
        "    integration: none\n"
    )
    stack = written(imported)
    web = stack.services["web"]
    assert isinstance(web, NewService) and web.integration is None
    assert (imported.policies, imported.services, imported.integrations) == (1, 1, 0)
    assert (imported.without_integration, imported.notes) == (1, 0)


def test_the_resolved_stack_says_what_pagerduty_holds() -> None:
    rules = [
        {"escalation_delay_in_minutes": 60,
         "escalation_rule_assignment_strategy": {"type": "round_robin"},
         "targets": [{"id": "PSCHED1", "type": "schedule_reference"},
                     {"id": "PUSER01", "type": "user_reference"}]},
        {"escalation_delay_in_minutes": 5,
         "escalation_rule_assignment_strategy": {"type": "assign_to_everyone"},
         "targets": [{"id": "PSCHED1", "type": "schedule_v3_reference"}]},
    ]
    web = service(
        description="The web site",
        auto_resolve_timeout=None,
        acknowledgement_timeout=600,
        incident_urgency_rule={"type": "constant", "urgency": "severity_based"},
        alert_grouping_parameters={"type": "time", "config": {"timeout": 0}},
        auto_pause_notifications_parameters={"enabled": True, "timeout": 120},
        integrations=[apica_integration()],
    )
    pol = policy(num_loops=3, description="Web people", teams=[{"id": "PTEAM01"}],
                 escalation_rules=rules)
    stack = written(import_stack(account(web, policies=(pol,))))
    resolved_policy = stack.escalation_policies["web-on-call"]
    assert isinstance(resolved_policy, NewPolicy)
    assert (resolved_policy.adopt, resolved_policy.num_loops, resolved_policy.team) == (
        "PPOL001", 3, "Web",
    )
    assert resolved_policy.description == "Web people"
    assert [(r.delay_minutes, r.assignment, [(t.type, t.ref) for t in r.targets])
            for r in resolved_policy.rules] == [
        (60, "round_robin", [("schedule", "Primary"), ("user", "ann@example.com")]),
        (5, "assign_to_everyone", [("schedule", "Primary")]),
    ]
    resolved = stack.services["web"]
    assert isinstance(resolved, NewService) and resolved.integration is not None
    assert (resolved.auto_resolve_timeout, resolved.acknowledgement_timeout) == (None, 600)
    assert resolved.urgency.urgency == "severity_based"
    assert resolved.alert_grouping is None  # left as PagerDuty has it (a note says what)
    assert resolved.auto_pause_timeout == 120
    assert (resolved.integration.adopt, resolved.integration.name) == (
        "PSVC001.PINT001", "Apica-Web",
    )
    assert stack.apica_vendor_id == "PAPICA1"


def test_support_hours() -> None:
    web = service(
        incident_urgency_rule={
            "type": "use_support_hours",
            "during_support_hours": {"type": "constant", "urgency": "severity_based"},
            "outside_support_hours": {"type": "constant", "urgency": "low"},
        },
        support_hours={"type": "fixed_time_per_day", "time_zone": "America/New_York",
                       "days_of_week": [6, 1, 2], "start_time": "08:30:00",
                       "end_time": "18:00:00"},
    )
    imported = import_stack(account(web))
    assert block_of(imported, "web")[4:12] == [
        "    urgency:",
        "      support_hours:",
        "        time_zone: America/New_York",
        "        days: [mon, tue, sat]",
        '        start: "08:30"',
        '        end: "18:00"',
        "        during: severity_based",
        "        outside: low",
    ]
    hours = written(imported).services["web"].urgency  # type: ignore[union-attr]
    assert hours.support_hours is not None and hours.support_hours.days_of_week == (1, 2, 6)
    assert notes(imported) == []


SUPPORT_HOURS = {
    "type": "use_support_hours",
    "during_support_hours": {"type": "constant", "urgency": "high"},
    "outside_support_hours": {"type": "constant", "urgency": "low"},
}
HOURS = {"type": "fixed_time_per_day", "time_zone": "UTC", "days_of_week": [1],
         "start_time": "09:00:00", "end_time": "17:00:00"}
RAISE = {"type": "urgency_change", "at": {"type": "named_time", "name": "support_hours_start"},
         "to_urgency": "high"}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"status": "disabled"},
            ["the service is disabled; the stack file cannot say so, and `pulumi up` leaves "
             "it disabled"],
            id="disabled",
        ),
        pytest.param(
            {"response_play": {"id": "PPLAY01", "summary": "Major incident"}},
            ["response play Major incident is set; the provider sends none, so the first "
             "`pulumi up` clears it"],
            id="response-play",
        ),
        pytest.param(
            {"teams": [{"id": "PTEAM99", "summary": "Other"}]},
            ["the service lists team(s) Other, not its escalation policy's; a stack file's "
             "service shows its policy's team"],
            id="service-team",
        ),
        pytest.param(
            {"incident_urgency_rule": SUPPORT_HOURS, "support_hours": HOURS,
             "scheduled_actions": []},
            ["no scheduled action raises urgency when support hours start; the first `pulumi "
             "up` adds it (stack files do, for high during and low outside)"],
            id="missing-scheduled-action",
        ),
        pytest.param(
            {"scheduled_actions": [RAISE]},
            ["a scheduled action raises urgency when support hours start; the first `pulumi "
             "up` removes it (stack files have it only for high during and low outside)"],
            id="extra-scheduled-action",
        ),
        pytest.param(
            {"incident_urgency_rule": {**SUPPORT_HOURS, "outside_support_hours": {
                "type": "constant", "urgency": "high"}}, "support_hours": HOURS},
            ["support hours {'type': 'fixed_time_per_day', 'time_zone': 'UTC', 'days_of_week': "
             "[1], 'start_time': '09:00:00', 'end_time': '17:00:00'} with urgency 'high' during "
             "and 'high' outside cannot be said in a stack file; written as high all day, "
             "which the first `pulumi up` applies"],
            id="support-hours-that-change-nothing",
        ),
        pytest.param(
            {"auto_pause_notifications_parameters": {"enabled": True, "timeout": None}},
            ["auto-pause timeout None (PagerDuty's recommended) cannot be said in a stack "
             "file; written as the default, 5m"],
            id="auto-pause-recommended",
        ),
        pytest.param(
            {"alert_grouping_parameters": {"type": "intelligent",
                                           "config": {"time_window": 120}}},
            ["time window 120 s cannot be said in a stack file; written as recommended",
             GROUPS_ITSELF.format("{type: intelligent}")],
            id="grouping-window",
        ),
        pytest.param(
            {"alert_grouping_parameters": {"type": "content_based_intelligent", "config": {}}},
            ["alert grouping of type content_based_intelligent cannot be said in a stack file; "
             "written as none"],
            id="grouping-type",
        ),
        pytest.param(
            {"integrations": [
                apica_integration(),
                apica_integration("PINT002", "Apica second"),
                {"id": "PINT003", "name": "Datadog",
                 "type": "generic_events_api_inbound_integration",
                 "vendor": {"id": "PDOG001", "type": "vendor_reference"}},
            ]},
            ["other integrations stay as they are, not managed here: 'Datadog' "
             "(generic_events_api_inbound_integration)",
             "more Apica integrations, not managed here: 'Apica second' (PINT002)"],
            id="other-integrations",
        ),
        pytest.param(
            {"name": "Web\u202e"},
            ["the name 'Web\\u202e' has characters the provider refuses or trims; written as "
             "below, so the first `pulumi up` renames it"],
            id="hostile-name",
        ),
    ],
)
def test_what_a_stack_file_cannot_say_is_a_comment(
    fields: dict[str, Any], expected: list[str]
) -> None:
    imported = import_stack(account(service(**fields)))
    assert notes(imported) == expected
    written(imported)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"name": "R&D <Core> / Ops"},
            ["the name 'R&D <Core> / Ops' has characters the provider refuses or trims; "
             "written as below, so the first `pulumi up` renames it"],
            id="refused-characters",
        ),
        pytest.param(
            {"teams": [{"id": "PTEAM01"}, {"id": "PTEAM02", "name": "Ops"}]},
            ["the policy has 2 teams (Web, Ops); the stack file names one: the first"],
            id="two-teams",
        ),
        pytest.param(
            {"on_call_handoff_notifications": "always"},
            ["on-call handoff notifications: always (kept as it is)"],
            id="handoff",
        ),
        pytest.param(
            {"escalation_rules": [
                {"escalation_delay_in_minutes": 30,
                 "targets": [{"id": "PUSER01", "type": "user_reference"},
                             {"id": "PX", "type": "team_reference"}]},
                {"escalation_delay_in_minutes": 5,
                 "targets": [{"id": "PGONE01", "type": "user_reference"}]},
            ]},
            ["rule 1 also targets team_reference PX, which the stack file cannot name (users "
             "by e-mail, schedules by name)",
             "rule 2 also targets user_reference PGONE01, which the stack file cannot name "
             "(users by e-mail, schedules by name)",
             "rule 2 has no target the stack file can name; left out"],
            id="targets",
        ),
    ],
)
def test_policy_notes(fields: dict[str, Any], expected: list[str]) -> None:
    imported = import_stack(account(policies=(policy(**fields),)))
    assert notes(imported) == expected
    written(imported)


def test_a_refused_policy_name_is_cleaned() -> None:
    stack = written(import_stack(account(policies=(policy(name="R&D <Core> / Ops"),))))
    assert [p.name for p in stack.escalation_policies.values()] == ["R and D -Core- - Ops"]


def test_grouping_from_a_shared_setting() -> None:
    setting = {"id": "PAGS001", "name": "Ten minutes", "type": "time", "config": {"timeout": 600},
               "services": [{"id": "PSVC001"}, {"id": "PSVC002"}]}
    imported = import_stack(account(
        service(), service("PSVC002", "Api"),
        grouping={"PSVC001": setting, "PSVC002": setting},
    ))
    assert notes(imported) == [
        "alert grouping comes from alert grouping setting PAGS001 (Ten minutes, shared with 1 "
        "other service(s), {type: time, timeout: 10m}), left as it is; writing alert_grouping "
        "here would give the service its own setting",
    ] * 2
    assert written(imported).services["api"].alert_grouping is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("params", "written_as"),
    [
        ({"type": "time", "config": {"timeout": 90}}, "{type: time, timeout: 90m}"),
        ({"type": "intelligent", "config": None}, "{type: intelligent}"),
        ({"type": "intelligent", "config": {"time_window": 900}},
         "{type: intelligent, time_window: 15m}"),
        ({"type": "content_based", "config": {"aggregate": "any", "fields": ["source"],
                                              "time_window": 86400}},
         "{type: content_based, aggregate: any, fields: [source], time_window: 24h}"),
    ],
)
def test_alert_grouping_parameters(params: dict[str, Any], written_as: str) -> None:
    imported = import_stack(account(service(alert_grouping_parameters=params)))
    assert "    alert_grouping: none" in block_of(imported, "web")
    assert notes(imported) == [GROUPS_ITSELF.format(written_as)]
    written(imported)


def test_apica_vendors_and_integration_names() -> None:
    imported = import_stack(account(
        service(integrations=[apica_integration()]),
        service("PSVC002", "Api", integrations=[apica_integration("PINT002", "Apica api")]),
        service("PSVC003", "Old", integrations=[
            apica_integration("PINT003", "Apica-Old", vendor=OTHER_APICA)]),
    ))
    stack = written(imported)
    assert stack.apica_vendor_id == "PAPICA1"
    integrations = {key: s.integration for key, s in stack.services.items()}
    assert {key: (i.name, i.vendor_id, i.adopt) for key, i in integrations.items() if i} == {
        "web": ("Apica-Web", "PAPICA1", "PSVC001.PINT001"),
        "api": ("Apica api", "PAPICA1", "PSVC002.PINT002"),
        "old": ("Apica-Old", "PAPICA2", "PSVC003.PINT003"),
    }
    assert block_of(imported, "api")[-3:] == [
        "      name: Apica api",
        "      adopt: PSVC002.PINT002",
        "      # route ASM checks here: checks: {ids: [...], guids: [...], tags: [...]}",
    ]


@pytest.mark.parametrize(
    ("names", "keys"),
    [
        (["Checkout API", "Checkout-API", "checkout api"],
         ["checkout-api", "checkout-api-2", "checkout-api-3"]),
        (["Ünïcode Straße", "!!!", "Web (EU) / Prod"],
         ["unicode-strasse", "service", "web-eu-prod"]),
        (["a" * 80, "a" * 70], ["a" * 63, "a" * 61 + "-2"]),
    ],
)
def test_route_keys_from_names(names: list[str], keys: list[str]) -> None:
    taken: set[str] = set()
    assert [route_key(name, taken, "service") for name in names] == keys
