"""Stack-file models: the raw file as written, and the resolved `Stack` the program uses.

Two layers, on purpose:

* `RawStack` and its parts mirror `stacks/<stack>.yaml` key for key. They are strict
  (a YAML `30` is not the string `"30"`), forbid unknown keys, and already check
  each value against what PagerDuty accepts, so every error lands on the exact key.
  Durations are parsed to seconds here; the JSON Schema still describes them as the
  strings a user writes. `apica-pd schema` exports this layer.
* `Stack` and its parts are the resolved result (see `infra.validate.load_stack`):
  defaults merged into every service, durations in seconds (None = off), urgency in
  one shape, integration names defaulted, severity maps complete. They are frozen,
  plain and position-free: plan, diff and the Pulumi program read only these.

Limits quoted from PagerDuty (REST API v2 OpenAPI and the pagerduty Terraform provider,
which pulumi-pagerduty wraps) are named constants below; docs/stack-file.md lists them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    WithJsonSchema,
    model_validator,
)

from contract.maintenance import (
    MAX_WINDOW_NAME,
    MAX_WINDOWS_PER_ROUTE,
    TIME_OF_DAY_PATTERN,
    WALL_TIME_PATTERN,
    Weekday,
    check_wall_time,
    time_zone_names,
)
from contract.routes_file import Link, MaintenanceWindow
from contract.vocabulary import (
    CHECK_GUID_PATTERN,
    DEFAULT_SEVERITY_MAP,
    MAX_CHECK_ID,
    ROUTE_NAME_PATTERN,
    AsmSeverity,
    PagerDutySeverity,
    UrgencyLevel,
)
from infra.messages import describe, quoted

# --- PagerDuty limits --------------------------------------------------------------

#: Escalation policy `num_loops` (Terraform provider: IntBetween(0, 9)).
MAX_LOOPS = 9
#: Escalation rule `escalation_delay_in_minutes` (Terraform provider: IntAtLeast(1)).
MIN_ESCALATION_DELAY_MINUTES = 1
#: Targets per escalation rule (OpenAPI EscalationRule.targets: minItems 1, maxItems 10).
MAX_TARGETS_PER_RULE = 10
#: Time-based grouping `timeout` (alert grouping setting, OpenAPI: 60..86400 seconds;
#: unset = until resolved). Stack files keep whole minutes, as the service field had.
MAX_TIME_GROUPING_MINUTES = 1440
#: Intelligent / content-based grouping `time_window` in seconds (OpenAPI: 300..3600).
MIN_GROUPING_WINDOW_SECONDS = 300
MAX_GROUPING_WINDOW_SECONDS = 3600
#: Content-based grouping may also use exactly 24 hours.
CONTENT_GROUPING_DAY_SECONDS = 86400
#: Auto-pause `timeout` in seconds (OpenAPI enum; 0 would mean "recommended").
AUTO_PAUSE_TIMEOUTS = (120, 180, 300, 600, 900)
#: Change budget defaults (octoDNS's: 30% of what exists, and only from 10 things on).
DEFAULT_BUDGET_PERCENT = 30
DEFAULT_BUDGET_MIN_EXISTING = 10
#: Our own cap on display names; PagerDuty documents none, and longer names are unusable.
MAX_NAME_LENGTH = 255

# Logical names become Pulumi resource names and (for services) bridge URL segments.
LOGICAL_NAME_PATTERN = f"^{ROUTE_NAME_PATTERN}$"
_LOGICAL_NAME_HINT = (
    "use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
)

_DURATION_RE = re.compile(r"^([0-9]{1,7})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION_PATTERN = r"^[0-9]{1,7}[smhd]$"
_HHMM_RE = re.compile(f"^{TIME_OF_DAY_PATTERN}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_VENDOR_ID_RE = re.compile(r"^[A-Z0-9]{1,20}$")
# PagerDuty object ids as `adopt:` takes them ("PIJ90N7"); an integration's import id
# is its service's id and its own, joined by a dot (the provider's importer splits it).
PAGERDUTY_ID_PATTERN = r"[A-Z0-9]{2,20}"
_PAGERDUTY_ID_RE = re.compile(f"^{PAGERDUTY_ID_PATTERN}$")
_INTEGRATION_IMPORT_ID_RE = re.compile(f"^({PAGERDUTY_ID_PATTERN})\\.({PAGERDUTY_ID_PATTERN})$")
_PERCENT_RE = re.compile(r"^([0-9]{1,3})%$")


# --- value checks (raise ValueError with the message a user reads) -----------------


def parse_duration(value: Any) -> int:
    """`'30m'` -> 1800. Raises ValueError naming the accepted forms."""
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(
                f"must be a duration with a unit such as '{value}m' or '{value}s' "
                f"(a bare number has no unit)"
            )
        raise ValueError(f"must be a duration such as '30m', got {describe(value)}")
    match = _DURATION_RE.fullmatch(value.strip())
    if not match:
        raise ValueError(
            f"{quoted(value)} is not a duration: write a number and one unit, "
            "s, m, h or d (e.g. '90s', '30m', '4h', '1d')"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _fmt_seconds(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        # "24h" reads better than "1d"; days only from two on.
        if seconds % size == 0 and (unit != "d" or seconds > 86400):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _duration(
    *,
    off: str | None = None,
    off_value: int | None = None,
    minimum: int = 1,
    maximum: int | None = None,
    whole_minutes: bool = False,
    allowed: tuple[int, ...] = (),
    extra: tuple[int, ...] = (),
    result: Literal["seconds", "minutes"] = "seconds",
) -> Callable[[Any], int | None]:
    """A BeforeValidator for a duration field with PagerDuty's limits for that field."""

    def check(value: Any) -> int | None:
        if off is not None and value == off:
            return off_value
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            if off is not None:
                raise ValueError(f"{exc}; or '{off}'") from None
            raise
        if allowed and seconds not in allowed:
            choices = ", ".join(_fmt_seconds(s) for s in allowed)
            raise ValueError(f"must be one of {choices} (PagerDuty accepts no other value)")
        in_range = seconds >= minimum and (maximum is None or seconds <= maximum)
        if not allowed and not in_range and seconds not in extra:
            if seconds == 0 and off is not None:
                raise ValueError(f"must be more than 0; write '{off}' instead")
            limit = f"at least {_fmt_seconds(minimum)}"
            if maximum is not None:
                limit = f"between {_fmt_seconds(minimum)} and {_fmt_seconds(maximum)}"
            tail = "".join(f" or exactly {_fmt_seconds(s)}" for s in extra)
            raise ValueError(f"must be {limit}{tail} (PagerDuty's limit), got {value!r}")
        if whole_minutes and seconds % 60:
            raise ValueError(f"must be whole minutes, e.g. '{round(seconds / 60)}m'")
        return seconds // 60 if result == "minutes" else seconds

    return check


