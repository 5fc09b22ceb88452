"""Compare two resolved stacks: what a change adds, removes, changes and destroys.

Pure: resolved `infra.model.Stack`s in (None for a stack file that does not exist on
one side), a `StackDiff` out, nothing printed. Property values are compared and
reported as the model's JSON values, which is also what `apica-pd diff --json`
prints. Which changes destroy something follows what Pulumi and pulumi-pagerduty
will do with them:

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
from typing import Any, Literal, TypeVar

from contract.maintenance import describe_window
from infra.model import ExistingPolicy, ExistingService, NewPolicy, NewService, Stack
from infra.plan import integration_logical_name, policy_logical_name, service_logical_name

Policy = NewPolicy | ExistingPolicy
Service = NewService | ExistingService
Entry = TypeVar("Entry", Policy, Service)

ChangeKind = Literal["add", "remove", "change", "replace", "rename-route"]
Subject = Literal["escalation_policy", "service", "integration", "route", "catch_all"]

# Which fields of a resolved service belong to which PagerDuty resource / the bridge.
_INTEGRATION_FIELDS = frozenset({"name", "type", "vendor_id"})
# What each integration type is, in a reviewer's words.
_INTEGRATION_TYPES = {
    "apica": "the Apica vendor's integration",
    "events_api_v2": "a plain Events API v2 integration",
}
_ROUTE_FIELDS = frozenset({"check_ids", "check_guids", "check_tags", "severity_map", "links",
                           "maintenance"})
_IDENTITY_FIELDS = frozenset({"key", "kind", "integration", "adopt"})
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


def diff_stacks(old: Stack | None, new: Stack | None) -> StackDiff:
    """Every change from `old` to `new`: policies, then services, then the catch-all."""
    new_services = new.services if new else {}
    catch_all = new.catch_all if new else None
    changes = [
        *_diff_entries(
            old.escalation_policies if old else {},
            new.escalation_policies if new else {},
            _same_policy,
            in_place=_policy_in_place,
            renamed=_policy_renamed,
            removed=_policy_removed,
            added=_policy_added,
        ),
        *_diff_entries(
            old.services if old else {},
            new_services,
            _same_service,
            in_place=lambda key, before, after: _service_in_place(
                key, before, after, _claims(new_services), catch_all
            ),
            renamed=_service_renamed,
            removed=_service_removed,
            added=_service_added,
        ),
        *_diff_catch_all(old.catch_all if old else None, catch_all, new_services),
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


def _diff_entries(
    old: Mapping[str, Entry],
    new: Mapping[str, Entry],
    same: Callable[[Entry, Entry], bool],
    *,
    in_place: Callable[[str, Entry, Entry], list[Change]],
    renamed: Callable[[str, str, Entry, Entry], Change],
    removed: Callable[[str, Entry], Change],
    added: Callable[[str, Entry], Change],
) -> list[Change]:
    """Walk one section (policies or services): kept keys, renamed keys, removed, added.

    A removed key and an added key that look like one thing (`same`) are a rename.
    """
    gone = {k: v for k, v in old.items() if k not in new}
    fresh = {k: v for k, v in new.items() if k not in old}
    renames = _pair(gone, fresh, same)
    changes: list[Change] = []
    for key, before in old.items():
        if key in new:
            changes.extend(in_place(key, before, new[key]))
        elif key in renames:
            changes.append(renamed(key, renames[key], before, new[renames[key]]))
        else:
            changes.append(removed(key, before))
    renamed_to = set(renames.values())
    changes.extend(added(key, after) for key, after in fresh.items() if key not in renamed_to)
    return changes


def _pair(
    removed: Mapping[str, Entry], added: Mapping[str, Entry], same: Callable[[Entry, Entry], bool]
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


def _destroys(
    kind: ChangeKind,
    subject: Subject,
    key: str,
    name: str,
    logical_name: str | None,
    reasons: Iterable[str],
    before: Policy | Service,
    *,
    old_key: str | None = None,
    properties: tuple[PropertyChange, ...] = (),
    verb: str = "delete",
) -> Change:
    """A destructive change; the note says when Pulumi's protect flag stands in the way."""
    return Change(
        kind,
        subject,
        key,
        name,
        logical_name,
        old_key,
        properties,
        destructive=True,
        reasons=tuple(reasons),
        notes=_protect_note(before, verb),
    )


# -- escalation policies ---------------------------------------------------------------


def _same_policy(a: Policy, b: Policy) -> bool:
    return a.kind == b.kind and a.name.casefold() == b.name.casefold()


