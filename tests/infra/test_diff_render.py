"""infra.diff_render: values in the stack file's words, and the three output forms pinned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.diff import Change, PropertyChange, StackDiff, diff_stacks, gate
from infra.diff_render import (
    MARKDOWN_LIMIT,
    Labels,
    describe,
    marker,
    render,
    render_json,
    render_markdown,
    render_text,
)
from infra.model import Stack
from infra.validate import load_stack

LABELS = Labels("stacks/prod.yaml", "origin/main", "working tree")

OLD = {
    "escalation_policies": {
        "web-oncall": {
            "name": "Web On-call",
            "rules": [{"delay": "30m", "targets": [{"schedule": "Web Primary"}]}],
        },
    },
    "services": {
        "checkout": {
            "name": "Checkout API",
            "escalation_policy": "web-oncall",
            "integration": {"checks": {"ids": [101, 102]}},
        },
        "legacy": {"existing": "Legacy Web", "integration": {"checks": {"ids": [200]}}},
    },
}
NEW = {
    "escalation_policies": OLD["escalation_policies"],
    "services": {
        "checkout": {
            "name": "Checkout API",
            "escalation_policy": "web-oncall",
            "urgency": "high",
            "integration": {"checks": {"ids": [101, 103]}},
        },
    },
}


def _load(tmp_path: Path, name: str, data: dict[str, Any]) -> Stack:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_stack(path)


@pytest.fixture
def diff(tmp_path: Path) -> StackDiff:
    return diff_stacks(_load(tmp_path, "old", OLD), _load(tmp_path, "new", NEW))


def _change(kind: str = "change", subject: str = "service") -> Change:
    return Change(kind, subject, "checkout", "Checkout API", "service-checkout")  # type: ignore[arg-type]


DESCRIBE = [
    # (path, old, new, line)
    ("auto_resolve_timeout", 14400, None, "auto-resolve timeout: 4h -> off"),
    ("acknowledgement_timeout", 1800, 90, "acknowledgement timeout: 30m -> 90s"),
    ("auto_pause_timeout", None, 300, "auto-pause transient alerts: off -> 5m"),
    ("alert_grouping.timeout", 15, 0, "alert grouping: window: 15m -> until resolved"),
    ("alert_grouping.time_window", 0, 3600, "alert grouping: window: recommended -> 1h"),
    (
        "alert_grouping",
        None,
        {"type": "time", "timeout": 15, "fields": []},
        "alert grouping: none -> type time, timeout 15",
    ),
    ("urgency.urgency", "severity_based", "high", "urgency: severity_based -> high"),
    (
        "urgency.support_hours.days_of_week",
        [1, 2, 3],
        [1, 2, 3, 4, 5],
        "support hours: days: added thu, fri",
    ),
    (
        "urgency.support_hours.start_time",
        "09:00:00",
        "08:30:00",
        "support hours: start: 09:00 -> 08:30",
    ),
    ("rules[2].delay_minutes", 30, 15, "rule 2: escalate after: 30m -> 15m"),
    (
        "rules[1].assignment",
        "assign_to_everyone",
        "round_robin",
        "rule 1: assignment: notify all -> round robin",
    ),
    (
        "rules[1].targets[2].ref",
        "a@example.com",
        "b@example.com",
        "rule 1: target 2: a@example.com -> b@example.com",
    ),
    ("rules", [{"delay_minutes": 1}], [], "rules: removed delay_minutes 1"),
    (
        "rules[1].targets",
        [{"type": "user", "ref": "a@example.com"}],
        [{"type": "user", "ref": "a@example.com"}, {"type": "schedule", "ref": "Night"}],
        "rule 1: targets: added schedule Night",
    ),
    ("check_tags", ["Team: A"], ["Team: A", "Env: Prod"], 'check tags: added "Env: Prod"'),
    ("num_loops", 0, 2, "loops: 0 -> 2"),
    ("vendor_id", None, "PAPICA2", 'vendor: looked up by name ("Apica") -> PAPICA2'),
    ("type", "apica", "events_api_v2", "type: Apica vendor -> Events API v2"),
    ("integration.type", None, "events_api_v2", "integration type: (none) -> Events API v2"),
    ("check_ids", [101, 102], [101, 103], "check ids: added 103; removed 102"),
    ("check_tags", ["A", "B"], ["B", "A"], 'check tags: reordered to "B", "A"'),
    ("severity_map.W", "warning", "error", "ASM W (warning) pages as: warning -> error"),
    (
        "links[1].href",
        "https://a.example",
        "https://b.example",
        "link 1: URL: https://a.example -> https://b.example",
    ),
    (
        "links",
        [],
        [{"href": "https://r.example", "text": "Runbook"}],
        "links: added Runbook <https://r.example>",
    ),
    ("protect", True, False, "protect: yes -> no"),
    ("team", None, "Payments", "team: (none) -> Payments"),
    ("integration.name", "Apica-A", "Apica-B", "integration name: Apica-A -> Apica-B"),
    ("some_new_field.x", 1, 2, "some new field: x: 1 -> 2"),
]


@pytest.mark.parametrize(("path", "old", "new", "line"), DESCRIBE, ids=[d[0] for d in DESCRIBE])
def test_describe(path: str, old: Any, new: Any, line: str) -> None:
    assert describe(_change(), PropertyChange(path, old, new)) == line


def test_describe_an_addition_shows_only_the_value() -> None:
    prop = PropertyChange("severity_map", None, {"F": "critical", "W": "warning"})
    assert describe(_change("add"), prop) == "severity map: F critical, W warning"


TEXT = """\
stacks/prod.yaml: origin/main -> working tree
3 changes (1 remove, 2 change), 1 destructive

  ~ change service checkout "Checkout API" (service-checkout)
      urgency: severity_based -> high

  ~ change route checkout "Checkout API"
      check ids: added 103; removed 102
      note: check id 102 is no longer routed to any service: an alert for it sent to /v1/asm \