def _duration_schema(description: str, off: str | None = None) -> WithJsonSchema:
    pattern = DURATION_PATTERN if off is None else f"^({off}|[0-9]{{1,7}}[smhd])$"
    return WithJsonSchema({"type": "string", "pattern": pattern, "description": description})


def _display_name(*, special: bool) -> Callable[[Any], str]:
    """PagerDuty's name rules (Terraform provider `ValidateIsAllowedString`)."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {describe(value)}")
        if not value.strip():
            raise ValueError("must not be blank")
        if len(value) > MAX_NAME_LENGTH:
            raise ValueError(f"must be at most {MAX_NAME_LENGTH} characters (has {len(value)})")
        if value != value.rstrip():
            raise ValueError("must not end with white space (PagerDuty refuses it)")
        if not value.isprintable():
            raise ValueError("must not contain control or other non-printable characters")
        if special:
            bad = sorted({c for c in value if c in "\\/&<>"})
            if bad:
                shown = " ".join(bad)
                raise ValueError(f"must not contain {shown} (PagerDuty refuses \\ / & < > here)")
        return value

    return check


def _nonblank(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {describe(value)}")
    if not value.strip():
        raise ValueError("must not be blank")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"must be at most {MAX_NAME_LENGTH} characters (has {len(value)})")
    return value


def _printable(value: Any) -> str:
    value = _nonblank(value)
    if not value.isprintable():
        # A name PagerDuty looks up never holds a newline or control character.
        raise ValueError("must not contain control or other non-printable characters")
    return value


def _email(value: Any) -> str:
    value = _nonblank(value)
    if not _EMAIL_RE.fullmatch(value):
        raise ValueError(f"{quoted(value)} is not an e-mail address (users are named by e-mail)")
    return value


def _vendor_id(value: Any) -> str:
    value = _nonblank(value)
    if not _VENDOR_ID_RE.fullmatch(value):
        raise ValueError(
            f"{quoted(value)} is not a PagerDuty vendor id (upper-case letters and digits, "
            "e.g. 'PAPICA1')"
        )
    return value


def _import_id(shape: re.Pattern[str], what: str, wrong: str) -> Callable[[Any], str]:
    """A BeforeValidator for an `adopt:` id: `what` names its kind, `wrong` how to fix it."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be {what}, got {describe(value)}")
        if not shape.fullmatch(value):
            raise ValueError(f"{quoted(value)} {wrong}")
        return value

    return check


