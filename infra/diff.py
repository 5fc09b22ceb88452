"""Compare two resolved stacks: what a change adds, removes, changes and destroys.

Pure: plain data in (the JSON dump of `infra.model.Stack`, `{}` for a stack file
that does not exist on one side), a `StackDiff` out, nothing printed. Which changes
destroy something follows what Pulumi and pulumi-pagerduty will do with them:

* Logical names come from stack-file keys (`infra.plan`), so a renamed key is a
  delete plus a create, never an update.
* The provider re-creates a service integration when its `service`, `vendor` or
  `type` changes (ForceNew in terraform-provider-pagerduty, which pulumi-pagerduty
  wraps): a new integration, a new integration key, and the old key stops working.
* Services and escalation policies update in place for every property we set.
* Checks, severity map and links only reach the bridge's routes file.

`gate()` is the octoDNS-style safety check over the destructive changes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from infra.plan import integration_logical_name, policy_logical_name, service_logical_name

ChangeKind = Literal["add", "remove", "change", "replace", "rename-route"]
Subject = Literal["escalation_policy", "service", "integration", "route", "catch_all"]

# Which keys of a resolved service belong to which PagerDuty resource / the bridge.
_INTEGRATION_KEYS = ("name", "vendor_id")
_ROUTE_KEYS = ("check_ids", "check_guids", "check_tags", "severity_map", "links")
_IDENTITY_KEYS = ("key", "kind", "integration")
# Shown as one value when added (the severity map reads best as one line).
_WHOLE = frozenset({"severity_map"})


@dataclass(frozen=True)
class PropertyChange:
    """One property, by dotted path (`urgency.type`, `rules[1].delay_minutes`)."""

    path: str
    old: Any  # None: not set on that side (added, removed, or off)
    new: Any


@dataclass(frozen=True)
class Change:
    """One reviewable change of one thing in the stack file."""

    kind: ChangeKind
    subject: Subject
    key: str  # the stack-file key (the new one for renames)
    name: str  # display name a reviewer recognises
    logical_name: str | None = None  # Pulumi resource name, when there is one
    old_key: str | None = None  # set for renames
    properties: tuple[PropertyChange, ...] = ()
    destructive: bool = False
    reasons: tuple[str, ...] = ()  # what is destroyed, in words (destructive only)
    notes: tuple[str, ...] = ()  # worth knowing, not destructive

    @property
    def allow_keys(self) -> tuple[str, ...]:
        """Keys any one of which, in `allow_destroy`, allows this change."""
        return (self.key,) if self.old_key is None else (self.old_key, self.key)


@dataclass(frozen=True)
class StackDiff:
    changes: tuple[Change, ...]

    @property
    def destructive(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.destructive)


@dataclass(frozen=True)
class GateResult:
    """The safety gate's verdict: destructive changes split into allowed and blocked."""

    blocked: tuple[Change, ...]
    allowed: tuple[Change, ...]
    #: `allow_destroy` entries that allow nothing in this diff: stale, remove them.
    unused: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.blocked


def diff_stacks(old: Mapping[str, Any], new: Mapping[str, Any]) -> StackDiff:
    """Every change from `old` to `new`: policies, then services, then the catch-all."""
    old_services: Mapping[str, Any] = old.get("services") or {}
    new_services: Mapping[str, Any] = new.get("services") or {}
    changes = [
        *_diff_policies(old.get("escalation_policies") or {}, new.get("escalation_policies") or {}),
        *_diff_services(old_services, new_services, new.get("catch_all")),
        *_diff_catch_all(old.get("catch_all"), new.get("catch_all"), new_services),
    ]
    return StackDiff(tuple(changes))