def _policy_ln(policy: Policy) -> str | None:
    return policy_logical_name(policy.key) if isinstance(policy, NewPolicy) else None


def _existing_note(item: Policy | Service, what: str) -> tuple[str, ...]:
    if item.kind != "existing":
        return ()
    return (f"uses the existing {what} {item.name!r}, looked up by name; not managed here",)


def _adopt_notes(before: Policy | Service | None, after: Policy | Service) -> tuple[str, ...]:
    """What `adopt:` means for `pulumi up`, said where it is added or changed."""
    notes = []
    for what, old_thing, new_thing in _adoptable(before, after):
        new, old = getattr(new_thing, "adopt", None), getattr(old_thing, "adopt", None)
        if new is None or new == old:
            continue
        if old_thing is None:
            notes.append(
                f"adopts the existing {what} {new} as it is: `pulumi up` imports it "
                "instead of creating one"
            )
        else:
            notes.append(
                f"{what} adopt set to {new}: Pulumi imports only what the stack does not "
                "manage yet; for a resource already in its state the id must be the one it has"
            )
    return tuple(notes)


def _adoptable(
    before: Policy | Service | None, after: Policy | Service
) -> list[tuple[str, Any, Any]]:
    """(what, its old version or None, its new version): the object, then its integration."""
    services = (NewService, ExistingService)
    what = "service" if isinstance(after, services) else "escalation policy"
    pairs: list[tuple[str, Any, Any]] = [(what, before, after)]
    if isinstance(after, services) and after.integration is not None:
        old = before.integration if isinstance(before, services) else None
        pairs.append(("Apica integration", old, after.integration))
    return pairs


def _policy_added(key: str, after: Policy) -> Change:
    return Change(
        "add",
        "escalation_policy",
        key,
        after.name,
        _policy_ln(after),
        properties=_added(_props(after)),
        notes=(*_existing_note(after, "escalation policy"), *_adopt_notes(None, after)),
    )


def _policy_removed(key: str, before: Policy) -> Change:
    name = before.name
    if isinstance(before, ExistingPolicy):
        return Change(
            "remove",
            "escalation_policy",
            key,
            name,
            None,
            notes=(f"stops using existing policy {name!r}; PagerDuty keeps it",),
        )
    logical_name = _policy_ln(before)
    return _destroys(
        "remove",
        "escalation_policy",
        key,
        name,
        logical_name,
        [f"deletes escalation policy {name!r} ({logical_name}) from PagerDuty"],
        before,
    )


def _policy_renamed(old_key: str, key: str, before: Policy, after: Policy) -> Change:
    props = (PropertyChange("key", old_key, key), *_flatten(_props(before), _props(after)))
    if isinstance(after, ExistingPolicy):
        return Change("change", "escalation_policy", key, after.name, None, old_key, props)
    return _destroys(
        "replace",
        "escalation_policy",
        key,
        after.name,
        _policy_ln(after),
        [
            f"key renamed {old_key!r} -> {key!r}: Pulumi deletes {policy_logical_name(old_key)} "
            f"and creates {policy_logical_name(key)} (a new policy with a new id)"
        ],
        before,
        old_key=old_key,
        properties=props,
    )


def _policy_in_place(key: str, before: Policy, after: Policy) -> list[Change]:
    props = tuple(_flatten(_props(before), _props(after)))
    name = after.name
    if before.kind == after.kind:
        notes = _adopt_notes(before, after)
        if not props and not notes:
            return []
        return [
            Change(
                "change",
                "escalation_policy",
                key,
                name,
                _policy_ln(after),
                properties=props,
                notes=notes,
            )
        ]
    if isinstance(after, ExistingPolicy):
        return [
            _destroys(
                "replace",
                "escalation_policy",
                key,
                name,
                None,
                [
                    f"deletes managed policy {before.name!r} ({policy_logical_name(key)}); "
                    f"services use existing policy {name!r} instead"
                ],
                before,
                properties=props,
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
                f"existing policy {before.name!r} (which PagerDuty keeps)",
            ),
        )
    ]


# -- services, their integrations and routes ----------------------------------------


def _checks(service: Service) -> tuple[tuple[object, ...], ...]:
    integration = service.integration
    if integration is None:
        return (), (), ()
    return integration.check_ids, integration.check_guids, integration.check_tags


def _same_service(a: Service, b: Service) -> bool:
    if a.kind == b.kind and a.name.casefold() == b.name.casefold():
        return True
    return any(_checks(a)) and _checks(a) == _checks(b)


