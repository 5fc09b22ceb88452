"""Read an Apica ASM "Custom" webhook body into an `AsmAlert`.

ASM renders the target body by substituting `%PLACEHOLDERS%` as raw text, so a JSON
body arrives broken whenever a value holds a backslash, a newline or (with `%M%`)
a double quote. Valid JSON is read as JSON, except a body that declares `"format": "asm-raw"`
(the template `asm-setup` prints), whose values are read literally. Invalid JSON
is recovered by `bridge.intake.json_recovery` only when one best reading exists;
otherwise the webhook is refused with a `BadWebhook` that says what was wrong.

Field names are matched loosely (case, `-`/space/`_`, a few aliases such as
`event` for `action`) because people type them into ASM's form by hand.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from bridge.errors import BadWebhook, UnsupportedContentType
from bridge.intake.json_recovery import Ambiguous, Unrecoverable, recover_flat_object
from contract.vocabulary import ASM_SEVERITY_WORDS, MAX_CHECK_ID_DIGITS, Action, AsmSeverity

# Canonical field -> accepted spellings (after `_normal_key`).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "action": ("action", "event", "event_action"),
    "severity": ("severity", "new_severity", "new_sev_char", "sev", "s"),
    "old_severity": ("old_severity", "old_sev_char", "old_sev"),
    "check_id": ("check_id",),
    "check_guid": ("check_guid",),
    "check_name": ("check_name",),
    "check_type": ("check_type",),
    "message": ("message", "msg", "qm", "m"),
    "timestamp": ("timestamp", "utc_t", "utc", "time"),
    "location": ("location",),
    "groups": ("groups", "group"),
    "tags": ("tags", "check_tags"),
    "result_guid": ("result_guid", "result_g_u_i_d"),
    "format": ("format",),
}
_CANONICAL = {alias: field for field, names in FIELD_ALIASES.items() for alias in names}

# Longest value accepted per field (characters). The message is the only long one;
# PagerDuty's summary is cut to 1,024 anyway and the full text goes to custom_details.
FIELD_LIMITS: dict[str, int] = {
    "action": 16,
    "severity": 16,
    "old_severity": 16,
    "check_id": 20,
    "check_guid": 64,
    "check_name": 1024,
    "check_type": 64,
    "message": 16384,
    "timestamp": 64,
    "location": 255,
    "groups": 4096,
    "tags": 4096,
    "result_guid": 64,
    "format": 32,
}

_ACTION_WORDS = {
    "trigger": "trigger", "triggered": "trigger", "resolve": "resolve", "resolved": "resolve",
}
# A placeholder ASM left as it was (not known to it, or empty in this event).
_UNSUBSTITUTED = re.compile(r"^%[A-Z][A-Z0-9_-]*%$")
JSON_TYPES = ("application/json", "text/json")
# `"format": "asm-raw"` in a body (asm-setup prints it) says: values are raw ASM text.
RAW_FORMAT = "asm-raw"
_STRUCTURED = ("tags", "groups", "format")
_KEEP_LITERAL = frozenset({"message", "check_name"})
# Python refuses to turn an integer of over 4,300 digits into an int (a ValueError,
# not a JSON error); ASM's longest number is a check id of at most 18 digits.
MAX_NUMBER_DIGITS = 100
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class AsmAlert:
    """One ASM severity change, as the bridge understands it."""

    action: Action
    severity: AsmSeverity
    old_severity: str | None
    check_id: int | None
    check_guid: str | None
    check_name: str
    check_type: str | None
    message: str
    timestamp: str | None
    location: str | None
    groups: tuple[str, ...]
    tags: dict[str, tuple[str, ...]]
    result_guid: str | None  # `canonical_guid`: dashed, lower case
    recovered: bool = False  # the JSON body was broken and recovered

    @property
    def check_key(self) -> str:
        """Stable identity of the check, the same for its trigger and its resolve."""
        if self.check_id is not None:
            return f"id:{self.check_id}"
        if self.check_guid:
            return f"guid:{self.check_guid.lower()}"
        return f"name:{self.check_name}"


def parse_webhook(body: bytes, content_type: str) -> AsmAlert:
    """Parse a webhook body; raises `BadWebhook` or `UnsupportedContentType`."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in (*JSON_TYPES, FORM_TYPE) and not media.endswith("+json"):
        raise UnsupportedContentType(content_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadWebhook(
            "bad_encoding", f"body is not UTF-8 (byte {exc.start} cannot be decoded)"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if media == FORM_TYPE:
        fields, recovered = _form_fields(text), False
    else:
        fields, recovered = _json_fields(text)
    return alert_from_fields(fields, recovered=recovered)


def alert_from_fields(raw: Mapping[str, object], *, recovered: bool = False) -> AsmAlert:
    """Build an `AsmAlert` from canonical field names -> raw values."""
    raw = _replace_surrogates(raw)  # type: ignore[assignment]
    values = {
        name: _text(name, value) for name, value in raw.items() if name not in _STRUCTURED
    }
    for name, value in values.items():
        if value is not None:
            _within_limit(name, value)
    severity = _severity("severity", values.get("severity"))
    action = _action(values.get("action"), severity)
    if severity is None:
        severity = "I"  # a resolve without a severity: back to normal
    check_id = _check_id(values.get("check_id"))
    check_guid = values.get("check_guid")
    if check_guid is not None and re.search(r"\s", check_guid):
        raise BadWebhook("bad_field", "field 'check_guid' must not contain whitespace")
    check_name = values.get("check_name")
    if check_name is None:
        if check_id is None and check_guid is None:
            raise BadWebhook(
                "no_check", "body names no check: send check_id, check_guid or check_name"
            )
        check_name = f"ASM check {check_id if check_id is not None else check_guid}"
    old = values.get("old_severity")
    return AsmAlert(
        action=action,
        severity=severity,
        old_severity=_severity("old_severity", old) if old is not None else None,
        check_id=check_id,
        check_guid=check_guid,
        check_name=check_name,
        check_type=values.get("check_type"),
        message=values.get("message") or "",
        timestamp=normalize_timestamp(values.get("timestamp")),
        location=values.get("location"),
        groups=parse_groups(raw.get("groups")),
        tags=parse_tags(raw.get("tags")),
        result_guid=canonical_guid(values.get("result_guid")),
        recovered=recovered,
    )


# A JSON escape such as "\ud800" decodes to a lone surrogate: not a character, and
# not encodable as UTF-8 (the outbox, the fingerprint and PagerDuty all need UTF-8).
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def _replace_surrogates(value: object) -> object:
    """`value` with every lone surrogate replaced by U+FFFD, however deep.

    Replaced rather than refused: the rest of the alert is intact and ASM does not
    retry, so a refusal would lose the page over one unreadable character (the same
    reasoning as for an unreadable timestamp). U+FFFD shows where it was.
    """
    if isinstance(value, str):
        return _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, Mapping):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_surrogates(v) for v in value]
    return value