_adopt_id = _import_id(
    _PAGERDUTY_ID_RE,
    "a PagerDuty id such as 'PIJ90N7'",
    "is not a PagerDuty id (2-20 upper-case letters and digits, e.g. 'PIJ90N7', as "
    "`apica-pd import` writes it)",
)
_integration_import_id = _import_id(
    _INTEGRATION_IMPORT_ID_RE,
    "an integration import id such as 'PIJ90N7.PQ12345'",
    "is not an integration import id: write the service's id, a dot and the integration's "
    "id, e.g. 'PIJ90N7.PQ12345'",
)


def integration_import_parts(import_id: str) -> tuple[str, str]:
    """`'PSVC001.PINT001'` -> (service id, integration id); the id must be valid."""
    service_id, _, integration_id = import_id.partition(".")
    return service_id, integration_id


def _percent(value: Any) -> int:
    match = _PERCENT_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) > 100:
        raise ValueError(f"must be a percentage from 0% to 100%, e.g. '30%', got {describe(value)}")
    return int(match.group(1))


def format_duration(seconds: int) -> str:
    """Seconds in the stack file's words: 1800 -> '30m', 86400 -> '24h', 90 -> '90s'."""
    return _fmt_seconds(seconds)


def _hhmm(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError('must be a time such as "09:00" (quote it)')
    if not isinstance(value, str) or not _HHMM_RE.fullmatch(value):
        raise ValueError(f'{quoted(value)} is not a time of day: write HH:MM, e.g. "09:00"')
    return value


def _time_zone(value: Any) -> str:
    value = _nonblank(value)
    zones = time_zone_names()
    if not zones:
        raise ValueError("cannot check time zones: no time zone database (pip install tzdata)")
    if value not in zones:
        close = difflib.get_close_matches(value, sorted(zones), n=1, cutoff=0.6)
        hint = (
            f"; did you mean {close[0]!r}?" if close else " (use an IANA name like Europe/Berlin)"
        )
        raise ValueError(f"unknown time zone {quoted(value)}{hint}")
    return value


# For editors (ECMA-262 regular expressions): no control characters, no line breaks.
_NO_CONTROLS = r"\x00-\x1f\x7f-\x9f"
ServiceName = Annotated[
    str,
    BeforeValidator(_display_name(special=False)),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_NAME_LENGTH,
            "pattern": f"^[^{_NO_CONTROLS}]*$",
        }
    ),
]
PolicyName = Annotated[
    str,
    BeforeValidator(_display_name(special=True)),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_NAME_LENGTH,
            "pattern": f"^[^\\\\/&<>{_NO_CONTROLS}]*$",
        }
    ),
]
Text = Annotated[
    str,
    BeforeValidator(_printable),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH}),
]
Description = str
Email = Annotated[
    str, BeforeValidator(_email), WithJsonSchema({"type": "string", "format": "email"})
]
VendorId = Annotated[
    str,
    BeforeValidator(_vendor_id),
    WithJsonSchema({"type": "string", "pattern": _VENDOR_ID_RE.pattern}),
]
TimeOfDay = Annotated[
    str,
    BeforeValidator(_hhmm),
    WithJsonSchema({"type": "string", "pattern": _HHMM_RE.pattern, "examples": ["09:00"]}),
]
TimeZone = Annotated[
    str, BeforeValidator(_time_zone), WithJsonSchema({"type": "string", "examples": ["UTC"]})
]
LogicalName = Annotated[str, StringConstraints(pattern=LOGICAL_NAME_PATTERN)]
AdoptId = Annotated[
    str,
    BeforeValidator(_adopt_id),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _PAGERDUTY_ID_RE.pattern,
            "description": "PagerDuty id of the existing object to adopt (pulumi up imports it).",
        }
    ),
]
IntegrationImportId = Annotated[
    str,
    BeforeValidator(_integration_import_id),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _INTEGRATION_IMPORT_ID_RE.pattern,
            "description": "SERVICEID.INTEGRATIONID of the existing integration to adopt.",
        }
    ),
]
Percent = Annotated[
    int,
    BeforeValidator(_percent),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{1,3}%$", "examples": ["30%"]}),
]