def _service_ln(service: Service) -> str:
    key = service.key
    return (
        service_logical_name(key)
        if isinstance(service, NewService)
        else integration_logical_name(key)
    )


def _service_properties(service: Service) -> dict[str, Any]:
    """A service's reviewable properties: service, then integration, then route."""
    return {
        **_props(service),
        **{f"integration.{k}": v for k, v in _integration(service).items()},
        **_route(service),
    }


def _service_added(key: str, after: Service) -> Change:
    notes = [
        *_existing_note(after, "service"),
        *_adopt_notes(None, after),
        *_new_route_note(key, after),
    ]
    return Change(
        "add",
        "service",
        key,
        after.name,
        _service_ln(after),
        properties=_added(_service_properties(after)),
        notes=tuple(notes),
    )


def _new_route_note(key: str, service: Service) -> tuple[str, ...]:
    if service.integration is None:
        return ("no Apica integration (`integration: none`): ASM cannot page it yet",)
    return (f"new route: set up an ASM webhook target for /v1/asm/{key}",)


def _service_removed(key: str, before: Service) -> Change:
    name = before.name
    if before.integration is None:
        logical_name = _service_ln(before)
        return _destroys(
            "remove",
            "service",
            key,
            name,
            logical_name,
            [f"deletes service {name!r} ({logical_name}) from PagerDuty"],
            before,
        )
    integration = before.integration.name
    if isinstance(before, NewService):
        what = (
            f"deletes service {name!r} ({service_logical_name(key)}) and its Apica "
            f"integration {integration!r}"
        )
    else:
        what = (
            f"deletes the Apica integration {integration!r} "
            f"({integration_logical_name(key)}) from existing service {name!r}"
        )
    return _destroys(
        "remove",
        "service",
        key,
        name,
        _service_ln(before),
        [f"{what}: its integration key dies and ASM alerts on /v1/asm/{key} stop paging"],
        before,
    )


def _service_renamed(old_key: str, key: str, before: Service, after: Service) -> Change:
    props = (
        PropertyChange("key", old_key, key),
        *_flatten(_service_properties(before), _service_properties(after)),
    )
    reasons = [
        f"route renamed {old_key!r} -> {key!r}: the ASM target URL changes from "
        f"/v1/asm/{old_key} to /v1/asm/{key}"
    ]
    if isinstance(before, NewService):
        reasons.append(
            f"Pulumi deletes {service_logical_name(old_key)} and creates "
            f"{_service_ln(after)}: a new PagerDuty service with a new integration key"
        )
    else:
        reasons.append(
            f"Pulumi re-creates the Apica integration ({integration_logical_name(old_key)} -> "
            f"{integration_logical_name(key)}): a new integration key"
        )
    return _destroys(
        "rename-route",
        "service",
        key,
        after.name,
        _service_ln(after),
        reasons,
        before,
        old_key=old_key,
        properties=props,
    )


