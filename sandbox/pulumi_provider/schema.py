"""Terraform's schema of a resource, under the Pulumi SDK's property names, and `check` on it.

A `Prop` says what terraform-provider-pagerduty's schema says of one attribute:
required, optional, optional and computed (the server may fill it; a value left
out of the program is taken from state), output only, its default, ForceNew (a
change replaces the resource), and the validators the Pulumi bridge runs in Check.
Lists that Terraform caps at one item (`MaxItems: 1`) are objects in the Pulumi SDK,
and single-item lists of strings are plain strings, exactly as the bridge flattens them.
"""

from __future__ import annotations

import random
import string as _string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.pulumi_provider.properties import UNKNOWN, Secret

Kind = Literal["string", "integer", "boolean", "object", "list", "set"]
# A validator gets the value and the property's Terraform name; it returns problems.
Validator = Callable[[Any, str], list[str]]


@dataclass(frozen=True)
class Prop:
    kind: Kind
    required: bool = False
    # Optional+Computed: left out of the program, the value in state stands.
    computed: bool = False
    # Computed only: never an input.
    output: bool = False
    default: Any = None
    force_new: bool = False
    # Terraform's DiffSuppressFunc that always suppresses (alert_creation).
    suppress_diff: bool = False
    tf_name: str = ""
    items: Prop | None = None
    fields: Mapping[str, Prop] = field(default_factory=dict)
    validators: tuple[Validator, ...] = ()
    min_items: int | None = None
    max_items: int | None = None


Schema = Mapping[str, Prop]


@dataclass(frozen=True)
class Failure:
    """A Check failure: the Pulumi property path and what is wrong with it."""

    path: str
    reason: str


# -- validators (Terraform's wording) -------------------------------------------------


def one_of(*values: str) -> Validator:
    """`validateValueDiagFunc` (util.ValidateValueDiagFunc)."""

    def check(value: Any, _tf_name: str) -> list[str]:
        if value in values:
            return []
        listed = ", ".join(f'"{v}"' for v in values)
        return [f'"{value}" is an invalid value. Must be one of []string{{{listed}}}']

    return check


def int_between(low: int, high: int) -> Validator:
    """`validation.IntBetween`."""

    def check(value: Any, tf_name: str) -> list[str]:
        if low <= value <= high:
            return []
        return [f"expected {tf_name} to be in the range ({low} - {high}), got {value}"]

    return check


def int_at_least(low: int) -> Validator:
    def check(value: Any, tf_name: str) -> list[str]:
        if value >= low:
            return []
        return [f"expected {tf_name} to be at least ({low}), got {value}"]

    return check


def int_in(*values: int) -> Validator:
    def check(value: Any, tf_name: str) -> list[str]:
        if value in values:
            return []
        return [f"expected {tf_name} to be one of {list(values)}, got {value}"]

    return check


def none_of(*values: int) -> Validator:
    """The framework's `int64validator.NoneOf`."""

    def check(value: Any, _tf_name: str) -> list[str]:
        if value not in values:
            return []
        return [f"value must be none of: {list(values)}, got: {value}"]

    return check


_SPECIAL = set("\\/&<>")


def allowed_name(special_chars: bool) -> Validator:
    """`util.ValidateIsAllowedString`: NoNonPrintableChars(OrSpecialChars)."""
    if special_chars:
        summary = (
            "Name can not be blank, nor contain the characters '\\', '/', '&', '<', '>', or any "
            "non-printable characters. Trailing white spaces are not allowed either."
        )
    else:
        summary = (
            "Name can not be blank, nor contain non-printable characters. Trailing white "
            "spaces are not allowed either."
        )

    def check(value: Any, _tf_name: str) -> list[str]:
        bad = (
            value == ""
            or any(not ch.isprintable() for ch in value)
            or (special_chars and any(ch in _SPECIAL for ch in value))
            or value.endswith(" ")
        )
        return [summary] if bad else []

    return check