OffDuration = Annotated[
    int | None,
    BeforeValidator(_duration(off="off")),
    _duration_schema("A duration such as 30m, 4h or 1d, or 'off'.", off="off"),
]
EscalationDelay = Annotated[
    int,
    BeforeValidator(
        _duration(minimum=MIN_ESCALATION_DELAY_MINUTES * 60, whole_minutes=True, result="minutes")
    ),
    _duration_schema("Whole minutes before escalating to the next rule, e.g. 30m (at least 1m)."),
]
TimeGroupingTimeout = Annotated[
    int,
    BeforeValidator(
        _duration(
            off="until_resolved",
            off_value=0,  # PagerDuty's "group until the incident is resolved"
            minimum=60,
            maximum=MAX_TIME_GROUPING_MINUTES * 60,
            whole_minutes=True,
            result="minutes",
        )
    ),
    _duration_schema(
        "Group alerts arriving within this time (1m to 24h, whole minutes), or 'until_resolved'.",
        off="until_resolved",
    ),
]
IntelligentWindow = Annotated[
    int | None,
    BeforeValidator(
        _duration(
            off="recommended",
            minimum=MIN_GROUPING_WINDOW_SECONDS,
            maximum=MAX_GROUPING_WINDOW_SECONDS,
        )
    ),
    _duration_schema("5m to 1h, or 'recommended' (PagerDuty picks).", off="recommended"),
]
ContentWindow = Annotated[
    int | None,
    BeforeValidator(
        _duration(
            off="recommended",
            minimum=MIN_GROUPING_WINDOW_SECONDS,
            maximum=MAX_GROUPING_WINDOW_SECONDS,
            extra=(CONTENT_GROUPING_DAY_SECONDS,),
        )
    ),
    _duration_schema("5m to 1h, or exactly 24h, or 'recommended'.", off="recommended"),
]
AutoPauseTimeout = Annotated[
    int,
    BeforeValidator(_duration(allowed=AUTO_PAUSE_TIMEOUTS)),
    WithJsonSchema({"type": "string", "enum": ["2m", "3m", "5m", "10m", "15m"]}),
]


# --- raw file model ------------------------------------------------------------------


class _Raw(BaseModel):
    # strict: YAML already typed every scalar; coercing "30" to 30 would hide mistakes.
    model_config = ConfigDict(extra="forbid", strict=True)


class RawSupportHours(_Raw):
    """Support hours: urgency `during` them, `outside` them (PagerDuty fixed_time_per_day)."""

    time_zone: TimeZone = Field(description="IANA time zone, e.g. Europe/Berlin.")
    days: list[Weekday] = Field(min_length=1, max_length=7, description="e.g. [mon, tue]")
    start: TimeOfDay = Field(description='Start of support hours, "HH:MM".')
    end: TimeOfDay = Field(description='End of support hours, "HH:MM" (after start).')
    during: UrgencyLevel = "high"
    outside: UrgencyLevel = "low"


class RawSupportHoursUrgency(_Raw):
    support_hours: RawSupportHours


def _urgency_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "constant"
    if isinstance(value, dict):
        return "support_hours"
    return None


RawUrgency = Annotated[
    Annotated[UrgencyLevel, Tag("constant")]
    | Annotated[RawSupportHoursUrgency, Tag("support_hours")],
    Discriminator(
        _urgency_tag,
        custom_error_type="urgency_shape",
        custom_error_message=("must be severity_based, high, low or {support_hours: {...}}"),
    ),
]


class RawTimeGrouping(_Raw):
    type: Literal["time"]
    timeout: TimeGroupingTimeout = Field(
        description="Group alerts arriving within this time (whole minutes), or until_resolved."
    )


