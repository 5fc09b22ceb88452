"""Words both lanes use, defined once: severities, actions, urgencies, key and claim shapes.

Patterns are for `re.fullmatch` (or pydantic, which anchors): `$` would let a
trailing newline through, and a key ending in "\\n" then fails at PagerDuty instead.
"""

from __future__ import annotations

import re
from typing import Literal

# -- ASM ----------------------------------------------------------------------------

AsmSeverity = Literal["F", "E", "W", "I"]
ASM_SEVERITIES: tuple[AsmSeverity, ...] = ("F", "E", "W", "I")
#: How a severity may be spelt in a webhook body or a stack file (lower-cased).
ASM_SEVERITY_WORDS: dict[str, AsmSeverity] = {
    "f": "F", "fatal": "F", "e": "E", "error": "E",
    "w": "W", "warning": "W", "i": "I", "info": "I",
}
#: ASM check ids are 64-bit integers in practice; longer ones can never match a webhook.
MAX_CHECK_ID_DIGITS = 18
MAX_CHECK_ID = 10**MAX_CHECK_ID_DIGITS - 1
#: Check GUIDs as ASM shows them (hex and dashes); no whitespace, at most 64 characters.
CHECK_GUID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
CHECK_GUID = re.compile(CHECK_GUID_PATTERN)

# -- PagerDuty ----------------------------------------------------------------------

PagerDutySeverity = Literal["critical", "error", "warning", "info"]
PAGERDUTY_SEVERITIES: tuple[PagerDutySeverity, ...] = ("critical", "error", "warning", "info")
DEFAULT_SEVERITY_MAP: dict[AsmSeverity, PagerDutySeverity] = {
    "F": "critical",
    "E": "error",
    "W": "warning",
    "I": "info",
}
#: What the bridge sends for one alert.
Action = Literal["trigger", "resolve"]
#: The urgency PagerDuty gives an incident when it opens (severity_based services).
Urgency = Literal["high", "low"]
#: A service's urgency rule as the stack file states it.
UrgencyLevel = Literal["high", "low", "severity_based"]
HIGH_URGENCY_SEVERITIES: frozenset[str] = frozenset({"critical", "error"})

#: Integration (routing) keys: 32 letters or digits.
ROUTING_KEY_PATTERN = r"[A-Za-z0-9]{32}"
ROUTING_KEY = re.compile(ROUTING_KEY_PATTERN)
#: Events API v2 limits.
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
MAX_EVENT_BYTES = 512 * 1024
MAX_LINK_TEXT = 255
MAX_LINK_HREF = 2048
#: The vendor PagerDuty lists Apica's integrations under.
APICA_VENDOR_NAME = "Apica"
#: PagerDuty's REST API (US; EU accounts use https://api.eu.pagerduty.com) and the
#: environment variable a REST token is read from (as the Pulumi provider reads it).
PAGERDUTY_REST_URL = "https://api.pagerduty.com"
PAGERDUTY_TOKEN_ENV = "PAGERDUTY_TOKEN"
#: Where `apica-pd routes pull|install` writes the routes file and the bridge reads it
#: (APICA_PD_ROUTES_FILE) unless told otherwise.
DEFAULT_ROUTES_FILE = "routes.json"

# -- routes ---------------------------------------------------------------------------

#: Route names are stack-file service keys and URL segments (/v1/asm/<route>).
ROUTE_NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,62}"
ROUTE_NAME = re.compile(ROUTE_NAME_PATTERN)


def is_routing_key(value: object) -> bool:
    return isinstance(value, str) and ROUTING_KEY.fullmatch(value) is not None


def normal_tag_text(text: str) -> str:
    """A tag key or value as both sides compare it: trimmed, inner spaces collapsed, casefolded."""
    return " ".join(text.split()).casefold()


def tag_claim_parts(claim: str) -> tuple[str, str | None]:
    """A tag claim "Key: Value" -> (key, value), "Key" -> (key, None), both normalised."""
    key, sep, value = claim.partition(":")
    return normal_tag_text(key), (normal_tag_text(value) if sep else None)


def tag_claims_overlap(a: str, b: str) -> bool:
    """Can one check's tags satisfy both claims? ("Team" overlaps "team: checkout".)"""
    key_a, value_a = tag_claim_parts(a)
    key_b, value_b = tag_claim_parts(b)
    return key_a == key_b and (value_a is None or value_b is None or value_a == value_b)
