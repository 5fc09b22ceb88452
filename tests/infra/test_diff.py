"""infra.diff: real stack files (written to tmp_path, loaded by the real loader) compared.

Each case edits one copy of a base stack and pins which changes come out, which are
destructive, and what they say.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.diff import Change, PropertyChange, StackDiff, diff_stacks, gate
from infra.model import Stack
from infra.validate import load_stack

BASE: dict[str, Any] = {
    "escalation_policies": {
        "web-oncall": {
            "name": "Web On-call",
            "rules": [{"delay": "30m", "targets": [{"schedule": "Web Primary"}]}],
        },
        "sre": {"existing": "SRE Escalation"},
    },
    "services": {
        "checkout": {
            "name": "Checkout API",
            "escalation_policy": "web-oncall",
            "integration": {"checks": {"ids": [101, 102]}},
        },
        "search": {
            "name": "Search",
            "escalation_policy": "sre",
            "integration": {"checks": {"ids": [150]}},
        },
        "legacy": {"existing": "Legacy Web", "integration": {"checks": {"ids": [200]}}},
    },
    "catch_all": "search",
}

Edit = Callable[[dict[str, Any]], None]


def _stack(tmp_path: Path, name: str, data: dict[str, Any] | None) -> Stack | None:
    if data is None:
        return None  # the stack file does not exist on this side
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_stack(path)


def _diff(tmp_path: Path, edit: Edit) -> StackDiff:
    new = copy.deepcopy(BASE)
    edit(new)
    return diff_stacks(_stack(tmp_path, "old", BASE), _stack(tmp_path, "new", new))


def _summary(diff: StackDiff) -> list[tuple[str, str, str, bool]]:
    return [(c.kind, c.subject, c.key, c.destructive) for c in diff.changes]


def _svc(data: dict[str, Any], key: str) -> dict[str, Any]:
    return data["services"][key]


def _rename(mapping: dict[str, Any], old: str, new: str) -> None:
    items = list(mapping.items())
    mapping.clear()
    mapping.update((new if k == old else k, v) for k, v in items)


def _set(path: str, value: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return edit


def _delete(path: str) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = data
        for part in parents:
            node = node[part]
        del node[last]

    return edit


def _rename_service(data: dict[str, Any]) -> None:
    _rename(data["services"], "checkout", "checkout-api")


def _rename_policy(data: dict[str, Any]) -> None:
    _rename(data["escalation_policies"], "web-oncall", "web")
    _svc(data, "checkout")["escalation_policy"] = "web"


def _drop_policy(data: dict[str, Any]) -> None:
    del data["escalation_policies"]["web-oncall"]
    _svc(data, "checkout")["escalation_policy"] = "sre"


def _service_to_existing(data: dict[str, Any]) -> None:
    data["services"]["checkout"] = {
        "existing": "Checkout API",
        "integration": {"checks": {"ids": [101, 102]}},
    }


def _policy_to_new(data: dict[str, Any]) -> None:
    data["escalation_policies"]["sre"] = {
        "name": "SRE Escalation",
        "rules": [{"delay": "10m", "targets": [{"user": "sre@example.com"}]}],
    }


CASES: list[tuple[str, Edit, list[tuple[str, str, str, bool]]]] = [
    ("no change", lambda data: None, []),
    (
        "add a service",
        _set("services/status", {"name": "Status Page", "escalation_policy": "sre"}),
        [("add", "service", "status", False)],
    ),
    (
        "remove a service on an existing PagerDuty service",
        _delete("services/legacy"),
        [("remove", "service", "legacy", True)],
    ),
    (
        "service properties in place",
        _set("services/checkout/urgency", "high"),
        [("change", "service", "checkout", False)],
    ),
    (
        "display name in place (logical names come from keys)",
        _set("services/checkout/name", "Checkout"),
        # The integration name defaults to Apica-<name>: renamed in place too.
        [("change", "service", "checkout", False), ("change", "integration", "checkout", False)],
    ),
    (
        "route checks only",
        _set("services/checkout/integration/checks", {"ids": [101, 103]}),
        [("change", "route", "checkout", False)],
    ),
    (
        "integration vendor replaces the integration",
        _set("services/checkout/integration/vendor_id", "PAPICA2"),
        [("replace", "integration", "checkout", True)],
    ),
    (
        "stack-wide vendor replaces every integration",
        _set("apica", {"vendor_id": "PAPICA2"}),
        [
            ("replace", "integration", "checkout", True),
            ("replace", "integration", "search", True),
            ("replace", "integration", "legacy", True),
        ],
    ),
    (
        "another existing service moves the integration",
        _set("services/legacy/existing", "Legacy Web 2"),
        [("replace", "integration", "legacy", True)],
    ),
    (
        "new service switched to an existing one",
        _service_to_existing,
        [("replace", "service", "checkout", True)],
    ),
    (
        "renamed route",
        _rename_service,
        [("rename-route", "service", "checkout-api", True)],
    ),
    (
        "renamed catch-all route",
        lambda data: (_rename(data["services"], "search", "find"), _set("catch_all", "find")(data)),
        [("rename-route", "service", "find", True), ("change", "catch_all", "catch_all", False)],
    ),
    (
        "policy in place",
        _set("escalation_policies/web-oncall/loops", 2),
        [("change", "escalation_policy", "web-oncall", False)],
    ),
    (
        "policy removed, its service re-pointed",
        _drop_policy,
        [
            ("remove", "escalation_policy", "web-oncall", True),
            ("change", "service", "checkout", False),
        ],
    ),
    (
        "policy key renamed",
        _rename_policy,
        [
            ("replace", "escalation_policy", "web", True),
            ("change", "service", "checkout", False),
        ],
    ),
    (
        "existing policy now managed here",
        _policy_to_new,
        [("replace", "escalation_policy", "sre", False)],
    ),
    (
        "catch-all removed",
        _delete("catch_all"),
        [("change", "catch_all", "catch_all", False)],
    ),
    (
        "integration switched off",
        _set("services/checkout/integration", "none"),
        [("remove", "integration", "checkout", True)],
    ),
    (
        "an adopted service added",
        _set(
            "services/status",
            {"name": "Status Page", "escalation_policy": "sre", "adopt": "PSVC001",
             "integration": "none"},
        ),
        [("add", "service", "status", False)],
    ),
]


@pytest.mark.parametrize(("what", "edit", "expected"), CASES, ids=[c[0] for c in CASES])
def test_changes(tmp_path: Path, what: str, edit: Edit, expected: list[Any]) -> None:
    assert _summary(_diff(tmp_path, edit)) == expected, what


def _only(diff: StackDiff) -> Change:
    [change] = diff.changes
    return change


def test_maintenance_windows_show_as_one_line_each_by_name(tmp_path: Path) -> None:
    deploy = {"name": "deploy", "time_zone": "Europe/Berlin",
              "weekly": {"days": ["sat"], "start": "22:00", "end": "02:00"}}
    move = {"name": "move", "time_zone": "UTC", "checks": {"ids": [101]},
            "once": {"start": "2026-12-05T22:00", "end": "2026-12-06T02:00"}}
    windows = _svc(BASE, "checkout")["integration"] | {"maintenance": [deploy]}
    old = copy.deepcopy(BASE)
    _svc(old, "checkout")["integration"] = windows
    new = copy.deepcopy(old)
    later = dict(deploy, weekly={"days": ["sat", "sun"], "start": "23:00", "end": "02:00"})
    _svc(new, "checkout")["integration"]["maintenance"] = [later, move]
    change = _only(diff_stacks(_stack(tmp_path, "old", old), _stack(tmp_path, "new", new)))
    assert (change.kind, change.subject, change.destructive) == ("change", "route", False)
    assert change.properties == (
        PropertyChange("maintenance.deploy",
                       "weekly sat 22:00-02:00 (next day) Europe/Berlin, every check",
                       "weekly sat, sun 23:00-02:00 (next day) Europe/Berlin, every check"),
        PropertyChange("maintenance.move", None,
                       "once 2026-12-05 22:00 - 2026-12-06 02:00 UTC, ids 101"),
    )
    removed = _only(diff_stacks(_stack(tmp_path, "old", old), _stack(tmp_path, "new", BASE)))
    assert removed.properties == (PropertyChange(
        "maintenance.deploy", "weekly sat 22:00-02:00 (next day) Europe/Berlin, every check",
        None),)


def test_removed_service_says_what_stops_paging(tmp_path: Path) -> None:
    change = _only(_diff(tmp_path, _delete("services/legacy")))
    assert change.logical_name == "service-legacy-apica"
    assert change.reasons == (
        "deletes the Apica integration 'Apica-Legacy-Web' (service-legacy-apica) from existing "
        "service 'Legacy Web': its integration key dies and ASM alerts on /v1/asm/legacy "
        "stop paging",
    )


def test_removed_managed_service_is_deleted_and_protected(tmp_path: Path) -> None:
    diff = _diff(tmp_path, lambda d: (_delete("services/checkout")(d), _delete("catch_all")(d)))
    change = diff.changes[0]
    assert (change.kind, change.key, change.logical_name) == (
        "remove",
        "checkout",
        "service-checkout",
    )
    assert change.reasons[0].startswith(
        "deletes service 'Checkout API' (service-checkout) and its Apica integration "
        "'Apica-Checkout-API': its integration key dies"
    )
    assert change.notes == (
        "it is protected (protect: true): `pulumi up` refuses to delete it until a change "
        "setting protect: false for it has been applied",
    )


def test_in_place_properties_are_pinned(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        _svc(data, "checkout").update(urgency="high", auto_resolve_timeout="off")

    change = _only(_diff(tmp_path, edit))
    assert change.properties == (
        PropertyChange("urgency.urgency", "severity_based", "high"),
        PropertyChange("auto_resolve_timeout", 14400, None),
    )


def test_rename_carries_old_key_and_both_reasons(tmp_path: Path) -> None:
    change = _only(_diff(tmp_path, _rename_service))
    assert (change.old_key, change.key, change.allow_keys) == (
        "checkout",
        "checkout-api",
        ("checkout", "checkout-api"),
    )
    assert change.properties == (PropertyChange("key", "checkout", "checkout-api"),)
    assert change.reasons == (
        "route renamed 'checkout' -> 'checkout-api': the ASM target URL changes from "
        "/v1/asm/checkout to /v1/asm/checkout-api",
        "Pulumi deletes service-checkout and creates service-checkout-api: a new PagerDuty "
        "service with a new integration key",
    )


def test_rename_is_recognised_by_checks_when_the_name_changes_too(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        _rename_service(data)
        _svc(data, "checkout-api")["name"] = "Checkout"

    change = _only(_diff(tmp_path, edit))
    assert (change.kind, change.old_key) == ("rename-route", "checkout")
    assert PropertyChange("name", "Checkout API", "Checkout") in change.properties


def test_vendor_replacement_names_the_properties(tmp_path: Path) -> None:
    change = _only(_diff(tmp_path, _set("services/checkout/integration/vendor_id", "PAPICA2")))
    assert change.logical_name == "service-checkout-apica"
    assert change.properties == (PropertyChange("vendor_id", None, "PAPICA2"),)
    assert change.reasons == (
        "its vendor changes between a look-up by name and a fixed id (unless both are the "
        "same id): pulumi-pagerduty re-creates the integration with a new integration key; "
        "the old one stops working",
    )
    assert change.notes == (
        "it is protected (protect: true): `pulumi up` refuses to replace it until a change "
        "setting protect: false for it has been applied",
    )


def test_vendor_id_to_another_id(tmp_path: Path) -> None:
    old = copy.deepcopy(BASE)
    old["apica"] = {"vendor_id": "PAPICA1"}
    new = copy.deepcopy(old)
    new["apica"] = {"vendor_id": "PAPICA2"}
    diff = diff_stacks(_stack(tmp_path, "old", old), _stack(tmp_path, "new", new))
    assert [c.reasons for c in diff.changes] == [
        (
            "its vendor changes: pulumi-pagerduty re-creates the integration with a new "
            "integration key; the old one stops working",
        )
    ] * 3


GROUPED = {"type": "time", "timeout": "15m"}


@pytest.mark.parametrize(
    ("before", "after", "properties"),
    [
        (
            "none",
            GROUPED,
            [
                PropertyChange(
                    "alert_grouping",
                    None,
                    {
                        "type": "time",
                        "timeout": 15,
                        "time_window": None,
                        "aggregate": None,
                        "fields": [],
                    },
                )
            ],
        ),
        (
            GROUPED,
            "none",
            [
                PropertyChange(
                    "alert_grouping",
                    {
                        "type": "time",
                        "timeout": 15,
                        "time_window": None,
                        "aggregate": None,
                        "fields": [],
                    },
                    None,
                )
            ],
        ),
        (
            GROUPED,
            {"type": "time", "timeout": "until_resolved"},
            [
                PropertyChange("alert_grouping.timeout", 15, 0),
            ],
        ),
        (
            GROUPED,
            {"type": "intelligent", "time_window": "10m"},
            [
                PropertyChange("alert_grouping.type", "time", "intelligent"),
                PropertyChange("alert_grouping.timeout", 15, None),
                PropertyChange("alert_grouping.time_window", None, 600),
            ],
        ),
        (
            {"type": "content_based", "aggregate": "all", "fields": ["source"]},
            {"type": "content_based", "aggregate": "any", "fields": ["source", "component"]},
            [
                PropertyChange("alert_grouping.aggregate", "all", "any"),
                PropertyChange("alert_grouping.fields", ["source"], ["source", "component"]),
            ],
        ),
    ],
    ids=["on", "off", "until-resolved", "another-type", "content-fields"],
)
def test_alert_grouping_changes_are_never_destructive(
    tmp_path: Path, before: Any, after: Any, properties: list[PropertyChange]
) -> None:
    # Grouping is an AlertGroupingSetting beside the service: creating, changing or
    # deleting it keeps the service, its integration and its key.
    old = copy.deepcopy(BASE)
    _svc(old, "checkout")["alert_grouping"] = before
    new = copy.deepcopy(old)
    _svc(new, "checkout")["alert_grouping"] = after
    diff = diff_stacks(_stack(tmp_path, "old", old), _stack(tmp_path, "new", new))
    change = _only(diff)
    assert (change.kind, change.subject, change.destructive) == ("change", "service", False)
    assert list(change.properties) == properties
    assert gate(diff).ok


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        (
            {},
            {"type": "events_api_v2"},
            "it changes from the Apica vendor's integration to a plain Events API v2 "
            "integration",
        ),
        (
            {"type": "events_api_v2"},
            {"vendor_id": "PAPICA2"},
            "it changes from a plain Events API v2 integration to the Apica vendor's "
            "integration",
        ),
    ],
    ids=["to-events-api-v2", "to-apica"],
)
def test_integration_type_change_replaces_the_integration(
    tmp_path: Path, before: dict[str, Any], after: dict[str, Any], reason: str
) -> None:
    old = copy.deepcopy(BASE)
    _svc(old, "checkout")["integration"].update(before)
    new = copy.deepcopy(old)
    _svc(new, "checkout")["integration"] = {"checks": {"ids": [101, 102]}, **after}
    diff = diff_stacks(_stack(tmp_path, "old", old), _stack(tmp_path, "new", new))
    change = _only(diff)
    assert (change.kind, change.subject, change.key, change.destructive) == (
        "replace",
        "integration",
        "checkout",
        True,
    )
    # The vendor's coming or going is the type change itself: not listed on its own.
    assert change.properties == (
        PropertyChange("type", before.get("type", "apica"), after.get("type", "apica")),
    )
    assert change.reasons == (
        f"{reason}: pulumi-pagerduty re-creates the integration with a new integration key; "
        "the old one stops working",
    )
    assert not gate(diff).ok
    assert gate(diff, allow_keys=["checkout"]).ok


def test_existing_service_switch_moves_the_integration(tmp_path: Path) -> None:
    change = _only(_diff(tmp_path, _set("services/legacy/existing", "Legacy Web 2")))
    assert change.properties[0] == PropertyChange("service.name", "Legacy Web", "Legacy Web 2")
    assert change.reasons[0].startswith("the integration moves to existing service")
    assert change.notes == ()  # an existing service's integration is never protected


@pytest.mark.parametrize(
    ("catch_all", "note"),
    [
        (
            "search",
            "check id 102 is no longer routed to any service: an alert for it sent to "
            "/v1/asm goes to the catch-all route 'search'",
        ),
        (
            None,
            "check id 102 is no longer routed to any service: an alert for it sent to "
            "/v1/asm is refused by the bridge (no catch-all route)",
        ),
    ],
)
def test_unrouted_checks_are_noted(tmp_path: Path, catch_all: str | None, note: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        _svc(data, "checkout")["integration"]["checks"] = {"ids": [101]}
        if catch_all is None:
            del data["catch_all"]

    route = next(c for c in _diff(tmp_path, edit).changes if c.subject == "route")
    assert route.properties == (PropertyChange("check_ids", [101, 102], [101]),)
    assert route.notes[0] == note


def test_check_moved_to_another_route_is_not_unrouted(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        _svc(data, "checkout")["integration"]["checks"] = {"ids": [101]}
        _svc(data, "search")["integration"]["checks"] = {"ids": [150, 102]}

    diff = _diff(tmp_path, edit)
    assert [c.notes for c in diff.changes] == [
        ("routes file only: takes effect on the bridge after `apica-pd routes pull`",)
    ] * 2


@pytest.mark.parametrize(
    ("old", "new", "kinds"),
    [
        (None, BASE, {"add", "change"}),  # a new stack file: additions (and its catch-all)
        (BASE, None, {"remove", "change"}),  # a deleted stack file: removals
    ],
    ids=["stack file added", "stack file deleted"],
)
def test_whole_stack_file_added_or_deleted(
    tmp_path: Path, old: dict[str, Any] | None, new: dict[str, Any] | None, kinds: set[str]
) -> None:
    diff = diff_stacks(_stack(tmp_path, "old", old), _stack(tmp_path, "new", new))
    assert {c.kind for c in diff.changes} == kinds
    assert len(diff.changes) == 6  # 2 policies, 3 services, the catch-all
    # Deleting the file destroys the managed policy and all three routes.
    assert len(diff.destructive) == (0 if old is None else 4)


def test_added_service_lists_set_properties_only(tmp_path: Path) -> None:
    change = _only(
        _diff(
            tmp_path,
            _set(
                "services/status",
                {"name": "Status Page", "escalation_policy": "sre", "protect": False},
            ),
        )
    )
    paths = [p.path for p in change.properties]
    assert paths == [
        "name",
        "escalation_policy",
        "urgency.type",
        "urgency.urgency",
        "auto_resolve_timeout",
        "acknowledgement_timeout",
        "protect",
        "integration.name",
        "integration.type",
        "severity_map",
    ]
    assert change.notes == ("new route: set up an ASM webhook target for /v1/asm/status",)


# -- the safety gate ---------------------------------------------------------------------


def _mixed(tmp_path: Path) -> StackDiff:
    def edit(data: dict[str, Any]) -> None:
        del data["services"]["legacy"]
        _rename_service(data)
        _svc(data, "search")["urgency"] = "low"

    return _diff(tmp_path, edit)


GATES = [
    # (allow_all, allow_keys, blocked keys, allowed keys, unused)
    (False, (), ["checkout-api", "legacy"], [], []),
    (True, (), [], ["checkout-api", "legacy"], []),
    (False, ("legacy",), ["checkout-api"], ["legacy"], []),
    (False, ("checkout", "legacy"), [], ["checkout-api", "legacy"], []),  # old key of a rename
    (False, ("checkout-api", "legacy"), [], ["checkout-api", "legacy"], []),  # or the new key
    (False, ("legacy", "search", "gone"), ["checkout-api"], ["legacy"], ["search", "gone"]),
]


@pytest.mark.parametrize(("allow_all", "keys", "blocked", "allowed", "unused"), GATES)
def test_gate(
    tmp_path: Path,
    allow_all: bool,
    keys: tuple[str, ...],
    blocked: list[str],
    allowed: list[str],
    unused: list[str],
) -> None:
    verdict = gate(_mixed(tmp_path), allow_all=allow_all, allow_keys=keys)
    assert [c.key for c in verdict.blocked] == blocked
    assert [c.key for c in verdict.allowed] == allowed
    assert list(verdict.unused) == unused
    assert verdict.ok is (not blocked)


def test_gate_passes_a_diff_without_destruction(tmp_path: Path) -> None:
    verdict = gate(_diff(tmp_path, _set("services/checkout/urgency", "low")))
    assert (verdict.ok, verdict.blocked, verdict.allowed) == (True, (), ())


def test_added_policy_lists_each_rules_targets_as_one_value(tmp_path: Path) -> None:
    policy = {
        "name": "Night",
        "rules": [{"delay": "5m", "targets": [{"user": "a@example.com"}, {"schedule": "N"}]}],
    }
    change = _only(_diff(tmp_path, _set("escalation_policies/night", policy)))
    assert change.properties == (
        PropertyChange("name", None, "Night"),
        PropertyChange("num_loops", None, 0),
        PropertyChange("protect", None, True),
        PropertyChange("rules[1].delay_minutes", None, 5),
        PropertyChange("rules[1].assignment", None, "assign_to_everyone"),
        PropertyChange(
            "rules[1].targets",
            None,
            [{"type": "user", "ref": "a@example.com"}, {"type": "schedule", "ref": "N"}],
        ),
    )


def test_an_integration_added_to_a_service_without_one(tmp_path: Path) -> None:
    old = copy.deepcopy(BASE)
    _svc(old, "checkout")["integration"] = "none"
    change = _only(diff_stacks(_stack(tmp_path, "old", old), _stack(tmp_path, "new", BASE)))
    assert (change.kind, change.subject, change.logical_name, change.destructive) == (
        "add", "integration", "service-checkout-apica", False,
    )
    assert PropertyChange("check_ids", None, [101, 102]) in change.properties
    assert change.notes == ("new route: set up an ASM webhook target for /v1/asm/checkout",)


def test_switching_an_integration_off_says_what_stops_paging(tmp_path: Path) -> None:
    change = _only(_diff(tmp_path, _set("services/checkout/integration", "none")))
    assert change.reasons == (
        "deletes the Apica integration 'Apica-Checkout-API' (service-checkout-apica): its "
        "integration key dies and ASM alerts on /v1/asm/checkout stop paging",
    )


def test_removing_a_service_without_integration_kills_no_key(tmp_path: Path) -> None:
    old = copy.deepcopy(BASE)
    _svc(old, "checkout")["integration"] = "none"
    new = copy.deepcopy(old)
    del new["services"]["checkout"]
    change = _only(diff_stacks(_stack(tmp_path, "old", old), _stack(tmp_path, "new", new)))
    assert change.reasons == ("deletes service 'Checkout API' (service-checkout) from PagerDuty",)


def test_adopted_additions_say_they_are_imported(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["services"]["status"] = {
            "name": "Status Page", "escalation_policy": "sre", "adopt": "PSVC001",
            "integration": {"adopt": "PSVC001.PINT001"},
        }

    change = _only(_diff(tmp_path, edit))
    assert change.notes == (
        "adopts the existing service PSVC001 as it is: `pulumi up` imports it instead of "
        "creating one",
        "adopts the existing Apica integration PSVC001.PINT001 as it is: `pulumi up` imports "
        "it instead of creating one",
        "new route: set up an ASM webhook target for /v1/asm/status",
    )
    assert "adopt" not in {p.path for p in change.properties}


def test_adopt_set_on_a_managed_policy_is_a_note_not_a_property(tmp_path: Path) -> None:
    change = _only(_diff(tmp_path, _set("escalation_policies/web-oncall/adopt", "PPOL001")))
    assert (change.kind, change.properties) == ("change", ())
    assert change.notes == (
        "escalation policy adopt set to PPOL001: Pulumi imports only what the stack does not "
        "manage yet; for a resource already in its state the id must be the one it has",
    )
