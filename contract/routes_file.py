"""The routes file: the one contract between the Pulumi program and the bridge.

The program writes it (secret stack output `bridge_routes`), the bridge reads it.
Version 1 shape::

    {"version": 1, "stack": "prod", "catch_all": "web" | null,
     "routes": {"<route name = service key in the stack file>": {
         "service_name": ..., "service_id": ..., "service_url": ... | null,
         "integration_name": ..., "routing_key": "<32 chars>",
         "check_ids": [...], "check_guids": [...], "check_tags": ["Key: Value", "Key"],
         "severity_map": {"F": "critical", "E": "error", "W": "warning", "I": "info"},
         "links": [{"href": "https://...", "text": "..."}]}}}

Version 2 adds, per route, `integration_id` (the PagerDuty integration of
`routing_key`) and `previous_routing_keys`: keys the route used before, as
`[{"routing_key": ..., "integration_id": ... | null}]` (at most 10), kept by the
hand-off while incidents opened through them may still be open, so that their resolves
reach the integration that opened them.

Version 3 adds, per route, `maintenance`: windows during which the bridge accepts and
records the route's alerts but does not page (`MaintenanceWindow`; when each is open:
`contract.maintenance`):

    "maintenance": [{"name": "weekly-deploy", "time_zone": "Europe/Berlin",
                     "weekly": {"days": ["sat"], "start": "22:00", "end": "23:30"}},
                    {"name": "db-move", "time_zone": "UTC",
                     "once": {"start": "2026-12-05T22:00:00", "end": "2026-12-06T02:00:00"},
                     "checks": {"ids": [101], "guids": [], "tags": ["Env: Staging"]}}]

Without `checks` a window covers every check of the route. The bridge reads all three
versions; a file is written as the lowest version that holds its fields
(`lowest_version`), which older bridges read too.

Integration keys are `SecretStr`: printing, logging or `model_dump()` shows
`**********`; only `routes_to_json` writes them out, for the routes file itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    StringConstraints,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from contract.errors import RoutesFileError, UnreadableFile
from contract.files import read_bounded, write_atomically
from contract.maintenance import (
    MAX_WINDOW_NAME,
    MAX_WINDOWS_PER_ROUTE,
    ONE_SCHEDULE,
    SOME_CHECKS,
    Problem,
    Weekday,
    check_time_of_day,
    check_time_zone,
    check_wall_time,
    once_problems,
    render_path,
    weekly_problems,
)
from contract.redact import last4
from contract.vocabulary import (
    CHECK_GUID_PATTERN,
    DEFAULT_SEVERITY_MAP,
    MAX_CHECK_ID,
    MAX_LINK_HREF,
    MAX_LINK_TEXT,
    ROUTE_NAME_PATTERN,
    AsmSeverity,
    PagerDutySeverity,
    is_routing_key,
    tag_claims_overlap,
)

#: What a routes file without version-2 or -3 fields is written as (older bridges read it).
ROUTES_FILE_VERSION = 1
#: The versions this release reads.
ROUTES_FILE_VERSIONS = (1, 2, 3)
#: Version 2's per-route fields.
VERSION_2_FIELDS = ("integration_id", "previous_routing_keys")
#: Version 3's per-route fields.
VERSION_3_FIELDS = ("maintenance",)
#: The version that carries maintenance windows.
MAINTENANCE_VERSION = 3
#: Old keys a route may carry: each one is a place its resolves may still have to go.
MAX_PREVIOUS_ROUTING_KEYS = 10
#: A routes file for 5,000 services is about 3 MiB; anything far beyond is not one.
MAX_ROUTES_FILE_BYTES = 32 << 20

# Route names become URL path segments (/v1/asm/<route>): keep them boring. pydantic
# anchors patterns at both ends (no trailing-newline loophole).
RouteName = Annotated[str, StringConstraints(pattern=f"^{ROUTE_NAME_PATTERN}$")]
CheckGuid = Annotated[str, StringConstraints(pattern=f"^{CHECK_GUID_PATTERN}$")]
CheckId = Annotated[int, Field(ge=0, le=MAX_CHECK_ID)]
# PagerDuty object ids (PABC123): letters and digits.
ObjectId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,64}$")]

_REVEAL = "reveal_secrets"


def _one_line_text(value: str) -> str:
    if any(ch in value for ch in "\r\n"):
        raise ValueError("must be one line of text")
    return value


class Link(BaseModel):
    """A link PagerDuty shows on the incident (Events API `links`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    href: Annotated[
        str, StringConstraints(pattern=r"^https?://\S+$", max_length=MAX_LINK_HREF)
    ]
    text: Annotated[
        str, StringConstraints(min_length=1, max_length=MAX_LINK_TEXT),
        AfterValidator(_one_line_text),
    ]


def _routing_key_shape(value: SecretStr) -> SecretStr:
    if not is_routing_key(value.get_secret_value()):
        # Never echo the value: it is (or looks like) a secret.
        raise ValueError("must be a PagerDuty integration key: 32 letters or digits")
    return value


def _reveal(value: SecretStr, info: SerializationInfo) -> str:
    if info.context and info.context.get(_REVEAL):
        return value.get_secret_value()
    return str(value)


RoutingKey = Annotated[SecretStr, AfterValidator(_routing_key_shape)]
TagClaim = Annotated[str, StringConstraints(min_length=1, max_length=255)]


# -- maintenance windows (version 3) --------------------------------------------------

WallTime = Annotated[str, BeforeValidator(check_wall_time)]
TimeOfDay = Annotated[str, BeforeValidator(check_time_of_day)]


class OnceSchedule(BaseModel):
    """A one-off window: local start and end (`YYYY-MM-DDTHH:MM:SS`) in its time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: WallTime
    end: WallTime


class WeeklySchedule(BaseModel):
    """A weekly window: on each of `days` from `start` to `end` (HH:MM, local); an end at
    or before the start ends on the next day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: Annotated[tuple[Weekday, ...], Field(min_length=1, max_length=7)]
    start: TimeOfDay
    end: TimeOfDay

    @model_validator(mode="after")
    def _rules(self) -> WeeklySchedule:
        _raise_first(weekly_problems(self.days, self.start, self.end))
        return self


class WindowChecks(BaseModel):
    """The checks of a route a window covers: by id, GUID or tag, matched as routes are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ids: tuple[CheckId, ...] = ()
    guids: tuple[CheckGuid, ...] = ()
    tags: tuple[TagClaim, ...] = ()

    @model_validator(mode="after")
    def _some(self) -> WindowChecks:
        if not (self.ids or self.guids or self.tags):
            raise ValueError(SOME_CHECKS)
        return self


class MaintenanceWindow(BaseModel):
    """A window in which the route's alerts (or those of `checks`) are held, not paged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=MAX_WINDOW_NAME),
                    AfterValidator(_one_line_text)]
    time_zone: Annotated[str, AfterValidator(check_time_zone)]
    once: OnceSchedule | None = None
    weekly: WeeklySchedule | None = None
    checks: WindowChecks | None = None

    @model_validator(mode="after")
    def _one_schedule(self) -> MaintenanceWindow:
        if (self.once is None) == (self.weekly is None):
            raise ValueError(ONE_SCHEDULE)
        if self.once is not None:
            _raise_first(once_problems(self.once.start, self.once.end, self.time_zone))
        return self