def gate(diff: StackDiff, *, allow_all: bool = False, allow_keys: Iterable[str] = ()) -> GateResult:
    """Split destructive changes into allowed (by flag or `allow_destroy` key) and blocked."""
    keys = tuple(dict.fromkeys(allow_keys))
    allowed, blocked = [], []
    for change in diff.destructive:
        ok = allow_all or any(key in keys for key in change.allow_keys)
        (allowed if ok else blocked).append(change)
    used = {key for change in diff.destructive for key in change.allow_keys}
    return GateResult(tuple(blocked), tuple(allowed), tuple(k for k in keys if k not in used))


# -- escalation policies ---------------------------------------------------------------


def _diff_policies(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    removed = {k: v for k, v in old.items() if k not in new}
    added = {k: v for k, v in new.items() if k not in old}
    renames = _pair(removed, added, _same_policy)
    renamed_new = {b: a for a, b in renames.items()}
    for key, before in old.items():
        if key in new:
            changes.extend(_policy_in_place(key, before, new[key]))
        elif key in renames:
            changes.append(_policy_renamed(key, renames[key], before, new[renames[key]]))
        else:
            changes.append(_policy_removed(key, before))
    for key, after in new.items():
        if key in added and key not in renamed_new:
            changes.append(
                Change(
                    "add",
                    "escalation_policy",
                    key,
                    after["name"],
                    _policy_ln(after),
                    properties=_added(_props(after)),
                    notes=_existing_note(after, "escalation policy"),
                )
            )
    return changes


def _same_policy(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a["kind"] == b["kind"] and a["name"].casefold() == b["name"].casefold()


def _policy_ln(policy: Mapping[str, Any]) -> str | None:
    return policy_logical_name(policy["key"]) if policy["kind"] == "new" else None


def _existing_note(item: Mapping[str, Any], what: str) -> tuple[str, ...]:
    if item["kind"] != "existing":
        return ()
    return (f"uses the existing {what} {item['name']!r}, looked up by name; not managed here",)


def _policy_removed(key: str, before: Mapping[str, Any]) -> Change:
    name = before["name"]
    if before["kind"] == "existing":
        return Change(
            "remove",
            "escalation_policy",
            key,
            name,
            None,
            notes=(f"stops using existing policy {name!r}; PagerDuty keeps it",),
        )
    return Change(
        "remove",
        "escalation_policy",
        key,
        name,
        _policy_ln(before),
        destructive=True,
        reasons=(f"deletes escalation policy {name!r} ({_policy_ln(before)}) from PagerDuty",),
        notes=_protect_note(before),
    )


def _policy_renamed(
    old_key: str, key: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> Change:
    props = (PropertyChange("key", old_key, key), *_flatten(_props(before), _props(after)))
    if after["kind"] == "existing":
        return Change("change", "escalation_policy", key, after["name"], None, old_key, props)
    return Change(
        "replace",
        "escalation_policy",
        key,
        after["name"],
        _policy_ln(after),
        old_key,
        props,
        destructive=True,
        reasons=(
            f"key renamed {old_key!r} -> {key!r}: Pulumi deletes {policy_logical_name(old_key)} "
            f"and creates {policy_logical_name(key)} (a new policy with a new id)",
        ),
        notes=_protect_note(before),
    )


def _policy_in_place(key: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    props = tuple(_flatten(_props(before), _props(after)))
    name = after["name"]
    if before["kind"] == after["kind"]:
        return (
            [Change("change", "escalation_policy", key, name, _policy_ln(after), properties=props)]
            if props
            else []
        )
    if after["kind"] == "existing":
        return [
            Change(
                "replace",
                "escalation_policy",
                key,
                name,
                None,
                properties=props,
                destructive=True,
                reasons=(
                    f"deletes managed policy {before['name']!r} ({policy_logical_name(key)}); "
                    f"services use existing policy {name!r} instead",
                ),
                notes=_protect_note(before),
            )
        ]
    return [
        Change(
            "replace",
            "escalation_policy",
            key,
            name,
            _policy_ln(after),
            properties=props,
            notes=(
                f"creates policy {name!r}, managed here from now on, instead of looking up "
                f"existing policy {before['name']!r} (which PagerDuty keeps)",
            ),
        )
    ]


# -- services, their integrations and routes ----------------------------------------


def _diff_services(
    old: Mapping[str, Any], new: Mapping[str, Any], catch_all: str | None
) -> list[Change]:
    changes: list[Change] = []
    removed = {k: v for k, v in old.items() if k not in new}
    added = {k: v for k, v in new.items() if k not in old}
    renames = _pair(removed, added, _same_service)
    renamed_new = set(renames.values())
    claims = _claims(new)
    for key, before in old.items():
        if key in new:
            changes.extend(_service_in_place(key, before, new[key], claims, catch_all))
        elif key in renames:
            changes.append(_service_renamed(key, renames[key], before, new[renames[key]]))
        else:
            changes.append(_service_removed(key, before))
    for key, after in new.items():
        if key in added and key not in renamed_new:
            changes.append(_service_added(key, after))
    return changes


def _same_service(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a["kind"] == b["kind"] and a["name"].casefold() == b["name"].casefold():
        return True
    checks = _route(a)
    claimed = any(checks[k] for k in ("check_ids", "check_guids", "check_tags"))
    return claimed and {k: checks[k] for k in ("check_ids", "check_guids", "check_tags")} == {
        k: _route(b)[k] for k in ("check_ids", "check_guids", "check_tags")
    }


def _service_ln(service: Mapping[str, Any]) -> str:
    key = service["key"]
    return service_logical_name(key) if service["kind"] == "new" else integration_logical_name(key)


def _unit(service: Mapping[str, Any]) -> dict[str, Any]:
    """A service's reviewable properties: service, then integration, then route."""
    return {
        **_props(service),
        **{f"integration.{k}": v for k, v in _integration(service).items()},
        **_route(service),
    }


def _service_added(key: str, after: Mapping[str, Any]) -> Change:
    notes = [
        *_existing_note(after, "service"),
        f"new route: set up an ASM webhook target for /v1/asm/{key}",
    ]
    return Change(
        "add",
        "service",
        key,
        after["name"],
        _service_ln(after),
        properties=_added(_unit(after)),
        notes=tuple(notes),
    )


def _service_removed(key: str, before: Mapping[str, Any]) -> Change:
    name, integration = before["name"], before["integration"]["name"]
    if before["kind"] == "new":
        what = (
            f"deletes service {name!r} ({service_logical_name(key)}) and its Apica "
            f"integration {integration!r}"
        )
    else:
        what = (
            f"deletes the Apica integration {integration!r} "
            f"({integration_logical_name(key)}) from existing service {name!r}"
        )
    return Change(
        "remove",
        "service",
        key,
        name,
        _service_ln(before),
        destructive=True,
        reasons=(f"{what}: its integration key dies and ASM alerts on /v1/asm/{key} stop paging",),
        notes=_protect_note(before),
    )


def _service_renamed(
    old_key: str, key: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> Change:
    props = (PropertyChange("key", old_key, key), *_flatten(_unit(before), _unit(after)))
    reasons = [
        f"route renamed {old_key!r} -> {key!r}: the ASM target URL changes from "
        f"/v1/asm/{old_key} to /v1/asm/{key}"
    ]
    if before["kind"] == "new":
        reasons.append(
            f"Pulumi deletes {service_logical_name(old_key)} and creates "
            f"{_service_ln(after)}: a new PagerDuty service with a new integration key"
        )
    else:
        reasons.append(
            f"Pulumi re-creates the Apica integration ({integration_logical_name(old_key)} -> "
            f"{integration_logical_name(key)}): a new integration key"
        )
    return Change(
        "rename-route",
        "service",
        key,
        after["name"],
        _service_ln(after),
        old_key,
        props,
        destructive=True,
        reasons=tuple(reasons),
        notes=_protect_note(before),
    )


def _service_in_place(
    key: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    claims: Mapping[str, set[str]],
    catch_all: str | None,
) -> list[Change]:
    name = after["name"]
    if before["kind"] != after["kind"]:
        props = tuple(_flatten(_unit(before), _unit(after)))
        if after["kind"] == "existing":
            what = (
                f"deletes managed service {before['name']!r} ({service_logical_name(key)}) "
                f"and re-creates the Apica integration on existing service {name!r}"
            )
        else:
            what = (
                f"creates service {name!r} ({service_logical_name(key)}) instead of using "
                f"existing service {before['name']!r}, and re-creates the Apica "
                "integration on it"
            )
        return [
            Change(
                "replace",
                "service",
                key,
                name,
                _service_ln(after),
                properties=props,
                destructive=True,
                reasons=(f"{what}: a new integration key",),
                notes=_protect_note(before),
            )
        ]
    changes: list[Change] = []
    service_props = tuple(_flatten(_props(before), _props(after)))
    integration_props = tuple(_flatten(_integration(before), _integration(after)))
    moved = before["kind"] == "existing" and service_props  # a different existing service
    if service_props and not moved:
        changes.append(
            Change("change", "service", key, name, _service_ln(after), properties=service_props)
        )
    integration_name = after["integration"]["name"]
    vendor_changed = any(p.path == "vendor_id" for p in integration_props)
    if moved or vendor_changed:
        reasons = []
        if moved:
            reasons.append(f"the integration moves to existing service {name!r}")
        if vendor_changed and None in (
            before["integration"]["vendor_id"],
            after["integration"]["vendor_id"],
        ):
            # Offline we cannot know the looked-up id: assume the worst, say so.
            reasons.append(
                "its vendor changes between a look-up by name and a fixed id "
                "(unless both are the same id)"
            )
        elif vendor_changed:
            reasons.append("its vendor changes")
        changes.append(
            Change(
                "replace",
                "integration",
                key,
                integration_name,
                integration_logical_name(key),
                properties=(
                    *(
                        PropertyChange(f"service.{p.path}", p.old, p.new)
                        for p in service_props
                        if moved
                    ),
                    *integration_props,
                ),
                destructive=True,
                reasons=(
                    " and ".join(reasons) + ": pulumi-pagerduty re-creates the integration "
                    "with a new integration key; the old one stops working",
                ),
                # The integration of a managed service carries the service's protect flag.
                notes=_protect_note(before, "replace"),
            )
        )
    elif integration_props:
        changes.append(
            Change(
                "change",
                "integration",
                key,
                integration_name,
                integration_logical_name(key),
                properties=integration_props,
            )
        )
    route_props = tuple(_flatten(_route(before), _route(after)))
    if route_props:
        changes.append(
            Change(
                "change",
                "route",
                key,
                name,
                None,
                properties=route_props,
                notes=(
                    *_unclaimed_notes(before, after, claims, catch_all),
                    "routes file only: takes effect on the bridge after `apica-pd routes pull`",
                ),
            )
        )
    return changes


def _claims(services: Mapping[str, Any]) -> dict[str, set[str]]:
    claimed: dict[str, set[str]] = {"check_ids": set(), "check_guids": set()}
    for service in services.values():
        claimed["check_ids"].update(str(i) for i in service["integration"]["check_ids"])
        claimed["check_guids"].update(g.lower() for g in service["integration"]["check_guids"])
    return claimed


def _unclaimed_notes(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    claims: Mapping[str, set[str]],
    catch_all: str | None,
) -> list[str]:
    notes = []
    for field, label in (("check_ids", "check id"), ("check_guids", "check GUID")):
        now = {str(v).lower() for v in after["integration"][field]}
        for value in before["integration"][field]:
            text = str(value).lower()
            if text in now or text in claims[field]:
                continue
            fate = (
                f"goes to the catch-all route {catch_all!r}"
                if catch_all
                else "is refused by the bridge (no catch-all route)"
            )
            notes.append(
                f"{label} {value} is no longer routed to any service: an alert for it "
                f"sent to /v1/asm {fate}"
            )
    return notes


def _diff_catch_all(old: str | None, new: str | None, services: Mapping[str, Any]) -> list[Change]:
    if old == new:
        return []
    notes = (
        ()
        if new
        else (
            "checks that no route claims are refused by the bridge instead of "
            f"paging through {old!r}",
        )
    )
    name = services[new]["name"] if new in services else "(none)"
    return [
        Change(
            "change",
            "catch_all",
            "catch_all",
            name,
            None,
            properties=(PropertyChange("catch_all", old, new),),
            notes=notes,
        )
    ]


# -- helpers ---------------------------------------------------------------------------


def _props(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _IDENTITY_KEYS}


def _integration(service: Mapping[str, Any]) -> dict[str, Any]:
    return {k: service["integration"][k] for k in _INTEGRATION_KEYS}


def _route(service: Mapping[str, Any]) -> dict[str, Any]:
    return {k: service["integration"][k] for k in _ROUTE_KEYS}


def _protect_note(item: Mapping[str, Any], verb: str = "delete") -> tuple[str, ...]:
    """Pulumi refuses to delete or replace a protected resource (as the state has it)."""
    if item["kind"] == "new" and item.get("protect"):
        return (
            f"it is protected (protect: true): `pulumi up` refuses to {verb} it until a "
            "change setting protect: false for it has been applied",
        )
    return ()


def _pair(
    removed: Mapping[str, Any],
    added: Mapping[str, Any],
    same: Callable[[Mapping[str, Any], Mapping[str, Any]], bool],
) -> dict[str, str]:
    """Removed key -> added key for what looks like one thing under a new key."""
    pairs: dict[str, str] = {}
    free = list(added)
    for old_key, before in removed.items():
        match = next((k for k in free if same(before, added[k])), None)
        if match is not None:
            pairs[old_key] = match
            free.remove(match)
    return pairs


def _added(props: Mapping[str, Any]) -> tuple[PropertyChange, ...]:
    return tuple(PropertyChange(path, None, value) for path, value in _leaves(props))


def _leaves(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Set leaves of a nested value for an addition; unset ones (None, empty, False)
    are left out, except `protect: false`, which a reviewer should see."""
    if isinstance(value, Mapping) and prefix not in _WHOLE:
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    elif _is_record_list(value) and not _is_flat(value):
        for index, item in enumerate(value, 1):
            yield from _leaves(item, f"{prefix}[{index}]")
    elif prefix == "protect" or not (value is None or value is False or value in ([], (), "")):
        yield prefix, value


def _flatten(old: Any, new: Any, prefix: str = "") -> list[PropertyChange]:
    """Changed leaves; lists of records of equal length compare item by item."""
    if old == new:
        return []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[PropertyChange] = []
        for key in dict.fromkeys([*old, *new]):
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_flatten(old.get(key), new.get(key), path))
        return out
    if _is_record_list(old) and _is_record_list(new) and len(old) == len(new):
        return [
            change
            for index, (a, b) in enumerate(zip(old, new, strict=True), 1)
            for change in _flatten(a, b, f"{prefix}[{index}]")
        ]
    return [PropertyChange(prefix, old, new)]


def _is_flat(records: Iterable[Mapping[str, Any]]) -> bool:
    """Records of plain values (targets, links) read best as one line each."""
    return all(not isinstance(v, Mapping | list | tuple) for r in records for v in r.values())


def _is_record_list(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(item, Mapping) for item in value)
    )


def allow_hint(blocked: Collection[Change]) -> list[str]:
    """The `allow_destroy` keys that would let the blocked changes through."""
    return list(dict.fromkeys(change.old_key or change.key for change in blocked))
