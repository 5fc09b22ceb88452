"""Stack file -> resolved `Stack`, or every problem of the file at once.

Three passes over one loaded document, all pure:

1. `RawStack` (pydantic) checks shapes and values; each error's location is mapped
   back to the YAML line and column and its message rewritten for a person.
2. Cross-checks that no single field can make: references between keys, unique
   display names, a check routed to two services, support-hours order.
3. Resolution: defaults merged into each service, everything normalised into the
   frozen `Stack` of `infra.model`.

`load_stack(path)` raises `StackFileInvalid`; `validate_files(paths)` returns problems.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Tag, ValidationError
from pydantic.fields import FieldInfo

from contract.maintenance import (
    ONE_SCHEDULE,
    SOME_CHECKS,
    WEEKDAYS,
    check_wall_time,
    once_problems,
    time_zone_names,
    weekly_problems,
)
from contract.routes_file import Link, MaintenanceWindow
from contract.vocabulary import (
    DEFAULT_SEVERITY_MAP,
    MAX_CHECK_ID_DIGITS,
    tag_claim_parts,
    tag_claims_overlap,
)
from infra.errors import Problem, StackFileInvalid
from infra.messages import describe, quoted
from infra.model import (
    BUILTIN_DEFAULTS,
    DEFAULT_AUTO_PAUSE_SECONDS,
    MAX_NAME_LENGTH,
    AlertGrouping,
    ChangeBudget,
    ExistingPolicy,
    ExistingService,
    Integration,
    NewPolicy,
    NewService,
    RawAlertGrouping,
    RawAutoPause,
    RawContentGrouping,
    RawDefaults,
    RawExistingPolicy,
    RawExistingService,
    RawIntegration,
    RawIntelligentGrouping,
    RawNewPolicy,
    RawNewService,
    RawStack,
    RawSupportHoursUrgency,
    RawTimeGrouping,
    RawUrgency,
    Rule,
    Stack,
    SupportHours,
    Target,
    UrgencyRule,
    integration_import_parts,
)
from infra.yaml_source import PathKey, YamlDocument, gc_paused, load_yaml, parse_yaml

__all__ = ["FileResult", "check_file", "load_stack", "parse_stack", "validate_files"]


@dataclass(frozen=True)
class FileResult:
    """The outcome for one file: a stack, or the problems that prevent one."""

    path: str
    stack: Stack | None
    problems: tuple[Problem, ...]


def load_stack(path: str | os.PathLike[str], display: str | None = None) -> Stack:
    """Load, validate and resolve a stack file; raises `StackFileInvalid`."""
    return validate_document(load_yaml(path, display))


def parse_stack(text: str | bytes, name: str) -> Stack:
    """Like `load_stack` for text already in memory (`name` is used in messages)."""
    return validate_document(parse_yaml(text, name))


def check_file(path: str | os.PathLike[str]) -> FileResult:
    """Validate one file without raising (for `apica-pd validate`)."""
    try:
        return FileResult(os.fspath(path), load_stack(path), ())
    except StackFileInvalid as exc:
        return FileResult(os.fspath(path), None, exc.problems)


def validate_files(paths: Iterable[str | os.PathLike[str]]) -> list[Problem]:
    """All problems of all files, in file order; empty when every file is valid."""
    return [problem for path in paths for problem in check_file(path).problems]


def validate_document(doc: YamlDocument) -> Stack:
    """Validate a loaded document and resolve it; raises `StackFileInvalid`."""
    problems: list[Problem] = []
    flagged: set[PathKey] = set()
    raw: RawStack | None = None
    with gc_paused():  # see yaml_source.gc_paused: the same many acyclic objects
        try:
            raw = RawStack.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(_translate(exc, doc, flagged))
        problems.extend(_Checks(doc, flagged).run())
        if problems or raw is None:
            raise StackFileInvalid(doc.file, problems)
        return resolve(raw)


# --- pass 1: pydantic errors -> problems at file positions --------------------------

_KEY_WHAT = {
    "services": "service key {key!r} is not a valid route name",
    "escalation_policies": "escalation policy key {key!r} is not a valid name",
}
_NAME_HINT = "use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"


def _translate(exc: ValidationError, doc: YamlDocument, flagged: set[PathKey]) -> list[Problem]:
    errors = exc.errors(include_url=False)
    located = [(error, *_data_path(error["loc"])) for error in errors]
    # Unknown keys per mapping: a "missing 'name'" next to an unknown 'nme' is one mistake.
    unknown: dict[PathKey, list[str]] = {}
    for error, path, _ in located:
        if error["type"] == "extra_forbidden":
            unknown.setdefault(path[:-1], []).append(str(path[-1]))
    problems = []
    for error, path, on_key in located:
        kind = error["type"]
        if kind == "missing":
            field = str(error["loc"][-1])
            typos = unknown.get(path[:-1], [])
            if difflib.get_close_matches(field, typos, n=1, cutoff=0.75):
                continue
            parent = path[:-1]
            mark = doc.positions.key(parent) if parent else doc.positions.value(())
        elif kind == "extra_forbidden" or on_key:
            mark = doc.positions.key(path)
        else:
            mark = doc.positions.value(path)
        flagged.add(path)
        message = _message(error, path, on_key)
        problems.append(Problem(doc.file, mark.line, mark.col, message))
    return problems


def _data_path(loc: tuple[int | str, ...]) -> tuple[PathKey, bool]:
    """The data path of a pydantic location and whether it names a key.

    Locations also name the member of a tagged union that pydantic tried ("new",
    "existing", "time", ...); the raw model's types tell those apart from keys, which
    matters when a key is spelt like a tag (`existing:`).
    """
    path: list[str | int] = []
    tp: Any = RawStack
    for part in loc:
        if part == "[key]":
            return tuple(path), True
        member = _union_member(tp, part)
        if member is not None:
            tp = member
            continue
        tp = _step(tp, part) if tp is not None else None
        path.append(part)  # a missing key stays in too, so the message can name it
    return tuple(path), False


def _render(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(error: Any, path: PathKey, on_key: bool) -> str:
    kind: str = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    where = _render(path)
    if on_key:
        return _key_message(path, value)
    if kind == "extra_forbidden":
        return _unknown_key(error["loc"], path)
    if kind == "missing":
        field = path[-1]
        hint = ""
        model = _model_at(error["loc"][:-1])
        if model is RawNewService and field == "name":
            hint = " (or `existing: <name>` to use a service that already exists)"
        elif model is RawNewPolicy and field in ("name", "rules"):
            hint = " (or `existing: <name>` to use a policy that already exists)"
        elif model is RawStack and field == "services":
            hint = ": a stack declares at least one service"
        return f"{_render(path[:-1])}: missing required key {field!r}{hint}"
    if path and path[-1] == "integration" and value == "none" and kind == "model_type":
        # Only an existing service's integration is a plain mapping (a new one takes none).
        return (
            f"{where}: an existing service is in the stack file only for its Apica "
            "integration: give it one (`integration: {...}`), or remove the entry"
        )
    text = _value_message(kind, ctx, value, error["msg"], path)
    return f"{where}: {text}"


def _key_message(path: PathKey, key: Any) -> str:
    section = path[0] if len(path) == 2 else None
    template = _KEY_WHAT.get(str(section), "key {key!r} is not valid here")
    if len(path) >= 2 and path[-2] == "severity_map":
        return (
            f"{_render(path[:-1])}: {key!r} is not an ASM severity: use F, E, W or I "
            "(fatal, error, warning, info)"
        )
    return f"{_render(path[:-1])}: {template.format(key=key)}: {_NAME_HINT}"


def _value_message(kind: str, ctx: dict[str, Any], value: Any, msg: str, path: PathKey) -> str:
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        got = f"got {value!r}" if isinstance(value, str) else f"got {describe(value)}"
        text = f"must be one of {', '.join(choices)}; {got}"
        if isinstance(value, str):
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            if close:
                text += f"; did you mean {close[0]!r}?"
        return text
    if kind == "string_pattern_mismatch":
        return _pattern_message(path, value)
    if kind == "less_than_equal" and len(path) >= 2 and path[-2] == "ids":
        return (
            f"{value} is not an ASM check id (at most {MAX_CHECK_ID_DIGITS} digits): the "
            "bridge could never match it"
        )
    simple = {
        "string_type": f"must be a string, got {describe(value)}",
        "int_type": f"must be a whole number, got {describe(value)}",
        "bool_type": f"must be true or false, got {describe(value)}",
        "model_type": f"must be a mapping of keys to values, got {describe(value)}",
        "model_attributes_type": f"must be a mapping of keys to values, got {describe(value)}",
        "dict_type": f"must be a mapping of keys to values, got {describe(value)}",
        "list_type": f"must be a list, got {describe(value)}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}, got {value!r}",
        "less_than_equal": f"must be at most {ctx.get('le')}, got {value!r}",
        "string_too_short": "must not be empty",
        "string_too_long": f"must be at most {ctx.get('max_length')} characters",
    }
    if kind in simple:
        return simple[kind]
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        if isinstance(value, dict):
            return f"must declare at least {least} entr{'y' if least == 1 else 'ies'}"
        return f"must have at least {least} item{'' if least == 1 else 's'}"
    if kind == "too_long":
        most = ctx.get("max_length")
        return f"must have at most {most} items (PagerDuty's limit), has {len(value or ())}"
    # Our custom union messages (policy_shape, urgency_shape, ...) and anything else.
    return msg


def _pattern_message(path: PathKey, value: Any) -> str:
    field = path[-1] if path else ""
    if len(path) >= 2 and path[-2] == "guids":
        return (
            f"{quoted(value)} is not an ASM check GUID (1-64 letters, digits, '-' or '_'): "
            "the bridge could never match it"
        )
    if len(path) >= 2 and path[-2] == "allow_destroy":
        return f"{value!r} is not a valid service or escalation policy key: {_NAME_HINT}"
    if field == "href":
        return f"{value!r} is not an http(s) URL"
    if field == "catch_all":
        return f"{value!r} is not a valid service key: {_NAME_HINT}"
    if field == "escalation_policy":
        return f"{value!r} is not a valid escalation policy key: {_NAME_HINT}"
    return f"{value!r} has the wrong form"


def _unknown_key(loc: tuple[int | str, ...], path: PathKey) -> str:
    key = str(path[-1])
    parent = _render(path[:-1])
    model = _model_at(loc[:-1])
    if model in (RawExistingPolicy, RawExistingService):
        allowed = list(model.model_fields)
        what = "policy" if model is RawExistingPolicy else "service"
        return (
            f"{parent}: {key!r} cannot be combined with 'existing': an existing {what} is "
            f"only looked up by name (allowed here: {', '.join(allowed)})"
        )
    if model is None:
        return f"{parent}: unknown key {key!r}"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"{parent}: unknown key {key!r}; did you mean {close[0]!r}?"
    return f"{parent}: unknown key {key!r}; allowed here: {', '.join(allowed)}"


def _model_at(loc: Iterable[int | str]) -> type[BaseModel] | None:
    """The raw model class that the location (with union tags) points into."""
    tp: Any = RawStack
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return None
    tp = _strip(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _strip(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _step(tp: Any, part: int | str) -> Any:
    tp = _strip(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field: FieldInfo | None = tp.model_fields.get(str(part))
        return field.annotation if field is not None else None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is list:
        return args[0]
    if origin is dict:
        return args[1]
    return _union_member(tp, part)


def _union_member(tp: Any, part: int | str) -> Any:
    """The member of a tagged union that `part` names, or None."""
    tp = _strip(tp)
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    for member in typing.get_args(tp):
        for meta in getattr(member, "__metadata__", ()):
            if isinstance(meta, Tag) and meta.tag == part:
                return member
    return None


# --- pass 2: cross-checks ---------------------------------------------------------


class _Checks:
    """Checks across keys, on the plain data (works even where pass 1 found errors)."""

    def __init__(self, doc: YamlDocument, flagged: set[PathKey]) -> None:
        self.doc = doc
        self.flagged = flagged
        self.problems: list[Problem] = []
        data = doc.data
        self.defaults = _dict(data.get("defaults"))
        self.policies = _dict(data.get("escalation_policies"))
        self.services = _dict(data.get("services"))

    def run(self) -> list[Problem]:
        self._policy_references()
        self._catch_all()
        self._unique_names("escalation_policies", self.policies, "escalation policy")
        self._unique_names("services", self.services, "service")
        self._routing()
        self._adoptions()
        self._support_hours(("defaults",), self.defaults)
        for key, service in self.services.items():
            self._support_hours(("services", key), _dict(service))
            self._integration_name(key, _dict(service))
            self._integration_vendor(key, _dict(service))
            self._service_team(key, _dict(service))
            self._maintenance(key, _dict(service))
        return self.problems

    def _add(self, path: PathKey, message: str, *, on_key: bool = False) -> None:
        if path in self.flagged:
            return  # pass 1 already said what is wrong here
        mark = self.doc.positions.key(path) if on_key else self.doc.positions.value(path)
        self.problems.append(Problem(self.doc.file, mark.line, mark.col, message))

    def _line(self, path: PathKey) -> int:
        return self.doc.positions.key(path).line

    def _policy_references(self) -> None:
        default = self.defaults.get("escalation_policy")
        if isinstance(default, str):
            self._reference(("defaults", "escalation_policy"), default)
        for key, service in self.services.items():
            service = _dict(service)
            if not service or "existing" in service:
                continue
            policy = service.get("escalation_policy")
            if isinstance(policy, str):
                self._reference(("services", key, "escalation_policy"), policy)
            elif (
                policy is None
                and not isinstance(default, str)
                and not _typo_of("escalation_policy", service)
            ):
                self._add(
                    ("services", key),
                    f"services.{key}: a new service needs an escalation policy: set "
                    "`escalation_policy: <key>` here or `defaults.escalation_policy`",
                    on_key=True,
                )

    def _service_team(self, key: Any, service: dict[Any, Any]) -> None:
        """A PagerDuty service shows its escalation policy's team and has none of its own,
        so a service `team` that is not its new policy's team would silently do nothing."""
        if not service or "existing" in service:
            return
        team = service.get("team", self.defaults.get("team"))
        policy_key = service.get("escalation_policy", self.defaults.get("escalation_policy"))
        policy = _dict(self.policies.get(policy_key)) if isinstance(policy_key, str) else {}
        if not isinstance(team, str) or not policy or "existing" in policy:
            return  # an existing policy's team cannot be known offline
        policy_team = policy.get("team")
        if isinstance(policy_team, str) and policy_team.lower() == team.lower():
            return
        path: PathKey = ("services", key, "team")
        where = f"services.{key}.team" if "team" in service else "defaults.team"
        if "team" not in service:
            path = ("services", key)
        has = f"team {policy_team!r}" if isinstance(policy_team, str) else "no team"
        self._add(
            path,
            f"{where}: {team!r} does not match escalation policy {policy_key!r}, which has "
            f"{has}; a PagerDuty service belongs to its escalation policy's team: set "
            f"`team: {team}` on the policy, or remove it from the service",
            on_key="team" not in service,
        )

    def _reference(self, path: PathKey, name: str) -> None:
        if name in self.policies:
            return
        message = f"{_render(path)}: unknown escalation policy {name!r}"
        known = [str(k) for k in self.policies]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif known:
            message += f"; declared in escalation_policies: {_listing(known)}"
        else:
            message += "; escalation_policies declares none"
        self._add(path, message)

    def _adoptions(self) -> None:
        """Each PagerDuty object is adopted once, and an integration with its own service."""
        seen: dict[tuple[str, str], tuple[str, PathKey]] = {}
        for section, entries, what in (
            ("escalation_policies", self.policies, "escalation policy"),
            ("services", self.services, "service"),
        ):
            for key, entry in entries.items():
                adopt = _dict(entry).get("adopt")
                if isinstance(adopt, str):
                    self._adopted_once(seen, what, adopt, str(key), (section, key, "adopt"))
        for key, service in self.services.items():
            service = _dict(service)
            adopt = _dict(service.get("integration")).get("adopt")
            if not isinstance(adopt, str):
                continue
            path: PathKey = ("services", key, "integration", "adopt")
            service_id, integration_id = integration_import_parts(adopt)
            self._adopted_once(seen, "integration", integration_id, str(key), path)
            if "existing" in service or ("services", key, "adopt") in self.flagged:
                continue  # an existing service's id is known once looked up; a bad one is said
            own = service.get("adopt")
            where = _render(path)
            if own is None:
                self._add(
                    path,
                    f"{where}: integration {integration_id!r} belongs to PagerDuty service "
                    f"{service_id!r}, but services.{key} is a new service: adopt that service "
                    f"too (`adopt: {service_id}`), or remove integration.adopt",
                )
            elif isinstance(own, str) and own != service_id:
                self._add(
                    path,
                    f"{where}: integration {integration_id!r} belongs to PagerDuty service "
                    f"{service_id!r}, not to {own!r} (services.{key}.adopt): an integration is "
                    "adopted together with its own service",
                )

    def _adopted_once(
        self, seen: dict[tuple[str, str], tuple[str, PathKey]], what: str, pd_id: str,
        key: str, path: PathKey,
    ) -> None:
        first = seen.setdefault((what, pd_id), (key, path))
        if first[1] != path:
            self._add(
                path,
                f"{_render(path)}: PagerDuty {what} {pd_id!r} is already adopted by "
                f"{first[0]!r} (line {self._line(first[1])}); one PagerDuty object can be "
                "adopted only once",
            )

    def _catch_all(self) -> None:
        name = self.doc.data.get("catch_all")
        if isinstance(name, str) and _dict(self.services.get(name)).get("integration") == "none":
            self._add(
                ("catch_all",),
                f"catch_all: service {name!r} has no Apica integration (`integration: none`), "
                "so it cannot receive the checks no service claims",
            )
            return
        if not isinstance(name, str) or name in self.services:
            return
        message = f"catch_all: {name!r} is not a service key"
        known = [str(k) for k in self.services]
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif known:
            message += f"; services are: {_listing(known)}"
        self._add(("catch_all",), message)

    def _unique_names(self, section: str, entries: dict[Any, Any], what: str) -> None:
        seen: dict[str, tuple[str, PathKey]] = {}
        for key, entry in entries.items():
            entry = _dict(entry)
            field = "existing" if "existing" in entry else "name"
            name = entry.get(field)
            if not isinstance(name, str):
                continue
            path = (section, key, field)
            folded = name.strip().casefold()
            if folded in seen:
                other, other_path = seen[folded]
                self._add(
                    path,
                    f"{_render(path)}: {what} name {name!r} is already used by {other!r} "
                    f"(line {self._line(other_path)}); names must differ, ignoring case",
                )
            else:
                seen[folded] = (str(key), path)

    def _routing(self) -> None:
        """Each check reaches one service: ids, GUIDs and tags as the bridge matches them."""
        claims: dict[tuple[str, Any], tuple[str, PathKey]] = {}
        # Tag claims by normalised key, then value (None: the key alone, any value).
        tags: dict[str, dict[str | None, tuple[str, PathKey, str]]] = {}
        for key, service in self.services.items():
            checks = _dict(_dict(_dict(service).get("integration")).get("checks"))
            for field, what in (("ids", "check id"), ("guids", "check GUID"), ("tags", "tag")):
                values = checks.get(field)
                if not isinstance(values, list):
                    continue
                for index, value in enumerate(values):
                    if isinstance(value, bool) or not isinstance(value, int | str):
                        continue
                    path = ("services", key, "integration", "checks", field, index)
                    if field == "tags":
                        self._tag_claim(tags, str(key), path, str(value))
                        continue
                    norm = value.casefold() if isinstance(value, str) else value
                    other = claims.setdefault((field, norm), (str(key), path))
                    self._claimed(path, what, value, str(key), other[0], other[1])

    def _claimed(
        self, path: PathKey, what: str, value: Any, service: str, owner: str, first: PathKey
    ) -> None:
        if owner != service:
            self._add(
                path,
                f"{_render(path)}: {what} {value!r} is already routed to service {owner!r} "
                f"(line {self._line(first)}); route each check to one service",
            )
        elif first != path:
            self._add(path, f"{_render(path)}: {what} {value!r} is listed twice")

    def _tag_claim(
        self,
        tags: dict[str, dict[str | None, tuple[str, PathKey, str]]],
        service: str,
        path: PathKey,
        tag: str,
    ) -> None:
        tag_key, tag_value = tag_claim_parts(tag)
        group = tags.setdefault(tag_key, {})
        same = group.get(tag_value)
        if same is not None:  # one claim as the bridge reads it ("Team: A" = "team :a")
            self._claimed(path, "tag", tag, service, same[0], same[1])
            return
        # Claims overlap only under one key: "Team" and "Team: A" both match a check
        # tagged "Team: A", and the bridge could page only the first.
        candidates = list(group.values()) if tag_value is None else [group.get(None)]
        for other in candidates:
            if other is not None and other[0] != service and tag_claims_overlap(tag, other[2]):
                self._add(
                    path,
                    f"{_render(path)}: tag {tag!r} overlaps tag {other[2]!r} of service "
                    f"{other[0]!r} (line {self._line(other[1])}): a check carrying both "
                    "would page only one of them; make the tags tell the services apart",
                )
                return
        group[tag_value] = (service, path, tag)

    def _support_hours(self, base: PathKey, entry: dict[Any, Any]) -> None:
        hours = _dict(_dict(entry.get("urgency")).get("support_hours"))
        if not hours:
            return
        path = (*base, "urgency", "support_hours")
        start, end = hours.get("start"), hours.get("end")
        if _is_hhmm(start) and _is_hhmm(end) and end <= start:
            self._add(
                (*path, "end"),
                f"{_render((*path, 'end'))}: end {end} must be after start {start} "
                "(PagerDuty support hours cannot cross midnight)",
            )
        days = hours.get("days")
        if isinstance(days, list):
            seen: set[str] = set()
            for index, day in enumerate(days):
                if day in seen:
                    where = _render((*path, "days", index))
                    self._add((*path, "days", index), f"{where}: {day!r} is listed twice")
                if isinstance(day, str):
                    seen.add(day)
        during = hours.get("during", "high")
        outside = hours.get("outside", "low")
        if during == outside and isinstance(during, str):
            self._add(
                path,
                f"{_render(path)}: during and outside are both {during!r}, so support "
                f"hours change nothing: write `urgency: {during}` instead",
                on_key=True,
            )

    def _maintenance(self, key: Any, service: dict[Any, Any]) -> None:
        """The window rules of `contract.maintenance`, each on the key that breaks it."""
        windows = _dict(service.get("integration")).get("maintenance")
        if not isinstance(windows, list):
            return
        names: dict[str, PathKey] = {}
        for index, window in enumerate(windows):
            window = _dict(window)
            path: PathKey = ("services", key, "integration", "maintenance", index)
            name = window.get("name")
            if isinstance(name, str):
                first = names.setdefault(name, (*path, "name"))
                if first != (*path, "name"):
                    self._add((*path, "name"), f"{_render((*path, 'name'))}: window name "
                              f"{name!r} is already used (line {self._line(first)})")
            schedules = [part for part in ("once", "weekly") if part in window]
            if len(schedules) != 1:
                self._add(path, f"{_render(path)}: {ONE_SCHEDULE}", on_key=True)
            once, weekly = _dict(window.get("once")), _dict(window.get("weekly"))
            zone = window.get("time_zone")
            if once and zone in time_zone_names():
                times = [_wall_time(once.get(part)) for part in ("start", "end")]
                if None not in times:
                    self._window_rules((*path, "once"),
                                       once_problems(times[0], times[1], str(zone)))
            days, start, end = weekly.get("days"), weekly.get("start"), weekly.get("end")
            if isinstance(days, list) and _is_hhmm(start) and _is_hhmm(end):
                self._window_rules((*path, "weekly"), weekly_problems(days, start, end))
            checks = window.get("checks")
            if isinstance(checks, dict) and not any(checks.get(part) for part in
                                                    ("ids", "guids", "tags")):
                self._add((*path, "checks"), f"{_render((*path, 'checks'))}: {SOME_CHECKS}",
                          on_key=True)

    def _window_rules(self, base: PathKey, problems: list[tuple[PathKey, str]]) -> None:
        for part, message in problems:
            path = (*base, *part)
            self._add(path, f"{_render(path)}: {message}")

    def _integration_name(self, key: Any, service: dict[Any, Any]) -> None:
        integration = _dict(service.get("integration"))
        if "name" in integration or service.get("integration") == "none":
            return
        display = service.get("existing", service.get("name"))
        if not isinstance(display, str):
            return
        derived = default_integration_name(display)
        if len(derived) > MAX_NAME_LENGTH:
            field = "existing" if "existing" in service else "name"
            path = ("services", key, field)
            self._add(
                path,
                f"{_render(path)}: the default integration name would be {len(derived)} "
                f"characters (at most {MAX_NAME_LENGTH}): set integration.name",
            )


    def _integration_vendor(self, key: Any, service: dict[Any, Any]) -> None:
        integration = _dict(service.get("integration"))
        if integration.get("type") != "events_api_v2" or "vendor_id" not in integration:
            return
        path: PathKey = ("services", key, "integration", "vendor_id")
        self._add(
            path,
            f"{_render(path)}: an events_api_v2 integration has no vendor: remove "
            "vendor_id, or write `type: apica` for the Apica vendor's integration",
            on_key=True,
        )


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _typo_of(field: str, entry: dict[Any, Any]) -> bool:
    """Whether the mapping has a misspelt `field` (already reported as an unknown key)."""
    return bool(difflib.get_close_matches(field, [str(k) for k in entry], n=1, cutoff=0.75))


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _wall_time(value: Any) -> str | None:
    try:
        return check_wall_time(value)
    except ValueError:
        return None  # pass 1 said what is wrong with it