def _raise_first(problems: list[Problem]) -> None:
    if problems:
        path, message = problems[0]
        raise ValueError(f"{render_path(path)}: {message}")


class PreviousKey(BaseModel):
    """A key the route used before (version 2): resolves of incidents opened through it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    routing_key: RoutingKey
    integration_id: ObjectId | None = None

    @field_serializer("routing_key", when_used="always")
    def _routing_key_out(self, value: SecretStr, info: SerializationInfo) -> str:
        return _reveal(value, info)


class Route(BaseModel):
    """One PagerDuty service's Apica integration and the ASM checks that page it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    service_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    service_url: str | None = None
    integration_name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    routing_key: RoutingKey
    integration_id: ObjectId | None = None
    previous_routing_keys: Annotated[
        tuple[PreviousKey, ...], Field(max_length=MAX_PREVIOUS_ROUTING_KEYS)
    ] = ()
    check_ids: tuple[CheckId, ...] = ()
    check_guids: tuple[CheckGuid, ...] = ()
    check_tags: tuple[TagClaim, ...] = ()
    severity_map: dict[AsmSeverity, PagerDutySeverity] = Field(
        default_factory=lambda: dict(DEFAULT_SEVERITY_MAP)
    )
    links: tuple[Link, ...] = ()
    maintenance: Annotated[
        tuple[MaintenanceWindow, ...], Field(max_length=MAX_WINDOWS_PER_ROUTE)
    ] = ()

    @field_validator("severity_map")
    @classmethod
    def _complete_severity_map(cls, value: dict[str, str]) -> dict[str, str]:
        return {**DEFAULT_SEVERITY_MAP, **value}

    @model_validator(mode="after")
    def _previous_keys_are_other_keys(self) -> Route:
        seen = {self.routing_key.get_secret_value()}
        for index, previous in enumerate(self.previous_routing_keys):
            key = previous.routing_key.get_secret_value()
            if key in seen:
                raise ValueError(
                    f"previous_routing_keys.{index} repeats key {last4(key)} (the current "
                    "key or an earlier previous one)"
                )
            seen.add(key)
        names = [window.name for window in self.maintenance]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(f"maintenance.{index}: window name {name!r} is used twice")
        return self

    @field_serializer("routing_key", when_used="always")
    def _routing_key_out(self, value: SecretStr, info: SerializationInfo) -> str:
        return _reveal(value, info)

    def listed_keys(self) -> frozenset[str]:
        """Every key the route still lists: the current one and the previous ones."""
        return frozenset({self.routing_key.get_secret_value(),
                          *(p.routing_key.get_secret_value() for p in self.previous_routing_keys)})

    def uses_version_2(self) -> bool:
        return self.integration_id is not None or bool(self.previous_routing_keys)

    def uses_version_3(self) -> bool:
        return bool(self.maintenance)