@functools.lru_cache(maxsize=512)
def canonical_field(key: str) -> str | None:
    """The canonical field a body key stands for, or None when it is not one of ours."""
    return _CANONICAL.get(re.sub(r"[\s\-]+", "_", key.strip().lower()))


def parse_tags(value: object) -> dict[str, tuple[str, ...]]:
    """ASM's `%CHECK_TAGS%` ("Key 1: V1, V2; Key 2: V3") or an object of lists."""
    if value is None or _is_placeholder(value):
        return {}
    if isinstance(value, Mapping):
        tags: dict[str, tuple[str, ...]] = {}
        for key, vals in value.items():
            items = vals if isinstance(vals, list | tuple) else str(_scalar("tags", vals))
            if isinstance(items, str):
                items = items.split(",")
            texts = (str(_scalar("tags", v)).strip() for v in items)
            tags[str(key).strip()] = tuple(t for t in texts if t)
        return tags
    if not isinstance(value, str):
        raise BadWebhook("bad_field", "field 'tags' must be text like 'Key: V1, V2; Key 2: V3'")
    _within_limit("tags", value)
    tags = {}
    for part in value.split(";"):
        key, _, vals = part.partition(":")
        if key.strip():
            tags[key.strip()] = tuple(v.strip() for v in vals.split(",") if v.strip())
    return tags


