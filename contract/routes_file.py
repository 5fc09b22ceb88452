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
reach the integration that opened them. The bridge reads both versions; a file without
version-2 fields is written as version 1, which older bridges read too.

Integration keys are `SecretStr`: printing, logging or `model_dump()` shows
`**********`; only `routes_to_json` writes them out, for the routes file itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
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

#: What a routes file without version-2 fields is written as (older bridges read it).
ROUTES_FILE_VERSION = 1
#: The versions this release reads.
ROUTES_FILE_VERSIONS = (1, 2)
#: Version 2's per-route fields.
VERSION_2_FIELDS = ("integration_id", "previous_routing_keys")
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
    check_tags: tuple[Annotated[str, StringConstraints(min_length=1, max_length=255)], ...] = ()
    severity_map: dict[AsmSeverity, PagerDutySeverity] = Field(
        default_factory=lambda: dict(DEFAULT_SEVERITY_MAP)
    )
    links: tuple[Link, ...] = ()

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


class RoutesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1, 2]
    stack: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    catch_all: RouteName | None = None
    routes: dict[RouteName, Route]

    @model_validator(mode="after")
    def _cross_checks(self) -> RoutesFile:
        if self.version == 1:
            for name, route in self.routes.items():
                if route.uses_version_2():
                    # An older bridge would refuse these fields: say which version they need.
                    raise ValueError(
                        f"route {name!r} has {' or '.join(VERSION_2_FIELDS)}, which need "
                        "version 2"
                    )
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
            [f"version must be {' or '.join(map(str, ROUTES_FILE_VERSIONS))} (got "
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

    Version-2 fields left empty are not written, so a file without them is exactly what
    an older bridge (which refuses unknown fields) reads.
    """
    data = routes.model_dump(mode="json", context={_REVEAL: True})
    for route in data["routes"].values():
        for field in VERSION_2_FIELDS:
            if not route[field]:
                del route[field]
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


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{where}: {error['msg']}")
    return problems