def lowest_version(routes: Iterable[Route]) -> int:
    """The lowest routes-file version that holds these routes' fields."""
    routes = tuple(routes)
    if any(route.uses_version_3() for route in routes):
        return MAINTENANCE_VERSION
    if any(route.uses_version_2() for route in routes):
        return 2
    return ROUTES_FILE_VERSION


class RoutesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1, 2, 3]
    stack: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    catch_all: RouteName | None = None
    routes: dict[RouteName, Route]

    @model_validator(mode="after")
    def _cross_checks(self) -> RoutesFile:
        for name, route in self.routes.items():
            # An older bridge would refuse these fields: say which version they need.
            if self.version < 2 and route.uses_version_2():
                raise ValueError(
                    f"route {name!r} has {' or '.join(VERSION_2_FIELDS)}, which need "
                    "version 2"
                )
            if self.version < MAINTENANCE_VERSION and route.uses_version_3():
                raise ValueError(f"route {name!r} has maintenance windows, which need version 3")
        if self.catch_all is not None and self.catch_all not in self.routes:
            raise ValueError(
                f"catch_all names route {self.catch_all!r}, which is not in routes"
            )
        claimed: dict[tuple[str, str], str] = {}
        for name, route in self.routes.items():
            claims = [("check id", str(i)) for i in route.check_ids]
            claims += [("check GUID", g.lower()) for g in route.check_guids]
            for claim in claims:
                other = claimed.setdefault(claim, name)
                if other != name:
                    raise ValueError(
                        f"{claim[0]} {claim[1]} is routed to both {other!r} and {name!r}"
                    )
        # Tags as the bridge matches them (trimmed, casefolded): two routes whose tag
        # claims one check can satisfy at once would leave the second never paged.
        tagged = [(name, tag) for name, route in self.routes.items() for tag in route.check_tags]
        for index, (name, tag) in enumerate(tagged):
            for other, other_tag in tagged[index + 1:]:
                if other != name and tag_claims_overlap(tag, other_tag):
                    raise ValueError(
                        f"tag {tag!r} of {name!r} and tag {other_tag!r} of {other!r} claim "
                        "the same checks"
                    )
        return self


def parse_routes(text: str | bytes, source: str) -> RoutesFile:
    """Parse and validate routes-file JSON; errors name `source` and each bad field."""
    try:
        data = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except _DuplicateKey as exc:
        raise RoutesFileError(source, [str(exc)]) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RoutesFileError(source, [f"not valid JSON ({_short(str(exc))})"]) from None
    if not isinstance(data, dict):
        raise RoutesFileError(source, ["must be a JSON object with 'version' and 'routes'"])
    version = data.get("version")
    if isinstance(version, bool) or version not in ROUTES_FILE_VERSIONS:
        raise RoutesFileError(
            source,
            [f"version must be {_choices(ROUTES_FILE_VERSIONS)} (got "
             f"{_short(repr(version))}); regenerate it with this release's "
             "`apica-pd routes pull`"],
        )
    try:
        return RoutesFile.model_validate(data)
    except ValidationError as exc:
        raise RoutesFileError(source, _describe(exc)) from None


def load_routes_file(path: str | os.PathLike[str]) -> RoutesFile:
    try:
        raw = read_bounded(path, MAX_ROUTES_FILE_BYTES, what="routes file")
    except UnreadableFile as exc:
        raise RoutesFileError(exc.path, [exc.reason]) from None
    return parse_routes(raw, str(path))


def routes_to_json(routes: RoutesFile) -> str:
    """The routes file's text, integration keys included: only for writing the file.

    Version-2 and -3 fields left empty are not written, so a file without them is exactly
    what an older bridge (which refuses unknown fields) reads; so are the unused parts of
    a maintenance window.
    """
    data = routes.model_dump(mode="json", context={_REVEAL: True})
    for route in data["routes"].values():
        for field in (*VERSION_2_FIELDS, *VERSION_3_FIELDS):
            if not route[field]:
                del route[field]
        for window in route.get("maintenance", ()):
            for part in ("once", "weekly", "checks"):
                if window[part] is None:
                    del window[part]
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_routes_file(path: str | os.PathLike[str], routes: RoutesFile) -> Path:
    """Write atomically (temp file + fsync + rename) with mode 0600; returns the file written.

    A symbolic link at `path` is followed: the file it points to is replaced and the
    link stays (a link into a config-management tree is usually meant). Missing
    parent directories are created 0700, whatever the umask.
    """
    target = Path(path)
    if target.is_symlink():
        target = target.resolve()
    make_private_dirs(target.parent)
    write_atomically(target, routes_to_json(routes), 0o600)
    return target


def make_private_dirs(directory: Path) -> None:
    """Create `directory` and any missing parents with mode 0700 (umask ignored)."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for new in reversed(missing):
        try:
            new.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(new, 0o700)


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json.loads keeps the last of repeated keys: two routes of one name would merge.
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(f"key {_short(key)!r} appears twice in one object")
        seen.add(key)
    return dict(pairs)


def _choices(values: tuple[int, ...]) -> str:
    *most, last = map(str, values)
    return f"{', '.join(most)} or {last}" if most else last


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{where}: {error['msg']}")
    return problems