def _within_limit(name: str, value: str) -> None:
    if len(value) > FIELD_LIMITS[name]:
        raise BadWebhook(
            "field_too_long",
            f"field {name!r} is {len(value)} characters; the limit is {FIELD_LIMITS[name]}",
        )


def parse_groups(value: object) -> tuple[str, ...]:
    """ASM's `%GROUPS%` (comma separated) or a list."""
    if value is None or _is_placeholder(value):
        return ()
    if isinstance(value, list | tuple):
        texts = (str(_scalar("groups", v)).strip() for v in value)
        return tuple(t for t in texts if t)
    if not isinstance(value, str):
        raise BadWebhook("bad_field", "field 'groups' must be text or a list")
    _within_limit("groups", value)
    return tuple(g.strip() for g in value.split(",") if g.strip())


def canonical_guid(value: str | None) -> str | None:
    """A GUID in the one form the bridge passes on: dashed, lower case (the API's result
    `identifier`). ASM's `%RESULT_GUID%` gives it without dashes, `%RESULT_G-U-I-D%`
    with them; both are read. Anything else gives None: like a timestamp, the result id
    is not worth losing the page over.
    """
    if not value:
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def normalize_timestamp(value: str | None) -> str | None:
    """ISO 8601 UTC ("2026-11-26T10:00:00Z"); ASM's %UTC-T%/%UTC% carry no zone: UTC.

    An unreadable timestamp gives None rather than a refusal: it is cosmetic, and
    refusing the webhook would lose the page (ASM does not retry).
    """
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        # OverflowError: a date at the edge of the range whose offset moves it past
        # year 1 or 9999 in UTC (`0001-01-01T00:00:00+14:00`).
        return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError):
        return None


def _json_fields(text: str) -> tuple[dict[str, object], bool]:
    try:
        data = json.loads(text, object_pairs_hook=_refuse_duplicate_keys, parse_int=_bounded_int)
    except RecursionError:
        raise BadWebhook("broken_json", "body is nested too deeply to be ASM fields") from None
    except (json.JSONDecodeError, _DuplicateKey) as exc:
        # A duplicate key is how a raw message would smuggle in a field: read it as
        # broken text, where each field may appear once.
        where = (
            f"line {exc.lineno} column {exc.colno}: {exc.msg}"
            if isinstance(exc, json.JSONDecodeError) else str(exc)
        )
        return _recovered_fields(text, where), True
    if not isinstance(data, dict):
        raise BadWebhook("not_an_object", "body must be a JSON object of ASM fields")
    fields = _canonical_fields(data.items())
    # Without a backslash, JSON escapes cannot occur: the literal reading is the same.
    if fields.get("format") == RAW_FORMAT and "\\" in text:
        # Our own template: ASM substituted raw text, so a backslash in a value is a
        # backslash ("C:\temp" must not become a tab), even where it looks like an escape.
        try:
            literal = _recovered_fields(text, "read literally")
        except BadWebhook:
            literal = {}
        # Only a literal reading with the very same fields is the same body read raw.
        if literal.keys() == fields.keys():
            return literal, False
    return fields, False


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_NUMBER_DIGITS:
        raise BadWebhook(
            "bad_number",
            f"body has a number of {digits} digits; the limit is {MAX_NUMBER_DIGITS} "
            "(ASM's numbers are check ids of at most 18 digits)",
        )
    return int(text)