# -- Check -----------------------------------------------------------------------------


def with_defaults(schema: Schema, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with Terraform's and Pulumi's defaults where the program gave nothing."""
    filled = dict(values)
    for name, prop in schema.items():
        value = filled.get(name)
        if value is None and prop.default is not None:
            filled[name] = prop.default
        elif isinstance(value, dict) and prop.kind == "object":
            filled[name] = with_defaults(prop.fields, value)
        elif isinstance(value, list) and prop.items is not None and prop.items.kind == "object":
            filled[name] = [
                with_defaults(prop.items.fields, item) if isinstance(item, dict) else item
                for item in value
            ]
    return filled


def autoname(urn_name: str, seed: bytes, previous: Any) -> str:
    """The bridge's autonaming (`SetAutonaming(255, "-")`): keep a name once given, else
    `<resource name>-<7 random hex digits>` from the engine's random seed."""
    if isinstance(previous, str) and previous:
        return previous
    chooser = random.Random(seed or urn_name)
    suffix = "".join(chooser.choice(_string.hexdigits[:16]) for _ in range(7))
    return f"{urn_name}-{suffix}"[:255]


def check_values(schema: Schema, values: Mapping[str, Any], path: str = "") -> list[Failure]:
    """Types, required properties and validators, as the bridge checks them in Check."""
    failures: list[Failure] = []
    for name, prop in schema.items():
        where = f"{path}.{name}" if path else name
        value = values.get(name)
        if isinstance(value, Secret):
            value = value.value
        if value is UNKNOWN:
            continue
        if value is None:
            if prop.required:
                failures.append(Failure(where, f"Missing required property '{name}'"))
            continue
        if prop.output:
            continue
        failures += _check_value(prop, value, where, prop.tf_name or name)
    return failures


def _check_value(prop: Prop, value: Any, where: str, tf_name: str) -> list[Failure]:
    if not _has_kind(prop.kind, value):
        return [Failure(where, f"{where} must be {_kind_phrase(prop.kind)}, not {_shown(value)}")]
    failures = [Failure(where, problem) for v in prop.validators for problem in v(value, tf_name)]
    if prop.kind == "object":
        failures += check_values(prop.fields, value, where)
    if prop.kind in ("list", "set"):
        if prop.min_items is not None and len(value) < prop.min_items:
            failures.append(Failure(where, f"{where} must have at least {prop.min_items} item(s)"))
        if prop.max_items is not None and len(value) > prop.max_items:
            failures.append(Failure(where, f"{where} must have at most {prop.max_items} item(s)"))
        assert prop.items is not None
        for index, item in enumerate(value):
            item = item.value if isinstance(item, Secret) else item
            if item is UNKNOWN:
                continue
            failures += _check_value(prop.items, item, f"{where}[{index}]", tf_name)
    return failures


def _has_kind(kind: Kind, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    return isinstance(value, list)


def _kind_phrase(kind: Kind) -> str:
    return {"integer": "an integer", "object": "an object", "set": "a list"}.get(kind, f"a {kind}")


def _shown(value: Any) -> str:
    return {bool: "a boolean", str: "a string", dict: "an object", list: "a list"}.get(
        type(value), "a number"
    )


# -- constructors ----------------------------------------------------------------------


def string(**options: Any) -> Prop:
    return Prop("string", **options)


def integer(**options: Any) -> Prop:
    return Prop("integer", **options)


def boolean(**options: Any) -> Prop:
    return Prop("boolean", **options)


def obj(fields: Mapping[str, Prop], **options: Any) -> Prop:
    return Prop("object", fields=fields, **options)


def list_of(items: Prop, **options: Any) -> Prop:
    return Prop("list", items=items, **options)


def set_of(items: Prop, **options: Any) -> Prop:
    return Prop("set", items=items, **options)


def output(kind: Kind = "string") -> Prop:
    return Prop(kind, output=True, computed=True)
