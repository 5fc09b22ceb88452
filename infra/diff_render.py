"""Show a `StackDiff` to people: plain text, Markdown (PR comment / job summary), JSON.

Pure: data in, a string out. Values are shown in the stack file's own words
(`4h`, `off`, `notify all`, `mon-fri`) rather than the resolved model's seconds
and PagerDuty enums, because the reviewer reads them next to the YAML they edited;
never raw: each line is escaped (`infra.messages.escape`), JSON escapes by itself.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.maintenance import WEEKDAYS
from infra.change_budget import BUDGET_WORDS, FIELD, FLAG, BudgetCheck, BudgetVerdict
from infra.diff import Change, GateResult, PropertyChange, StackDiff, allow_hint
from infra.messages import escape

JSON_VERSION = 1
# GitHub refuses comments over 65,536 characters; leave room for the marker.
MARKDOWN_LIMIT = 60_000

_VERB = {
    "add": "add",
    "remove": "REMOVE",
    "change": "change",
    "replace": "REPLACE",
    "rename-route": "RENAME ROUTE",
}
_SYMBOL = {"add": "+", "remove": "-", "change": "~", "replace": "-/+", "rename-route": "->"}
_SUBJECT = {
    "escalation_policy": "escalation policy",
    "service": "service",
    "integration": "integration",
    "route": "route",
    "catch_all": "catch-all route",
}
_ASM = {"F": "fatal", "E": "error", "W": "warning", "I": "info"}

# Path (indices as []) -> label. Unknown paths fall back to the path in words.
_LABELS = {
    "key": "key",
    "name": "name",
    "description": "description",
    "escalation_policy": "escalation policy",
    "urgency.type": "urgency rule",
    "urgency.urgency": "urgency",
    "urgency.during_support_hours": "urgency during support hours",
    "urgency.outside_support_hours": "urgency outside support hours",
    "urgency.support_hours": "support hours",
    "urgency.support_hours.time_zone": "support hours: time zone",
    "urgency.support_hours.days_of_week": "support hours: days",
    "urgency.support_hours.start_time": "support hours: start",
    "urgency.support_hours.end_time": "support hours: end",
    "urgency.raise_at_support_hours_start": "raise urgency to high when support hours start",
    "auto_resolve_timeout": "auto-resolve timeout",
    "acknowledgement_timeout": "acknowledgement timeout",
    "alert_grouping": "alert grouping",
    "alert_grouping.type": "alert grouping",
    "alert_grouping.timeout": "alert grouping: window",
    "alert_grouping.time_window": "alert grouping: window",
    "alert_grouping.aggregate": "alert grouping: match",
    "alert_grouping.fields": "alert grouping: fields",
    "auto_pause_timeout": "auto-pause transient alerts",
    "team": "team",
    "protect": "protect",
    "integration.name": "integration name",
    "integration.vendor_id": "integration vendor",
    "integration.type": "integration type",
    "vendor_id": "vendor",
    "service.name": "existing service",
    "check_ids": "check ids",
    "check_guids": "check GUIDs",
    "check_tags": "check tags",
    "severity_map": "severity map",
    "links": "links",
    "links[]": "link {0}",
    "links[].href": "link {0}: URL",
    "links[].text": "link {0}: text",
    "num_loops": "loops",
    "rules": "rules",
    "rules[]": "rule {0}",
    "rules[].delay_minutes": "rule {0}: escalate after",
    "rules[].assignment": "rule {0}: assignment",
    "rules[].targets": "rule {0}: targets",
    "rules[].targets[]": "rule {0}: target {1}",
    "rules[].targets[].type": "rule {0}: target {1} kind",
    "rules[].targets[].ref": "rule {0}: target {1}",
    "catch_all": "catch-all route",
}
_SECONDS = {"auto_resolve_timeout", "acknowledgement_timeout", "auto_pause_timeout"}
_INTEGRATION_TYPES = {"apica": "Apica vendor", "events_api_v2": "Events API v2"}
_INDEX = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Labels:
    """What is compared: the stack file and the two sides, as the reviewer named them."""

    file: str
    old: str
    new: str


# -- values ----------------------------------------------------------------------------


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _label(path: str) -> str:
    indices = _INDEX.findall(path)
    template = _LABELS.get(_INDEX.sub("[]", path))
    if template is None:
        if path.startswith("severity_map."):
            letter = path.rsplit(".", 1)[1]
            return f"ASM {letter} ({_ASM.get(letter, '?')}) pages as"
        if path.startswith("integration."):
            return "integration " + _label(path.removeprefix("integration."))
        return _INDEX.sub(r" \1", path).replace("_", " ").replace(".", ": ")
    return template.format(*indices)


def _value(path: str, value: Any) -> str:
    """One value in the stack file's words."""
    leaf = _INDEX.sub("[]", path)
    if leaf in _SECONDS:
        return "off" if value is None else _duration(int(value))
    if leaf == "alert_grouping.timeout" and isinstance(value, int):
        return "until resolved" if value == 0 else _duration(value * 60)
    if leaf == "alert_grouping.time_window" and isinstance(value, int):
        return "recommended" if value == 0 else _duration(value)
    if leaf == "alert_grouping" and value is None:
        return "none"
    if leaf == "rules[].delay_minutes" and isinstance(value, int):
        return _duration(value * 60)
    if leaf in ("type", "integration.type") and isinstance(value, str):
        return _INTEGRATION_TYPES.get(value, value)  # the integration's: no other "type" leaf
    if leaf.endswith("vendor_id") and value is None:
        return 'looked up by name ("Apica")'
    if leaf == "urgency.support_hours.days_of_week" and isinstance(value, list):
        return ", ".join(WEEKDAYS[day - 1] for day in value if 1 <= day <= 7)
    if leaf == "check_tags" and isinstance(value, list):
        return ", ".join(f'"{tag}"' for tag in value) if value else "(none)"
    if leaf.endswith("assignment"):
        return {"assign_to_everyone": "notify all", "round_robin": "round robin"}.get(value, value)
    if leaf.endswith("start_time") or leaf.endswith("end_time"):
        return str(value)[:5]
    return _plain(value)