class RawIntelligentGrouping(_Raw):
    type: Literal["intelligent"]
    time_window: IntelligentWindow = None


class RawContentGrouping(_Raw):
    type: Literal["content_based"]
    aggregate: Literal["all", "any"]
    fields: list[Text] = Field(min_length=1, description="Alert fields to match, e.g. summary.")
    time_window: ContentWindow = None


def _grouping_tag(value: Any) -> str | None:
    if value == "none":
        return "none"
    if isinstance(value, dict) and value.get("type") in ("time", "intelligent", "content_based"):
        return str(value["type"])
    return None


RawAlertGrouping = Annotated[
    Annotated[Literal["none"], Tag("none")]
    | Annotated[RawTimeGrouping, Tag("time")]
    | Annotated[RawIntelligentGrouping, Tag("intelligent")]
    | Annotated[RawContentGrouping, Tag("content_based")],
    Discriminator(
        _grouping_tag,
        custom_error_type="alert_grouping_shape",
        custom_error_message=(
            "must be none or a mapping whose type is time, intelligent or content_based"
        ),
    ),
]


class RawAutoPause(_Raw):
    enabled: bool
    timeout: AutoPauseTimeout | None = Field(
        default=None, description="How long to hold transient alerts; default 5m."
    )


SeverityMap = dict[AsmSeverity, PagerDutySeverity]


class RawDefaults(_Raw):
    """Applied to every service that does not set the key itself."""

    escalation_policy: LogicalName | None = Field(
        default=None, description="Key in escalation_policies for new services."
    )
    urgency: RawUrgency | None = None
    auto_resolve_timeout: OffDuration = Field(default=None, json_schema_extra={"default": "4h"})
    acknowledgement_timeout: OffDuration = Field(default=None, json_schema_extra={"default": "30m"})
    alert_grouping: RawAlertGrouping | None = None
    auto_pause: RawAutoPause | None = None
    team: Text | None = None
    severity_map: SeverityMap | None = None
    protect: bool | None = None


class RawApica(_Raw):
    vendor_id: VendorId | None = Field(
        default=None, description="Apica's PagerDuty vendor id; skips the get_vendor look-up."
    )


class RawTarget(_Raw):
    user: Email | None = Field(default=None, description="A user, by e-mail.")
    schedule: Text | None = Field(default=None, description="A schedule, by name.")

    @model_validator(mode="after")
    def _exactly_one(self) -> RawTarget:
        if (self.user is None) == (self.schedule is None):
            raise ValueError("a target is either {user: <e-mail>} or {schedule: <name>}")
        return self


class RawRule(_Raw):
    delay: EscalationDelay
    assignment: Literal["notify_all", "round_robin"] = "notify_all"
    targets: list[RawTarget] = Field(min_length=1, max_length=MAX_TARGETS_PER_RULE)


class RawNewPolicy(_Raw):
    name: PolicyName
    description: Description | None = None
    loops: int = Field(default=0, ge=0, le=MAX_LOOPS, description="num_loops, 0 to 9.")
    team: Text | None = None
    protect: bool | None = None
    rules: list[RawRule] = Field(min_length=1)
    adopt: AdoptId | None = None


class RawExistingPolicy(_Raw):
    existing: PolicyName = Field(description="Name of an existing escalation policy.")


def _existing_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return "existing" if "existing" in value else "new"
    return None


RawPolicy = Annotated[
    Annotated[RawNewPolicy, Tag("new")] | Annotated[RawExistingPolicy, Tag("existing")],
    Discriminator(
        _existing_tag,
        custom_error_type="policy_shape",
        custom_error_message="must be a mapping: {name: ..., rules: [...]} or {existing: <name>}",
    ),
]


class RawChecks(_Raw):
    # The bridge matches ids and GUIDs of ASM's shapes only: refuse what it never could.
    ids: list[Annotated[int, Field(ge=0, le=MAX_CHECK_ID)]] = Field(default_factory=list)
    guids: list[Annotated[str, StringConstraints(pattern=f"^{CHECK_GUID_PATTERN}$")]] = Field(
        default_factory=list
    )
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=255)]] = Field(
        default_factory=list, description='ASM tags, "Key: Value" or "Key".'
    )