def _recovered_fields(text: str, where: str) -> dict[str, object]:
    try:
        pairs = recover_flat_object(text, canonical_field, _plausible, free_text=_FREE_TEXT)
    except Ambiguous as amb:
        raise BadWebhook(
            "ambiguous_json",
            f"body is not valid JSON ({where}) and cannot be recovered unambiguously: "
            f"{amb}; use %QM% rather than %M% and keep the message the last field",
        ) from None
    except Unrecoverable as bad:
        raise BadWebhook(
            "broken_json", f"body is not valid JSON ({where}) and cannot be recovered: {bad}"
        ) from None
    return {canonical_field(k) or k: v for k, v in pairs}


# Fields ASM fills with free text; every other field has a fixed shape without quotes.
_FREE_TEXT = frozenset({"check_name", "message", "location", "groups", "tags"})


def _plausible(field: str, value: object) -> bool:
    """Could `value` be what ASM rendered into `field`? Prunes absurd readings."""
    if field in _FREE_TEXT or not isinstance(value, str):
        return True
    return not any(ch in value for ch in '"\r\n')


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: set[str] = set()
    for key, _ in pairs:
        name = canonical_field(key) or key
        if name in seen:
            raise _DuplicateKey(f"field {name!r} appears more than once")
        seen.add(name)
    return dict(pairs)


def _form_fields(text: str) -> dict[str, object]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=64)
    except ValueError as exc:
        raise BadWebhook("bad_form", f"form body cannot be read: {exc}") from None
    return _canonical_fields(pairs)


def _canonical_fields(pairs: object) -> dict[str, object]:
    fields: dict[str, object] = {}
    for key, value in pairs:  # type: ignore[attr-defined]
        name = canonical_field(str(key))
        if name is None:
            continue  # extra fields people add to their target are ignored
        if name in fields:
            raise BadWebhook("duplicate_field", f"field {name!r} is given more than once")
        fields[name] = value
    return fields


def _text(name: str, value: object) -> str | None:
    """A field's value as stripped text; None when empty or left unsubstituted.

    A message or check name that looks like `%NAME%` is kept: it may be real text,
    and showing it does no harm, while a stray placeholder in an id would mislead.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadWebhook("bad_field", f"field {name!r} must be text or a number")
    text = str(value).strip()
    if not text or (name not in _KEEP_LITERAL and _is_placeholder(text)):
        return None
    return text


def _scalar(name: str, value: object) -> object:
    """A list item or tag value: text or a number, nothing nested."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        shown = repr(value)[:40]
        raise BadWebhook("bad_field", f"field {name!r} must hold text or numbers, not {shown}")
    return value


def _is_placeholder(value: object) -> bool:
    return isinstance(value, str) and bool(_UNSUBSTITUTED.match(value.strip()))


def _severity(name: str, value: str | None) -> AsmSeverity | None:
    if value is None:
        return None
    found = ASM_SEVERITY_WORDS.get(value.lower())
    if found is None:
        raise BadWebhook(
            "bad_severity",
            f"field {name!r} is {value[:20]!r}; expected F, E, W or I (or Fatal, Error, "
            "Warning, Info)",
        )
    return found  # type: ignore[return-value]


def _action(value: str | None, severity: AsmSeverity | None) -> Action:
    if value is not None:
        action = _ACTION_WORDS.get(value.lower())
        if action is None:
            raise BadWebhook(
                "bad_action", f"field 'action' is {value[:20]!r}; expected trigger or resolve"
            )
        if action == "trigger" and severity is None:
            raise BadWebhook("no_severity", "a trigger needs field 'severity' (F, E, W or I)")
        # ASM's I means back to normal: a "trigger" to I must close, never page.
        return "resolve" if severity == "I" else action  # type: ignore[return-value]
    if severity is None:
        raise BadWebhook(
            "no_severity",
            "body has neither 'action' nor 'severity': cannot tell trigger from resolve",
        )
    return "resolve" if severity == "I" else "trigger"


def _check_id(value: str | None) -> int | None:
    if value is None:
        return None
    if not re.fullmatch(rf"\d{{1,{MAX_CHECK_ID_DIGITS}}}", value):
        raise BadWebhook(
            "bad_field", f"field 'check_id' is {value[:20]!r}; expected a whole number"
        )
    return int(value)