def _plain(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        if set(value) == {"href", "text"}:
            return f"{value['text']} <{value['href']}>"
        if set(value) == {"type", "ref"}:
            return f"{value['type']} {value['ref']}"
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items() if v not in (None, [], ""))
    if isinstance(value, list | tuple):
        return ", ".join(_plain(item) for item in value) if value else "(none)"
    return str(value)


def describe(change: Change, prop: PropertyChange) -> str:
    """One property change as a line a reviewer reads: `urgency: severity_based -> high`."""
    label = _label(prop.path)
    if change.kind == "add":
        return f"{label}: {_value(prop.path, prop.new)}"
    old, new = prop.old, prop.new
    if isinstance(old, list) and isinstance(new, list):
        added = [item for item in new if item not in old]
        removed = [item for item in old if item not in new]
        parts = []
        if added:
            parts.append("added " + _value(prop.path, added))
        if removed:
            parts.append("removed " + _value(prop.path, removed))
        if parts:
            return f"{label}: {'; '.join(parts)}"
        return f"{label}: reordered to {_value(prop.path, new)}"
    return f"{label}: {_value(prop.path, old)} -> {_value(prop.path, new)}"


def _title(change: Change) -> str:
    subject = _SUBJECT[change.subject]
    key = change.key if change.old_key is None else f"{change.old_key} -> {change.key}"
    if change.subject == "catch_all":
        return f"{_VERB[change.kind]} {subject}"
    where = f" ({change.logical_name})" if change.logical_name else ""
    return f'{_VERB[change.kind]} {subject} {key} "{change.name}"{where}'


def _counts(diff: StackDiff) -> str:
    counted = Counter(change.kind for change in diff.changes)
    order = ("add", "remove", "change", "replace", "rename-route")
    parts = [f"{counted[k]} {k}" for k in order if counted[k]]
    total = len(diff.changes)
    noun = "change" if total == 1 else "changes"
    return f"{total} {noun} ({', '.join(parts)}), {len(diff.destructive)} destructive"


def gate_lines(gate: GateResult, labels: Labels) -> list[str]:
    """The safety gate's verdict and, when it blocks, exactly how to allow the change."""
    if gate.ok:
        allowed = len(gate.allowed)
        lines = [
            f"Safety gate: passed ({allowed} destructive change"
            f"{'' if allowed == 1 else 's'} allowed)."
            if allowed
            else "Safety gate: passed (nothing destructive)."
        ]
    else:
        keys = allow_hint(gate.blocked)
        count = len(gate.blocked)
        lines = [
            f"Safety gate: BLOCKED: {count} destructive change{'' if count == 1 else 's'} "
            "not allowed.",
            f"To allow {'it' if count == 1 else 'them'}, list the key"
            f"{'' if len(keys) == 1 else 's'} in {labels.file}:",
            f"    allow_destroy: [{', '.join(keys)}]",
            "or pass --allow-destroy to `apica-pd diff` to allow every destructive change.",
        ]
    if gate.unused:
        lines.append(
            f"Note: allow_destroy lists {', '.join(gate.unused)}, which this change does not "
            "destroy: remove stale entries once the change is applied."
        )
    return lines