class RawLink(Link):
    """A link PagerDuty shows on the incident (the routes file's `Link`, typed strictly)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


WindowName = Annotated[
    str,
    BeforeValidator(_printable),
    StringConstraints(max_length=MAX_WINDOW_NAME),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_WINDOW_NAME}),
]
WallTime = Annotated[
    str,
    BeforeValidator(check_wall_time),
    WithJsonSchema({"type": "string", "pattern": f"^{WALL_TIME_PATTERN}$",
                    "examples": ["2026-12-05T22:00"]}),
]


class RawOnceWindow(_Raw):
    start: WallTime = Field(description="Local date and time the window opens.")
    end: WallTime = Field(description="Local date and time it closes (after start).")


class RawWeeklyWindow(_Raw):
    days: list[Weekday] = Field(min_length=1, max_length=7, description="e.g. [sat, sun]")
    start: TimeOfDay = Field(description='Local time it opens on each day, "HH:MM".')
    end: TimeOfDay = Field(
        description='Local time it closes, "HH:MM"; at or before start: the next day.'
    )


class RawMaintenanceWindow(_Raw):
    """Alerts of the service (or of `checks`) are recorded but not paged while it is open;
    at its end the bridge pages the checks still failing and resolves those that recovered."""

    name: WindowName = Field(
        description="Unique within the service; logs and `apica-pd maintenance` show it."
    )
    time_zone: TimeZone = Field(description="IANA time zone of start and end.")
    once: RawOnceWindow | None = None
    weekly: RawWeeklyWindow | None = None
    checks: RawChecks | None = Field(
        default=None, description="Only these checks of the service; default: all of them."
    )


IntegrationType = Literal["apica", "events_api_v2"]


class RawIntegration(_Raw):
    name: ServiceName | None = Field(
        default=None, description='Default: "Apica-" + service name, spaces as "-".'
    )
    type: IntegrationType = Field(
        default="apica",
        description="apica: PagerDuty's Apica vendor integration (default); "
        "events_api_v2: a plain Events API v2 integration, no vendor.",
    )
    vendor_id: VendorId | None = Field(default=None, description="Only with type apica.")
    checks: RawChecks = Field(default_factory=RawChecks)
    severity_map: SeverityMap | None = None
    links: list[RawLink] = Field(default_factory=list)
    maintenance: list[RawMaintenanceWindow] = Field(
        default_factory=list, max_length=MAX_WINDOWS_PER_ROUTE,
        description="Maintenance windows: one-off (`once`) or weekly, in a time zone.",
    )
    adopt: IntegrationImportId | None = None


def _integration_tag(value: Any) -> str | None:
    if value == "none":
        return "none"
    return "integration" if isinstance(value, dict) else None


#: A new service's integration: the Apica integration, or `none` for a service that ASM
#: does not page (yet): adopted as it is, with no Apica integration and no route.
RawServiceIntegration = Annotated[
    Annotated[RawIntegration, Tag("integration")] | Annotated[Literal["none"], Tag("none")],
    Discriminator(
        _integration_tag,
        custom_error_type="integration_shape",
        custom_error_message=(
            "must be a mapping ({checks: ..., ...}) or none (no Apica integration)"
        ),
    ),
]


class RawNewService(_Raw):
    name: ServiceName
    description: Description | None = None
    escalation_policy: LogicalName | None = None
    urgency: RawUrgency | None = None
    auto_resolve_timeout: OffDuration = None
    acknowledgement_timeout: OffDuration = None
    alert_grouping: RawAlertGrouping | None = None
    auto_pause: RawAutoPause | None = None
    team: Text | None = None
    protect: bool | None = None
    integration: RawServiceIntegration = Field(default_factory=RawIntegration)
    adopt: AdoptId | None = None


class RawExistingService(_Raw):
    existing: ServiceName = Field(description="Name of an existing PagerDuty service.")
    integration: RawIntegration = Field(default_factory=RawIntegration)


RawService = Annotated[
    Annotated[RawNewService, Tag("new")] | Annotated[RawExistingService, Tag("existing")],
    Discriminator(
        _existing_tag,
        custom_error_type="service_shape",
        custom_error_message="must be a mapping: {name: ..., ...} or {existing: <name>}",
    ),
]


class RawChangeBudget(_Raw):
    """How much of the existing stack one change may change before `diff --check` blocks it."""

    services_changed: Percent = Field(
        default=DEFAULT_BUDGET_PERCENT,
        json_schema_extra={"default": f"{DEFAULT_BUDGET_PERCENT}%"},
        description="Largest share of the existing services one change may change.",
    )
    checks_rerouted: Percent = Field(
        default=DEFAULT_BUDGET_PERCENT,
        json_schema_extra={"default": f"{DEFAULT_BUDGET_PERCENT}%"},
        description="Largest share of the routed checks one change may send elsewhere.",
    )
    policies_changed: Percent = Field(
        default=DEFAULT_BUDGET_PERCENT,
        json_schema_extra={"default": f"{DEFAULT_BUDGET_PERCENT}%"},
        description="Largest share of the existing escalation policies one change may change.",
    )
    min_existing: int = Field(
        default=DEFAULT_BUDGET_MIN_EXISTING,
        ge=1,
        description="A budget applies only when the stack had at least this many of the things.",
    )


class RawStack(_Raw):
    """A stack file: `stacks/<stack>.yaml`."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        title="apica-pagerduty stack file",
    )

    defaults: RawDefaults = Field(default_factory=RawDefaults)
    apica: RawApica = Field(default_factory=RawApica)
    escalation_policies: dict[LogicalName, RawPolicy] = Field(default_factory=dict)
    services: dict[LogicalName, RawService] = Field(
        min_length=1, description="Keys are route names: /v1/asm/<key> on the bridge."
    )
    catch_all: LogicalName | None = Field(
        default=None, description="Service key for checks no service claims."
    )
    allow_destroy: list[LogicalName] = Field(
        default_factory=list,
        description=(
            "Service or escalation-policy keys whose removal or replacement this version "
            "allows (`apica-pd diff --check`). Not cross-checked: they usually name "
            "something just removed."
        ),
    )
    allow_mass_change: bool = Field(
        default=False,
        description="Let this version exceed the change budget (`apica-pd diff --check`).",
    )
    change_budget: RawChangeBudget = Field(default_factory=RawChangeBudget)


