"""What the ASM REST API v3 returns, as typed values (pure: no network here).

`AsmCheck` is one item of `GET /checks` (or the answer of `GET /checks/{id}`);
`AsmResult` one item of `GET /checks/{id}/results`. Attributes carry the API's own
field names, except where the API's name says less than ours: `timestamp_utc` is
`timestamp` (an aware UTC datetime), a result's `identifier` is `result_id`, and a
check's `last_result_details.message` is `message`. Fields the API may add are
ignored. Which field is confirmed by a public source and which is an assumption:
docs/asm.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasPath, BeforeValidator, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as _ValidationError
from pydantic.dataclasses import dataclass

from bridge.errors import AsmApiError

#: A check's severity; `U` (unknown: no result yet) appears in check lists, never in results.
CheckSeverity = Literal["F", "E", "W", "I", "U"]
CHECK_SEVERITIES: tuple[CheckSeverity, ...] = ("F", "E", "W", "I", "U")


def _utc(value: datetime) -> datetime:
    # ASM writes "2013-08-20T13:32:08": UTC without a zone.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _unknown_if_null(value: object) -> object:
    return "U" if value is None else value


def _no_tags_if_null(value: object) -> object:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {key: () if values is None else values for key, values in value.items()}
    return value


UtcTime = Annotated[datetime, AfterValidator(_utc)]
Severity = Annotated[CheckSeverity, BeforeValidator(_unknown_if_null)]
Number = int | float
Tags = Annotated[dict[str, tuple[str, ...]], BeforeValidator(_no_tags_if_null)]

# extra="ignore": the real API returns more (type-specific "extended check info").
_WIRE = ConfigDict(extra="ignore", populate_by_name=True)


@dataclass(frozen=True, config=_WIRE)
class AsmCheck:
    """One ASM check as `GET /checks` lists it."""

    id: int
    guid: str
    name: str
    enabled: bool
    severity: Severity = "U"
    #: Tag key -> values, as ASM holds them (not normalised).
    tags: Tags = Field(default_factory=dict)
    check_type: str | None = None
    check_type_name: str | None = None
    #: Last result's measured value and unit.
    value: Number | None = None
    unit: str | None = None
    #: Time of the last result.
    timestamp: UtcTime | None = Field(default=None, validation_alias="timestamp_utc")
    #: Last result's message.
    message: str | None = Field(
        default=None, validation_alias=AliasPath("last_result_details", "message")
    )
    location: str | None = None
    url: str | None = None
    #: 0 = the check runs only when asked (manual mode).
    interval_seconds: int | None = None
    threshold_w: Number | None = None
    threshold_e: Number | None = None
    target_sla: float | None = None
    sla_percent_current_month: float | None = None
    #: Schedules as ASM's text (its format is not public: kept as given).
    scheduled_inclusion: str | None = None
    scheduled_exclusion: str | None = None


@dataclass(frozen=True, config=_WIRE)
class AsmResult:
    """One result of a check (`detail_level=1` fills message, result_id, attempts, result_code)."""

    check_id: int
    severity: Severity
    timestamp: UtcTime = Field(validation_alias="timestamp_utc")
    value: Number | None = None
    unit: str | None = None
    message: str | None = None
    #: The result's GUID with dashes (the webhook's %RESULT_G-U-I-D%).
    result_id: str | None = Field(default=None, validation_alias="identifier")
    attempts: int | None = None
    result_code: int | None = None

    @property
    def result_guid(self) -> str | None:
        """The result id without dashes, as the webhook's %RESULT_GUID% spells it."""
        return self.result_id.replace("-", "").lower() if self.result_id else None


_CHECK = TypeAdapter(AsmCheck)
_CHECKS = TypeAdapter(list[AsmCheck])
_RESULTS = TypeAdapter(list[AsmResult])


def parse_check(data: Any, what: str) -> AsmCheck:
    """The check in an answer of `GET /checks/{id}`; `AsmApiError` names the bad field."""
    return _parse(_CHECK, data, what)


def parse_checks(data: Any, what: str) -> tuple[AsmCheck, ...]:
    return tuple(_parse(_CHECKS, data, what))


def parse_results(data: Any, what: str) -> tuple[AsmResult, ...]:
    return tuple(_parse(_RESULTS, data, what))


def _parse(adapter: TypeAdapter[Any], data: Any, what: str) -> Any:
    try:
        return adapter.validate_python(data)
    except _ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        where = "".join(
            f"item {part}: " if isinstance(part, int) else f"{part}: " for part in first["loc"]
        )
        got = first.get("input")
        shown = f" (got {got!r})" if isinstance(got, str | int) and len(str(got)) <= 40 else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise AsmApiError(
            f"{what}: unexpected answer: {where}{first['msg']}{shown}{more}"
        ) from None