def budget_lines(budget: BudgetVerdict, labels: Labels) -> list[str]:
    """The change budget's verdict: what tripped (counts and limits) and how to allow it."""
    tripped = budget.tripped
    if not tripped:
        applying = [check for check in budget.checks if check.applies]
        if applying:
            measured = "; ".join(
                f"{BUDGET_WORDS[c.name][0]} {c.changed} of {c.existing} "
                f"({c.share:.1f}%, at most {c.limit}%)"
                for c in applying
            )
            lines = [f"Change budget: within budget ({measured})."]
        else:
            least = min(check.min_existing for check in budget.checks)
            lines = [
                f"Change budget: not applied (budgets apply from {least} existing services, "
                "routed checks or escalation policies)."
            ]
        if budget.stale_allow:
            lines.append(
                f"Note: {labels.file} sets {FIELD}: true, but this change is within budget: "
                "remove it once the change is applied."
            )
        return lines
    details = [f"  - {_tripped(check)}" for check in tripped]
    if budget.allowed_by is not None:
        by = f"{FIELD}: true in {labels.file}" if budget.allowed_by == FIELD else FLAG
        return [f"Change budget: exceeded, allowed by {by}:", *details]
    fields = ", ".join(f"`change_budget.{check.name}`" for check in tripped)
    return [
        f"Change budget: BLOCKED: this change exceeds the change budget of {labels.file}:",
        *details,
        f"If the mass change is meant, set `{FIELD}: true` in {labels.file} for it (remove "
        f"it once applied), raise {fields} there, or pass {FLAG} to `apica-pd diff`.",
    ]


def _tripped(check: BudgetCheck) -> str:
    what, among = BUDGET_WORDS[check.name]
    return (
        f"{what}: {check.changed} of {check.existing} {among} ({check.share:.1f}%), "
        f"more than the budget of {check.limit}%"
    )


def verdict_lines(
    gate: GateResult | None, budget: BudgetVerdict | None, labels: Labels
) -> list[str]:
    """The gate's lines, then the budget's (for `--check`)."""
    lines = gate_lines(gate, labels) if gate is not None else []
    return lines + (budget_lines(budget, labels) if budget is not None else [])


# -- text ------------------------------------------------------------------------------


def render_text(
    diff: StackDiff,
    labels: Labels,
    gate: GateResult | None = None,
    budget: BudgetVerdict | None = None,
) -> str:
    """Plain text for a terminal."""
    lines = [f"{labels.file}: {labels.old} -> {labels.new}"]
    if not diff.changes:
        lines.append("No changes.")
    else:
        lines.append(_counts(diff))
        for change in diff.changes:
            flag = "!" if change.destructive else " "
            lines.append("")
            lines.append(f"{flag} {_SYMBOL[change.kind]} {_title(change)}")
            lines.extend(f"      ! {reason}" for reason in change.reasons)
            lines.extend(f"      {describe(change, prop)}" for prop in change.properties)
            lines.extend(f"      note: {note}" for note in change.notes)
    if gate is not None or budget is not None:
        lines.append("")
        lines.extend(verdict_lines(gate, budget, labels))
    return "\n".join(escape(line) for line in lines) + "\n"


# -- Markdown --------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\*_\[\]|~])")


def _md(text: str) -> str:
    """Inline Markdown: `code spans` kept, the rest escaped, arrows drawn."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans at all
        parts = [text.replace("`", "'")]
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            out.append(f"`{part}`")
        else:
            part = _MD_SPECIAL.sub(r"\\\1", part).replace("&", "&amp;").replace("<", "&lt;")
            out.append(part.replace(" -> ", " → "))
    return "".join(out)


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def marker(file: str) -> str:
    """The comment's first line: finds the comment again to update it in place."""
    return f"<!-- apica-pd diff: {file.replace('--', '- -')} -->"