def _is_hhmm(value: Any) -> bool:
    return (
        isinstance(value, str) and re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value) is not None
    )


# --- pass 3: resolution -----------------------------------------------------------


def default_integration_name(service_name: str) -> str:
    """Apica's convention: `Apica-<Service-Name>`, spaces as dashes."""
    return "Apica-" + "-".join(service_name.split())


def resolve(raw: RawStack) -> Stack:
    """Merge defaults and normalise a validated `RawStack` (call after the checks)."""
    defaults = raw.defaults
    vendor = raw.apica.vendor_id
    policies: dict[str, NewPolicy | ExistingPolicy] = {}
    for key, policy in raw.escalation_policies.items():
        if isinstance(policy, RawExistingPolicy):
            policies[key] = ExistingPolicy(key=key, name=policy.existing)
            continue
        policies[key] = NewPolicy(
            key=key,
            name=policy.name,
            adopt=policy.adopt,
            description=policy.description,
            num_loops=policy.loops,
            team=policy.team,
            protect=_first(policy.protect, defaults.protect, BUILTIN_DEFAULTS["protect"]),
            rules=tuple(
                Rule(
                    delay_minutes=rule.delay,
                    assignment="round_robin"
                    if rule.assignment == "round_robin"
                    else "assign_to_everyone",
                    targets=tuple(
                        Target(type="user", ref=t.user)
                        if t.user is not None
                        else Target(type="schedule", ref=str(t.schedule))
                        for t in rule.targets
                    ),
                )
                for rule in policy.rules
            ),
        )
    services: dict[str, NewService | ExistingService] = {}
    for key, service in raw.services.items():
        if isinstance(service, RawExistingService):
            integration = _integration(service.integration, service.existing, defaults, vendor)
            services[key] = ExistingService(key=key, name=service.existing, integration=integration)
            continue
        services[key] = _new_service(key, service, defaults, vendor)
    budget = raw.change_budget
    return Stack(
        escalation_policies=policies,
        services=services,
        catch_all=raw.catch_all,
        apica_vendor_id=vendor,
        allow_destroy=tuple(raw.allow_destroy),
        allow_mass_change=raw.allow_mass_change,
        change_budget=ChangeBudget(
            services_changed=budget.services_changed,
            checks_rerouted=budget.checks_rerouted,
            policies_changed=budget.policies_changed,
            min_existing=budget.min_existing,
        ),
    )


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _new_service(
    key: str, service: RawNewService, defaults: RawDefaults, vendor: str | None
) -> NewService:
    def duration(field: str) -> int | None:
        # None means "off" once given, so "given" is decided by the keys the file set.
        if field in service.model_fields_set:
            return typing.cast(int | None, getattr(service, field))
        if field in defaults.model_fields_set:
            return typing.cast(int | None, getattr(defaults, field))
        return typing.cast(int | None, BUILTIN_DEFAULTS[field])

    policy = _first(service.escalation_policy, defaults.escalation_policy)
    integration = (
        None
        if service.integration == "none"
        else _integration(service.integration, service.name, defaults, vendor)
    )
    return NewService(
        key=key,
        name=service.name,
        adopt=service.adopt,
        description=service.description,
        escalation_policy=str(policy),
        urgency=_urgency(_first(service.urgency, defaults.urgency, BUILTIN_DEFAULTS["urgency"])),
        auto_resolve_timeout=duration("auto_resolve_timeout"),
        acknowledgement_timeout=duration("acknowledgement_timeout"),
        alert_grouping=_grouping(_first(service.alert_grouping, defaults.alert_grouping)),
        auto_pause_timeout=_auto_pause(_first(service.auto_pause, defaults.auto_pause)),
        team=_first(service.team, defaults.team),
        protect=_first(service.protect, defaults.protect, BUILTIN_DEFAULTS["protect"]),
        integration=integration,
    )