# --- resolved model (what plan, diff and the Pulumi program read) --------------------


class _Resolved(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Resolved):
    """An escalation target, to be looked up: `get_user(email)` or `get_schedule(name)`."""

    type: Literal["user", "schedule"]
    #: The user's e-mail for `user`, the schedule's name for `schedule`.
    ref: str


class Rule(_Resolved):
    """One escalation rule."""

    delay_minutes: int  # escalation_delay_in_minutes, >= 1
    #: escalation_rule_assignment_strategy as PagerDuty spells it.
    assignment: Literal["assign_to_everyone", "round_robin"]
    targets: tuple[Target, ...]


class NewPolicy(_Resolved):
    """An escalation policy this stack creates and manages."""

    kind: Literal["new"] = "new"
    key: str  # logical name = Pulumi resource name
    name: str
    description: str | None
    num_loops: int
    adopt: str | None = None  # PagerDuty id to import instead of creating
    team: str | None  # existing team, by name; None = no team
    protect: bool
    rules: tuple[Rule, ...]


class ExistingPolicy(_Resolved):
    """An escalation policy that already exists: `get_escalation_policy(name)`."""

    kind: Literal["existing"] = "existing"
    key: str
    name: str


class SupportHours(_Resolved):
    """PagerDuty `support_hours` of type fixed_time_per_day."""

    time_zone: str  # IANA name, checked against zoneinfo
    days_of_week: tuple[int, ...]  # ISO: 1 = Monday .. 7 = Sunday, sorted, unique
    start_time: str  # "HH:MM:SS"
    end_time: str  # "HH:MM:SS", after start_time


class UrgencyRule(_Resolved):
    """PagerDuty `incident_urgency_rule` (+ support hours and scheduled action).

    type "constant": `urgency` is set, the support-hours fields are None/False.
    type "use_support_hours": `during_support_hours`, `outside_support_hours` and
    `support_hours` are set and `urgency` is None. `raise_at_support_hours_start` says
    whether to add PagerDuty's scheduled action (urgency_change to high at
    support_hours_start), which PagerDuty allows only for during=high, outside=low.
    """

    type: Literal["constant", "use_support_hours"]
    urgency: UrgencyLevel | None = None
    during_support_hours: UrgencyLevel | None = None
    outside_support_hours: UrgencyLevel | None = None
    support_hours: SupportHours | None = None
    raise_at_support_hours_start: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> UrgencyRule:
        constant = self.type == "constant"
        has_hours = self.support_hours is not None
        if constant == has_hours or constant != (self.urgency is not None):
            raise ValueError("constant urgency needs `urgency`; support hours need the rest")
        return self