def render_markdown(
    diff: StackDiff,
    labels: Labels,
    gate: GateResult | None = None,
    budget: BudgetVerdict | None = None,
) -> str:
    """Markdown for a pull-request comment or a job summary; first line is `marker()`."""
    head = [
        marker(labels.file),
        f"### PagerDuty changes in {_code(labels.file)}",
        "",
        f"{_code(labels.old)} → {_code(labels.new)}: "
        + (_counts(diff) if diff.changes else "no changes."),
        "",
    ]
    if gate is not None:
        head += _callout(gate.ok, gate_lines(gate, labels))
    if budget is not None:
        head += _callout(budget.ok, budget_lines(budget, labels))
    body: list[str] = []
    for change in diff.changes:
        icon = "⚠️ " if change.destructive else ""
        body.append(f"- {icon}**{_md(_title(change))}**")
        body.extend(f"  - ⚠️ {_md(reason)}" for reason in change.reasons)
        body.extend(f"  - {_md(describe(change, prop))}" for prop in change.properties)
        body.extend(f"  - _note:_ {_md(note)}" for note in change.notes)
    text = "\n".join(escape(line) for line in head + body) + "\n"
    if len(text) > MARKDOWN_LIMIT:
        cut = text[:MARKDOWN_LIMIT].rsplit("\n", 1)[0]
        text = (
            cut + "\n\n_(cut: the diff is too long for one comment; run `apica-pd diff` "
            "locally or read the job log for all of it)_\n"
        )
    return text


def _callout(ok: bool, verdict: list[str]) -> list[str]:
    """A GitHub alert block: the verdict's first line bold, snippets as code."""
    lines = [f"> [!{'NOTE' if ok else 'CAUTION'}]", f"> **{_md(verdict[0])}**"]
    for line in verdict[1:]:
        lines.append("> " + (_code(line.strip()) if line.startswith("    ") else _md(line)))
    return [*lines, ""]


# -- JSON ------------------------------------------------------------------------------


def to_data(
    diff: StackDiff,
    labels: Labels,
    gate: GateResult | None = None,
    budget: BudgetVerdict | None = None,
) -> dict[str, Any]:
    """The diff as JSON-ready data (stable keys; values as in the resolved model)."""
    data: dict[str, Any] = {
        "version": JSON_VERSION,
        "file": labels.file,
        "old": labels.old,
        "new": labels.new,
        "summary": {
            "changes": len(diff.changes),
            "destructive": len(diff.destructive),
        },
        "changes": [_change_data(change) for change in diff.changes],
    }
    if gate is not None:
        data["gate"] = {
            "ok": gate.ok,
            "blocked": [_ref(c) for c in gate.blocked],
            "allowed": [_ref(c) for c in gate.allowed],
            "unused_allow_destroy": list(gate.unused),
            "allow_destroy_needed": allow_hint(gate.blocked),
        }
    if budget is not None:
        data["budget"] = {
            "ok": budget.ok,
            "allowed_by": budget.allowed_by,
            "checks": [
                {
                    "name": check.name,
                    "changed": check.changed,
                    "existing": check.existing,
                    "limit_percent": check.limit,
                    "min_existing": check.min_existing,
                    "applies": check.applies,
                    "tripped": check.tripped,
                }
                for check in budget.checks
            ],
        }
    return data


def render_json(
    diff: StackDiff,
    labels: Labels,
    gate: GateResult | None = None,
    budget: BudgetVerdict | None = None,
) -> str:
    return json.dumps(to_data(diff, labels, gate, budget), indent=2) + "\n"


def _ref(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "subject": change.subject,
        "key": change.key,
        "old_key": change.old_key,
    }


def _change_data(change: Change) -> dict[str, Any]:
    return {
        **_ref(change),
        "name": change.name,
        "logical_name": change.logical_name,
        "destructive": change.destructive,
        "reasons": list(change.reasons),
        "notes": list(change.notes),
        "properties": [
            {"path": p.path, "old": p.old, "new": p.new, "text": describe(change, p)}
            for p in change.properties
        ],
    }


def render(
    fmt: str,
    diff: StackDiff,
    labels: Labels,
    gate: GateResult | None = None,
    budget: BudgetVerdict | None = None,
) -> str:
    """`fmt` is text, markdown or json."""
    renderers = {"text": render_text, "markdown": render_markdown, "json": render_json}
    return renderers[fmt](diff, labels, gate, budget)