def _urgency(raw: RawUrgency) -> UrgencyRule:
    if not isinstance(raw, RawSupportHoursUrgency):
        return UrgencyRule(type="constant", urgency=raw)
    hours = raw.support_hours
    return UrgencyRule(
        type="use_support_hours",
        during_support_hours=hours.during,
        outside_support_hours=hours.outside,
        support_hours=SupportHours(
            time_zone=hours.time_zone,
            days_of_week=tuple(sorted({WEEKDAYS.index(day) + 1 for day in hours.days})),
            start_time=f"{hours.start}:00",
            end_time=f"{hours.end}:00",
        ),
        raise_at_support_hours_start=hours.during == "high" and hours.outside == "low",
    )


def _grouping(raw: RawAlertGrouping | None) -> AlertGrouping | None:
    if isinstance(raw, RawTimeGrouping):
        return AlertGrouping(type="time", timeout=raw.timeout)
    if isinstance(raw, RawIntelligentGrouping):
        # PagerDuty's recommended window is asked for by leaving time_window unset.
        return AlertGrouping(type="intelligent", time_window=raw.time_window or None)
    if isinstance(raw, RawContentGrouping):
        return AlertGrouping(
            type="content_based",
            aggregate=raw.aggregate,
            fields=tuple(raw.fields),
            time_window=raw.time_window or None,
        )
    return None  # "none" or not set


def _auto_pause(raw: RawAutoPause | None) -> int | None:
    if raw is None or not raw.enabled:
        return None
    return raw.timeout if raw.timeout is not None else DEFAULT_AUTO_PAUSE_SECONDS


def _integration(
    raw: RawIntegration, service_name: str, defaults: RawDefaults, vendor: str | None
) -> Integration:
    severity = dict(DEFAULT_SEVERITY_MAP)
    severity.update(defaults.severity_map or {})
    severity.update(raw.severity_map or {})
    return Integration(
        name=raw.name or default_integration_name(service_name),
        type=raw.type,
        # A plain Events API v2 integration has no vendor, whatever `apica.vendor_id` says.
        vendor_id=None if raw.type == "events_api_v2" else raw.vendor_id or vendor,
        check_ids=tuple(raw.checks.ids),
        check_guids=tuple(raw.checks.guids),
        check_tags=tuple(raw.checks.tags),
        severity_map=severity,
        links=tuple(Link(href=link.href, text=link.text) for link in raw.links),
        maintenance=tuple(MaintenanceWindow.model_validate(window.model_dump())
                          for window in raw.maintenance),
        adopt=raw.adopt,
    )
