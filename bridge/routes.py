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

Integration keys are `SecretStr`: printing, logging or `model_dump()` shows
`**********`; only `routes_to_json` writes them out, for the routes file itself.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
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

ROUTES_FILE_VERSION = 1

AsmSeverity = Literal["F", "E", "W", "I"]
PagerDutySeverity = Literal["critical", "error", "warning", "info"]
DEFAULT_SEVERITY_MAP: dict[str, str] = {
    "F": "critical",
    "E": "error",
    "W": "warning",
    "I": "info",
}

# Route names become URL path segments (/v1/asm/<route>): keep them boring.
ROUTE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
RouteName = Annotated[str, StringConstraints(pattern=ROUTE_NAME_PATTERN)]
ROUTING_KEY_PATTERN = re.compile(r"^[A-Za-z0-9]{32}$")

_REVEAL = "reveal_secrets"


class RoutesFileError(Exception):
    """A routes file that cannot be used; `str()` names the source and what to fix."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    href: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2048)]
    text: Annotated[str, StringConstraints(min_length=1, max_length=255)]


class Route(BaseModel):
    """One PagerDuty service's Apica integration and the ASM checks that page it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    service_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    service_url: str | None = None
    integration_name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    routing_key: SecretStr
    check_ids: tuple[Annotated[int, Field(ge=0)], ...] = ()
    check_guids: tuple[Annotated[str, StringConstraints(min_length=1, max_length=64)], ...] = ()
    check_tags: tuple[Annotated[str, StringConstraints(min_length=1, max_length=255)], ...] = ()
    severity_map: dict[AsmSeverity, PagerDutySeverity] = Field(
        default_factory=lambda: dict(DEFAULT_SEVERITY_MAP)
    )
    links: tuple[Link, ...] = ()

    @field_validator("routing_key")
    @classmethod
    def _routing_key_shape(cls, value: SecretStr) -> SecretStr:
        if not ROUTING_KEY_PATTERN.match(value.get_secret_value()):
            # Never echo the value: it is (or looks like) a secret.
            raise ValueError("must be a PagerDuty integration key: 32 letters or digits")
        return value

    @field_validator("severity_map")
    @classmethod
    def _complete_severity_map(cls, value: dict[str, str]) -> dict[str, str]:
        return {**DEFAULT_SEVERITY_MAP, **value}

    @field_serializer("routing_key", when_used="always")
    def _routing_key_out(self, value: SecretStr, info: SerializationInfo) -> str:
        if info.context and info.context.get(_REVEAL):
            return value.get_secret_value()
        return str(value)


class RoutesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    stack: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    catch_all: RouteName | None = None
    routes: dict[RouteName, Route]

    @model_validator(mode="after")
    def _cross_checks(self) -> RoutesFile:
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
        return self


def parse_routes(text: str | bytes, source: str) -> RoutesFile:
    """Parse and validate routes-file JSON; errors name `source` and each bad field."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RoutesFileError(source, [f"not valid JSON ({exc})"]) from None
    if not isinstance(data, dict):
        raise RoutesFileError(source, ["must be a JSON object with 'version' and 'routes'"])
    if data.get("version") != ROUTES_FILE_VERSION:
        raise RoutesFileError(
            source,
            [f"version must be {ROUTES_FILE_VERSION} (got {data.get('version')!r}); "
             "regenerate it with this release's `apica-pd routes pull`"],
        )
    try:
        return RoutesFile.model_validate(data)
    except ValidationError as exc:
        raise RoutesFileError(source, _describe(exc)) from None


def load_routes_file(path: str | os.PathLike[str]) -> RoutesFile:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RoutesFileError(str(path), [f"cannot read it: {exc.strerror}"]) from None
    return parse_routes(raw, str(path))


def routes_to_json(routes: RoutesFile) -> str:
    """The routes file's text, integration keys included: only for writing the file."""
    data = routes.model_dump(mode="json", context={_REVEAL: True})
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_routes_file(path: str | os.PathLike[str], routes: RoutesFile) -> Path:
    """Write atomically (temp file + fsync + rename) with mode 0600."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = routes_to_json(routes)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{where}: {error['msg']}")
    return problems