def _service_in_place(
    key: str,
    before: Service,
    after: Service,
    claims: Mapping[str, set[str]],
    catch_all: str | None,
) -> list[Change]:
    name = after.name
    if before.kind != after.kind:
        props = tuple(_flatten(_service_properties(before), _service_properties(after)))
        if isinstance(after, ExistingService):
            what = (
                f"deletes managed service {before.name!r} ({service_logical_name(key)}) "
                f"and re-creates the Apica integration on existing service {name!r}"
            )
        else:
            what = (
                f"creates service {name!r} ({service_logical_name(key)}) instead of using "
                f"existing service {before.name!r}, and re-creates the Apica "
                "integration on it"
            )
        return [
            _destroys(
                "replace",
                "service",
                key,
                name,
                _service_ln(after),
                [f"{what}: a new integration key"],
                before,
                properties=props,
            )
        ]
    changes: list[Change] = []
    service_props = tuple(_flatten(_props(before), _props(after)))
    integration_props = tuple(_flatten(_integration(before), _integration(after)))
    moved = isinstance(before, ExistingService) and bool(service_props)  # another existing one
    adopt_notes = _adopt_notes(before, after)
    if (service_props or adopt_notes) and not moved:
        changes.append(
            Change(
                "change",
                "service",
                key,
                name,
                _service_ln(after),
                properties=service_props,
                notes=adopt_notes,
            )
        )
    if before.integration is None or after.integration is None:
        changes.extend(_integration_toggled(key, before, after))
        return changes
    integration_name = after.integration.name
    type_changed = before.integration.type != after.integration.type
    if type_changed:
        # The type says the vendor comes or goes; an "Apica looked up by name" would mislead.
        integration_props = tuple(p for p in integration_props if p.path != "vendor_id")
    vendor_changed = any(p.path == "vendor_id" for p in integration_props)
    if moved or vendor_changed or type_changed:
        reasons = []
        if moved:
            reasons.append(f"the integration moves to existing service {name!r}")
        if type_changed:
            reasons.append(
                f"it changes from {_INTEGRATION_TYPES[before.integration.type]} to "
                f"{_INTEGRATION_TYPES[after.integration.type]}"
            )
        elif vendor_changed and None in (
            before.integration.vendor_id,
            after.integration.vendor_id,
        ):
            # Offline we cannot know the looked-up id: assume the worst, say so.
            reasons.append(
                "its vendor changes between a look-up by name and a fixed id "
                "(unless both are the same id)"
            )
        elif vendor_changed:
            reasons.append("its vendor changes")
        changes.append(
            _destroys(
                "replace",
                "integration",
                key,
                integration_name,
                integration_logical_name(key),
                [
                    " and ".join(reasons) + ": pulumi-pagerduty re-creates the integration "
                    "with a new integration key; the old one stops working"
                ],
                # The integration of a managed service carries the service's protect flag.
                before,
                properties=(
                    *(
                        PropertyChange(f"service.{p.path}", p.old, p.new)
                        for p in service_props
                        if moved
                    ),
                    *integration_props,
                ),
                verb="replace",
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


def _integration_toggled(key: str, before: Service, after: Service) -> list[Change]:
    """`integration: none` on one side: the Apica integration (and route) comes or goes."""
    logical_name = integration_logical_name(key)
    if after.integration is not None:
        return [
            Change(
                "add",
                "integration",
                key,
                after.integration.name,
                logical_name,
                properties=_added({**_integration(after), **_route(after)}),
                notes=_new_route_note(key, after),
            )
        ]
    if before.integration is None:
        return []
    return [
        _destroys(
            "remove",
            "integration",
            key,
            before.integration.name,
            logical_name,
            [
                f"deletes the Apica integration {before.integration.name!r} ({logical_name}): "
                f"its integration key dies and ASM alerts on /v1/asm/{key} stop paging"
            ],
            before,
        )
    ]


def _claims(services: Mapping[str, Service]) -> dict[str, set[str]]:
    claimed: dict[str, set[str]] = {"check_ids": set(), "check_guids": set()}
    for service in services.values():
        if service.integration is None:
            continue
        claimed["check_ids"].update(str(i) for i in service.integration.check_ids)
        claimed["check_guids"].update(g.lower() for g in service.integration.check_guids)
    return claimed


def _unclaimed_notes(
    before: Service,
    after: Service,
    claims: Mapping[str, set[str]],
    catch_all: str | None,
) -> list[str]:
    notes = []
    if before.integration is None or after.integration is None:
        return notes
    for field, label in (("check_ids", "check id"), ("check_guids", "check GUID")):
        now = {str(v).lower() for v in getattr(after.integration, field)}
        for value in getattr(before.integration, field):
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


def _diff_catch_all(
    old: str | None, new: str | None, services: Mapping[str, Service]
) -> list[Change]:
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
    name = services[new].name if new in services else "(none)"
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


def _props(item: Policy | Service) -> dict[str, Any]:
    return item.model_dump(mode="json", exclude=_IDENTITY_FIELDS)


def _integration(service: Service) -> dict[str, Any]:
    if service.integration is None:
        return {}
    return service.integration.model_dump(mode="json", include=_INTEGRATION_FIELDS)


def _route(service: Service) -> dict[str, Any]:
    if service.integration is None:
        return {}
    route = service.integration.model_dump(mode="json", include=_ROUTE_FIELDS)
    # A window by its name, as one line: a change reads "maintenance.deploy: old -> new".
    route["maintenance"] = {window.name: describe_window(window)
                            for window in service.integration.maintenance}
    return route


def _protect_note(item: Policy | Service, verb: str = "delete") -> tuple[str, ...]:
    """Pulumi refuses to delete or replace a protected resource (as the state has it)."""
    if isinstance(item, NewPolicy | NewService) and item.protect:
        return (
            f"it is protected (protect: true): `pulumi up` refuses to {verb} it until a "
            "change setting protect: false for it has been applied",
        )
    return ()


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