is refused by the bridge (no catch-all route)
      note: routes file only: takes effect on the bridge after `apica-pd routes pull`

! - REMOVE service legacy "Legacy Web" (service-legacy-apica)
      ! deletes the Apica integration 'Apica-Legacy-Web' (service-legacy-apica) from existing \
service 'Legacy Web': its integration key dies and ASM alerts on /v1/asm/legacy stop paging

Safety gate: BLOCKED: 1 destructive change not allowed.
To allow it, list the key in stacks/prod.yaml:
    allow_destroy: [legacy]
or pass --allow-destroy to `apica-pd diff` to allow every destructive change.
"""


def test_text(diff: StackDiff) -> None:
    assert render_text(diff, LABELS, gate(diff)) == TEXT


@pytest.mark.parametrize(
    ("allow_all", "keys", "tail"),
    [
        (True, (), "Safety gate: passed (1 destructive change allowed).\n"),
        (False, ("legacy",), "Safety gate: passed (1 destructive change allowed).\n"),
        (
            False,
            ("legacy", "old-thing"),
            "Safety gate: passed (1 destructive change allowed).\nNote: allow_destroy lists "
            "old-thing, which this change does not destroy: remove stale entries once the "
            "change is applied.\n",
        ),
    ],
)
def test_text_gate_passed(
    diff: StackDiff, allow_all: bool, keys: tuple[str, ...], tail: str
) -> None:
    text = render_text(diff, LABELS, gate(diff, allow_all=allow_all, allow_keys=keys))
    assert text.endswith("\n\n" + tail)


def test_text_without_changes() -> None:
    text = render_text(StackDiff(()), LABELS, gate(StackDiff(())))
    assert text == (
        "stacks/prod.yaml: origin/main -> working tree\nNo changes.\n\n"
        "Safety gate: passed (nothing destructive).\n"
    )


def test_markdown(diff: StackDiff) -> None:
    text = render_markdown(diff, LABELS, gate(diff))
    lines = text.splitlines()
    assert lines[:8] == [
        "<!-- apica-pd diff: stacks/prod.yaml -->",
        "### PagerDuty changes in `stacks/prod.yaml`",
        "",
        "`origin/main` → `working tree`: 3 changes (1 remove, 2 change), 1 destructive",
        "",
        "> [!CAUTION]",
        "> **Safety gate: BLOCKED: 1 destructive change not allowed.**",
        "> To allow it, list the key in stacks/prod.yaml:",
    ]
    assert "> `allow_destroy: [legacy]`" in lines
    assert '- **change service checkout "Checkout API" (service-checkout)**' in lines
    assert "  - urgency: severity\\_based → high" in lines
    assert '- ⚠️ **REMOVE service legacy "Legacy Web" (service-legacy-apica)**' in lines
    assert (
        "  - _note:_ routes file only: takes effect on the bridge after "
        "`apica-pd routes pull`" in lines
    )


def test_markdown_escapes_names() -> None:
    change = Change(
        "add",
        "service",
        "x",
        "A|B <script>*",
        None,
        properties=(PropertyChange("name", None, "A|B <script>*"),),
    )
    text = render_markdown(StackDiff((change,)), LABELS)
    assert '**add service x "A\\|B &lt;script>\\*"**' in text
    assert "  - name: A\\|B &lt;script>\\*" in text


def test_markdown_is_cut_below_githubs_comment_limit() -> None:
    props = tuple(PropertyChange(f"field_{i}", "x" * 50, "y" * 50) for i in range(2000))
    change = Change("change", "service", "big", "Big", None, properties=props)
    text = render_markdown(StackDiff((change,)), LABELS)
    assert len(text) <= MARKDOWN_LIMIT + 200
    assert text.endswith("run `apica-pd diff` locally or read the job log for all of it)_\n")


def test_marker_cannot_close_the_html_comment() -> None:
    assert marker("stacks/a--b.yaml") == "<!-- apica-pd diff: stacks/a- -b.yaml -->"


def test_json(diff: StackDiff) -> None:
    data = json.loads(render_json(diff, LABELS, gate(diff)))
    assert {k: data[k] for k in ("version", "file", "old", "new", "summary")} == {
        "version": 1,
        "file": "stacks/prod.yaml",
        "old": "origin/main",
        "new": "working tree",
        "summary": {"changes": 3, "destructive": 1},
    }
    assert data["gate"] == {
        "ok": False,
        "blocked": [{"kind": "remove", "subject": "service", "key": "legacy", "old_key": None}],
        "allowed": [],
        "unused_allow_destroy": [],
        "allow_destroy_needed": ["legacy"],
    }
    assert data["changes"][0]["properties"] == [
        {
            "path": "urgency.urgency",
            "old": "severity_based",
            "new": "high",
            "text": "urgency: severity_based -> high",
        },
    ]


def test_json_without_check_has_no_gate(diff: StackDiff) -> None:
    assert "gate" not in json.loads(render("json", diff, LABELS))


def test_budget_lines_follow_the_gate() -> None:
    from infra.change_budget import FLAG, BudgetCheck, BudgetVerdict

    budget = BudgetVerdict(
        (
            BudgetCheck("services_changed", 1, 40, 30, 10),
            BudgetCheck("checks_rerouted", 30, 80, 30, 10),
            BudgetCheck("policies_changed", 1, 2, 30, 10),
        ),
        allowed_by=None,
    )
    text = render_text(StackDiff(()), LABELS, gate(StackDiff(())), budget)
    assert text.endswith(
        "Safety gate: passed (nothing destructive).\n"
        "Change budget: BLOCKED: this change exceeds the change budget of stacks/prod.yaml:\n"
        "  - checks re-routed: 30 of 80 routed checks (37.5%), more than the budget of 30%\n"
        "If the mass change is meant, set `allow_mass_change: true` in stacks/prod.yaml for "
        "it (remove it once applied), raise `change_budget.checks_rerouted` there, or pass "
        "--allow-mass-change to `apica-pd diff`.\n"
    )
    allowed = BudgetVerdict(budget.checks, allowed_by=FLAG)
    assert render_text(StackDiff(()), LABELS, None, allowed).endswith(
        "\nChange budget: exceeded, allowed by --allow-mass-change:\n"
        "  - checks re-routed: 30 of 80 routed checks (37.5%), more than the budget of 30%\n"
    )
