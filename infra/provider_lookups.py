"""Which object each pulumi-pagerduty look-up takes, and what it says when there is none.

Read from terraform-provider-pagerduty (v3.32.4, the code pulumi-pagerduty wraps):
`get_user` takes the user whose e-mail equals the one asked for, case included;
`get_schedule`, `get_team`, `get_service` and `get_escalation_policy` the object whose
name is the one asked for, case included; `get_vendor` pages through every vendor and
takes one whose name equals the one asked for ignoring case, else the first whose
name matches it as a case-insensitive regular expression (so "Apica" finds "Apica
Synthetic" in an account without an "Apica" vendor). The offline preview's mocks and
the sandbox's REST mocks both decide with this module, so neither finds what
`pulumi up` would not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from infra.errors import InfraError

#: pulumi-pagerduty's look-up tokens -> (short kind, the argument that names what is sought).
LOOKUPS: dict[str, tuple[str, str]] = {
    "pagerduty:index/getVendor:getVendor": ("vendor", "name"),
    "pagerduty:index/getUser:getUser": ("user", "email"),
    "pagerduty:index/getSchedule:getSchedule": ("schedule", "name"),
    "pagerduty:index/getEscalationPolicy:getEscalationPolicy": ("escalation_policy", "name"),
    "pagerduty:index/getService:getService": ("service", "name"),
    "pagerduty:index/getTeam:getTeam": ("team", "name"),
}
#: The field each kind is matched on.
LOOKUP_FIELDS: dict[str, str] = dict(LOOKUPS.values())

# The provider's own words when nothing matches (its Go source; get_team's differ).
_NOT_FOUND = {
    "vendor": "Unable to locate any vendor with the name: {}",
    "user": "Unable to locate any user with the email: {}",
    "schedule": "Unable to locate any schedule with the name: {}",
    "escalation_policy": "Unable to locate any escalation policy with the name: {}",
    "service": "Unable to locate any service with the name: {}",
    "team": "Unable to locate any team with name: {}",
}

Item = Mapping[str, Any]


class LookupNotFound(InfraError):
    """A look-up the provider would fail; `str()` is its message and, for a name that
    differs only in case, what PagerDuty has."""


def pick(kind: str, pages: Iterable[Sequence[Item]], wanted: str) -> Item | None:
    """What the provider's look-up of `kind` takes from the list pages it read."""
    if kind == "vendor":
        return _vendor(pages, wanted)
    field = LOOKUP_FIELDS[kind]
    for page in pages:
        for item in page:
            if item.get(field) == wanted:
                return item
    return None


def not_found(kind: str, wanted: str, seen: Iterable[Item] = ()) -> LookupNotFound:
    """The provider's refusal; `seen` (the objects its query returned) names a near miss."""
    message = _NOT_FOUND[kind].format(wanted)
    field = LOOKUP_FIELDS[kind]
    folded = wanted.casefold()
    near = next((str(i[field]) for i in seen if str(i.get(field, "")).casefold() == folded), None)
    if near is not None:
        message += (
            f" (PagerDuty has {near!r}: look-ups match the {field} exactly, case "
            "included; write it as PagerDuty has it)"
        )
    return LookupNotFound(message)


def _vendor(pages: Iterable[Sequence[Item]], wanted: str) -> Item | None:
    # data_source_pagerduty_vendor.go: every page is read; on each, an exact match
    # (ignoring case) replaces what was found so far, and only while nothing is found
    # does a regular-expression match count. The name is not escaped (RE2 there).
    try:
        pattern = re.compile(wanted, re.IGNORECASE)
    except re.error:
        pattern = None  # the provider would panic on it; nothing matches here
    folded = wanted.casefold()
    found: Item | None = None
    for page in pages:
        exact = next((v for v in page if str(v.get("name", "")).casefold() == folded), None)
        if exact is not None:
            found = exact
        elif found is None and pattern is not None:
            found = next((v for v in page if pattern.search(str(v.get("name", "")))), None)
    return found