class AlertGrouping(_Resolved):
    """A service's alert grouping (its own alert grouping setting); None = no grouping."""

    type: Literal["time", "intelligent", "content_based"]
    #: time: minutes to group within (the setting takes seconds: infra.plan converts),
    #: 0 = until the incident is resolved; else None.
    timeout: int | None = None
    #: intelligent / content_based: seconds; None = PagerDuty's recommended window.
    time_window: int | None = None
    aggregate: Literal["all", "any"] | None = None  # content_based only
    fields: tuple[str, ...] = ()  # content_based only


class Integration(_Resolved):
    """The Apica integration on a service and the ASM checks routed to it."""

    name: str  # defaulted to "Apica-<Service-Name>"
    #: Vendor id override (integration's, else `apica.vendor_id`); None = get_vendor("Apica").
    #: Always None for type events_api_v2, which has no vendor.
    vendor_id: str | None
    check_ids: tuple[int, ...]
    check_guids: tuple[str, ...]
    check_tags: tuple[str, ...]
    severity_map: dict[str, str]  # complete: F, E, W, I -> PagerDuty severity
    links: tuple[Link, ...]
    #: As the routes file carries them (validated by the bridge's own model).
    maintenance: tuple[MaintenanceWindow, ...] = ()
    #: apica: the Apica vendor's integration; events_api_v2: a plain Events API v2 one.
    type: IntegrationType = "apica"
    adopt: str | None = None  # "SERVICEID.INTEGRATIONID" to import instead of creating


class NewService(_Resolved):
    """A service this stack creates, with every default already applied."""

    kind: Literal["new"] = "new"
    key: str  # logical name = route name
    name: str
    description: str | None
    escalation_policy: str  # key into Stack.escalation_policies
    urgency: UrgencyRule
    auto_resolve_timeout: int | None  # seconds, None = off
    acknowledgement_timeout: int | None  # seconds, None = off
    alert_grouping: AlertGrouping | None  # None = no grouping
    auto_pause_timeout: int | None  # seconds, None = auto-pause disabled
    team: str | None
    protect: bool
    integration: Integration | None  # None: no Apica integration, so no route
    adopt: str | None = None  # PagerDuty id to import instead of creating


class ExistingService(_Resolved):
    """A service that already exists (`get_service(name)`); it still gets an integration."""

    kind: Literal["existing"] = "existing"
    key: str
    name: str
    integration: Integration


class ChangeBudget(_Resolved):
    """`change_budget` resolved: percentages (0-100) and the size below which none applies."""

    services_changed: int = DEFAULT_BUDGET_PERCENT
    checks_rerouted: int = DEFAULT_BUDGET_PERCENT
    policies_changed: int = DEFAULT_BUDGET_PERCENT
    min_existing: int = DEFAULT_BUDGET_MIN_EXISTING


class Stack(_Resolved):
    """A validated, resolved stack file. Dict order is the file's order."""

    escalation_policies: dict[str, NewPolicy | ExistingPolicy]
    services: dict[str, NewService | ExistingService]
    catch_all: str | None  # a key of services, or None
    apica_vendor_id: str | None  # stack-wide vendor override, None = look up "Apica"
    allow_destroy: tuple[str, ...] = ()  # keys the diff safety gate lets be destroyed
    allow_mass_change: bool = False  # this version may exceed the change budget
    change_budget: ChangeBudget = ChangeBudget()


#: What an unset key resolves to when neither the service nor `defaults` sets it.
BUILTIN_DEFAULTS: dict[str, Any] = {
    "urgency": "severity_based",
    "auto_resolve_timeout": 4 * 3600,  # PagerDuty's own default
    "acknowledgement_timeout": 30 * 60,  # PagerDuty's own default
    "alert_grouping": None,
    "auto_pause_timeout": None,
    "team": None,
    "severity_map": dict(DEFAULT_SEVERITY_MAP),
    "protect": True,
}
DEFAULT_AUTO_PAUSE_SECONDS = 300
