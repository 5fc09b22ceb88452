"""Terraform's plan and diff over a `Schema`: what an update would send, and what changed.

`planned(schema, config, prior)` is the state Terraform plans: the program's values,
and for Optional+Computed or output-only attributes the program leaves out, the
value in state (on a create: "known after apply"). `changes(...)` compares the plan
with state attribute by attribute. SDKv2 resources (`zero_is_null=True`) cannot tell
an unset string, number, bool or list from its zero value, so "" and null, 0 and
null, [] and null are the same there; the plugin framework keeps null distinct.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sandbox.pulumi_provider.properties import UNKNOWN, reveal
from sandbox.pulumi_provider.schema import Prop, Schema

ChangeKind = Literal["add", "delete", "update"]


@dataclass(frozen=True)
class Change:
    name: str
    kind: ChangeKind
    replace: bool


def planned(schema: Schema, config: dict[str, Any], prior: dict[str, Any] | None) -> dict[str, Any]:
    """The planned state. `prior` is None for a create: computed values are then UNKNOWN."""
    plan: dict[str, Any] = {}
    for name, prop in schema.items():
        value = _planned_value(
            prop,
            config.get(name),
            None if prior is None else prior.get(name),
            creating=prior is None,
        )
        if value is not None:
            plan[name] = value
    # Properties outside the schema (none the SDK sends) pass through untouched.
    plan.update({name: value for name, value in config.items() if name not in schema})
    return plan


def _planned_value(prop: Prop, given: Any, prior: Any, creating: bool) -> Any:
    given = reveal(given)
    if prop.output:
        return UNKNOWN if creating else prior
    if prop.suppress_diff and not creating:
        return prior  # a suppressed diff keeps the stored value, whatever the program says
    if given is None:
        if prop.computed:
            return UNKNOWN if creating else prior
        return None
    if given is UNKNOWN:
        return UNKNOWN
    if prop.kind == "object" and isinstance(given, dict):
        prior_fields = prior if isinstance(prior, dict) else None
        fields = {
            name: _planned_value(
                field,
                given.get(name),
                None if prior_fields is None else prior_fields.get(name),
                creating=prior_fields is None,
            )
            for name, field in prop.fields.items()
        }
        return {name: value for name, value in fields.items() if value is not None}
    if prop.kind == "list" and isinstance(given, list) and prop.items is not None:
        if prop.items.kind != "object":
            return given
        priors = prior if isinstance(prior, list) else []
        return [
            _planned_value(
                prop.items,
                item,
                priors[index] if index < len(priors) else None,
                creating=index >= len(priors),
            )
            for index, item in enumerate(given)
        ]
    return given


def changes(
    schema: Schema, plan: dict[str, Any], prior: dict[str, Any], zero_is_null: bool
) -> list[Change]:
    """Top-level attributes whose planned value differs from state, and whether each replaces."""
    found = []
    for name, prop in schema.items():
        if prop.output or prop.suppress_diff:
            continue
        new, old = plan.get(name), reveal(prior.get(name))
        if same(prop, new, old, zero_is_null):
            continue
        if old is None:
            kind: ChangeKind = "add"
        elif new is None:
            kind = "delete"
        else:
            kind = "update"
        found.append(Change(name, kind, prop.force_new))
    return found


def same(prop: Prop, new: Any, old: Any, zero_is_null: bool) -> bool:
    """Whether Terraform would see no difference between a planned and a stored value."""
    if new is UNKNOWN or old is UNKNOWN:
        return False
    if _empty(new, zero_is_null) and _empty(old, zero_is_null):
        return True
    if new is None or old is None:
        return False
    if prop.kind == "object":
        if not isinstance(new, dict) or not isinstance(old, dict):
            return new == old
        return all(
            same(field, new.get(name), old.get(name), zero_is_null) or field.suppress_diff
            for name, field in prop.fields.items()
        )
    if prop.kind in ("list", "set"):
        if not isinstance(new, list) or not isinstance(old, list) or len(new) != len(old):
            return False
        assert prop.items is not None
        if prop.kind == "set":
            return sorted(map(repr, new)) == sorted(map(repr, old))
        return all(same(prop.items, n, o, zero_is_null) for n, o in zip(new, old, strict=True))
    return new == old


def _empty(value: Any, zero_is_null: bool) -> bool:
    if value is None:
        return True
    if not zero_is_null:
        return False
    if isinstance(value, bool):
        return value is False
    return value == "" or value == [] or (isinstance(value, int) and value == 0)
