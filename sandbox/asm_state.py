"""The ASM sandbox's account: checks, their results, and the requests it was sent.

Checks and results are stored in the API's own JSON shapes (docs/asm.md), so the
HTTP side only filters and serialises. A check's `severity`, `value`, `unit`,
`timestamp_utc` and `last_result_details` are those of its newest result
(ASSUMED_CHECK_SHOWS_LAST_RESULT); a check without results has severity `U`. Every
public method takes the lock and returns copies: the HTTP handlers and the test
thread share this object.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sandbox.clock import Clock, system_clock

#: What a result's severity may be; `U` belongs to checks that have no result yet.
RESULT_SEVERITIES = ("I", "W", "E", "F")
#: ASSUMPTION (docs/asm.md): the check's severity, value and message are its last result's.
ASSUMED_CHECK_SHOWS_LAST_RESULT = True
#: ASSUMPTION: names shown for the check types ASM's create routes and placeholders name.
CHECK_TYPE_NAMES = {
    "url": "URL", "url-v2": "URL", "browser": "Browser", "command": "Command",
    "command-v2": "Command", "ping": "Ping", "port": "Port", "proxysniffer": "Scenario",
}
FIRST_CHECK_ID = 1001
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Fields `update_check` may change.
UPDATABLE = frozenset({
    "name", "enabled", "tags", "url", "location", "interval_seconds", "threshold_w",
    "threshold_e", "target_sla", "scheduled_inclusion", "scheduled_exclusion",
    "visible_to_user",
})


class NoSuchCheck(LookupError):
    def __init__(self, check_id: object) -> None:
        super().__init__(f"no check with id {check_id!r}")


def wire_time(when: datetime) -> str:
    """ASM's timestamp style: UTC, no zone, whole seconds ("2013-08-20T13:32:08")."""
    if when.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class AsmState:
    """Seed it in-process (`add_check`, `set_severity`, `update_check`); the API reads it."""

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self._checks: dict[int, dict[str, Any]] = {}
        self._results: dict[int, list[dict[str, Any]]] = {}
        #: Checks only a customer-context request (`customer_context=1`) sees.
        self._customer_only: set[int] = set()
        self._requests: list[dict[str, Any]] = []

    # -- checks -------------------------------------------------------------------------

    def add_check(
        self,
        name: str,
        *,
        id: int | None = None,
        guid: str | None = None,
        enabled: bool = True,
        tags: Mapping[str, Iterable[str]] | None = None,
        check_type: str = "url",
        url: str | None = "https://www.example.com/",
        location: str | None = "Stockholm, Sweden",
        country_code: str | None = "SE",
        interval_seconds: int = 300,
        threshold_w: float | None = None,
        threshold_e: float | None = None,
        target_sla: float | None = 99.5,
        scheduled_inclusion: str | None = None,
        scheduled_exclusion: str | None = None,
        visible_to_user: bool = True,
    ) -> dict[str, Any]:
        """A new check (no results yet: severity `U`); returns it as `GET /checks` shows it."""
        with self.lock:
            check_id = self._new_id(id)
            if guid is None:
                guid = str(uuid.uuid4())
            if not isinstance(guid, str) or not _GUID.fullmatch(guid):
                raise ValueError(f"guid {guid!r} is not a lower-case dashed GUID")
            if any(c["guid"] == guid for c in self._checks.values()):
                raise ValueError(f"guid {guid!r} is already used")
            check: dict[str, Any] = {
                "id": check_id, "guid": guid, "name": _name(name), "enabled": _flag(enabled),
                "severity": "U", "value": None, "unit": None, "timestamp_utc": None,
                "location": location, "country_code": country_code,
                "check_type": check_type, "check_type_name": CHECK_TYPE_NAMES.get(check_type,
                                                                                   check_type),
                "check_type_api": check_type,
                "check_symbol": f"N{check_id}_{check_type.upper()}",
                "url": url, "interval_seconds": _whole(interval_seconds, "interval_seconds"),
                "threshold_w": _number(threshold_w, "threshold_w"),
                "threshold_e": _number(threshold_e, "threshold_e"),
                "target_sla": _number(target_sla, "target_sla"),
                "sla_percent_current_month": None,
                "scheduled_inclusion": _text_or_none(scheduled_inclusion, "scheduled_inclusion"),
                "scheduled_exclusion": _text_or_none(scheduled_exclusion, "scheduled_exclusion"),
                "last_result_details": None,
                "tags": _tags(tags or {}),
            }
            self._checks[check_id] = check
            self._results[check_id] = []
            if not _flag(visible_to_user):
                self._customer_only.add(check_id)
            return copy.deepcopy(check)

    def update_check(self, check_id: int, **changes: Any) -> dict[str, Any]:
        """Change fields of a check: enabled, tags, scheduled_exclusion, name, ... (UPDATABLE)."""
        unknown = sorted(set(changes) - UPDATABLE)
        if unknown:
            raise ValueError(f"cannot change {', '.join(unknown)}; "
                             f"changeable: {', '.join(sorted(UPDATABLE))}")
        with self.lock:
            check = self._check(check_id)
            updated = dict(check)
            for key, value in changes.items():
                if key == "visible_to_user":
                    continue
                updated[key] = _CHANGE_CHECKS[key](value, key)
            if "visible_to_user" in changes:
                if _flag(changes["visible_to_user"]):
                    self._customer_only.discard(check_id)
                else:
                    self._customer_only.add(check_id)
            check.update(updated)
            return copy.deepcopy(check)

    def remove_check(self, check_id: int) -> None:
        with self.lock:
            self._check(check_id)
            del self._checks[check_id], self._results[check_id]
            self._customer_only.discard(check_id)

    def checks(self, *, customer_context: bool = True) -> list[dict[str, Any]]:
        """Checks by id, as `GET /checks` shows them; a user-context view leaves out the
        checks added with `visible_to_user=False`."""
        with self.lock:
            return [copy.deepcopy(self._checks[i]) for i in sorted(self._checks)
                    if customer_context or i not in self._customer_only]

    def check(self, check_id: int, *, customer_context: bool = True) -> dict[str, Any] | None:
        with self.lock:
            if check_id not in self._checks or (
                not customer_context and check_id in self._customer_only
            ):
                return None
            return copy.deepcopy(self._checks[check_id])

    # -- results ------------------------------------------------------------------------

    def set_severity(
        self,
        check_id: int,
        severity: str,
        *,
        value: float | None = None,
        unit: str | None = "ms",
        message: str | None = None,
        threshold_w: float | None = None,
        threshold_e: float | None = None,
        result_id: str | None = None,
        at: datetime | None = None,
        attempts: int = 1,
        result_code: int = 0,
    ) -> dict[str, Any]:
        """A new result for the check (at `at`, default now); when it is the newest, the
        check shows its severity, value, unit and message. Thresholds, if given, are set
        on the check. Returns the result as `detail_level=1` shows it."""
        if severity not in RESULT_SEVERITIES:
            raise ValueError(f"severity {severity!r} is not one of {', '.join(RESULT_SEVERITIES)}")
        result_id = str(uuid.uuid4()) if result_id is None else result_id
        if not isinstance(result_id, str) or not _GUID.fullmatch(result_id):
            raise ValueError(f"result_id {result_id!r} is not a lower-case dashed GUID")
        with self.lock:
            check = self._check(check_id)
            when = self.clock() if at is None else at
            result = {
                "message": _text_or_none(message, "message"), "identifier": result_id,
                "attempts": _whole(attempts, "attempts"),
                "result_code": _whole(result_code, "result_code"),
                "check_id": check_id, "timestamp_utc": wire_time(when), "severity": severity,
                "value": _number(value, "value"), "unit": _text_or_none(unit, "unit"),
            }
            results = self._results[check_id]
            results.append(result)
            results.sort(key=lambda r: r["timestamp_utc"])  # stable: same second keeps order
            if threshold_w is not None:
                check["threshold_w"] = _number(threshold_w, "threshold_w")
            if threshold_e is not None:
                check["threshold_e"] = _number(threshold_e, "threshold_e")
            if ASSUMED_CHECK_SHOWS_LAST_RESULT and results[-1] is result:
                check.update(
                    severity=severity, value=result["value"], unit=result["unit"],
                    timestamp_utc=result["timestamp_utc"],
                    last_result_details={"message": result["message"] or ""},
                )
            return copy.deepcopy(result)

    def results(self, check_id: int) -> list[dict[str, Any]]:
        """Every result of the check, oldest first, as `detail_level=1` shows them."""
        with self.lock:
            self._check(check_id)
            return copy.deepcopy(self._results[check_id])

    # -- requests ----------------------------------------------------------------------

    def record_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self._requests.append(copy.deepcopy(entry))

    def requests(self) -> list[dict[str, Any]]:
        """Every API request, in order: method, path, query (ticket shortened), auth, status."""
        with self.lock:
            return copy.deepcopy(self._requests)

    # -- helpers -----------------------------------------------------------------------

    def _check(self, check_id: int) -> dict[str, Any]:
        check = self._checks.get(check_id) if isinstance(check_id, int) else None
        if check is None:
            raise NoSuchCheck(check_id)
        return check

    def _new_id(self, wanted: int | None) -> int:
        if wanted is None:
            return max([FIRST_CHECK_ID - 1, *self._checks]) + 1
        _whole(wanted, "id")
        if wanted in self._checks:
            raise ValueError(f"check id {wanted} is already used")
        return wanted


def _name(value: Any, key: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be non-empty text")
    return value


def _flag(value: Any, key: str = "enabled") -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false (got {value!r})")
    return value


def _whole(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be a non-negative integer (got {value!r})")
    return value


def _number(value: Any, key: str) -> float | int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValueError(f"{key} must be a number or null (got {value!r})")
    return value


def _text_or_none(value: Any, key: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be text or null (got {value!r})")
    return value


def _tags(tags: Any, key: str = "tags") -> dict[str, list[str]]:
    if not isinstance(tags, Mapping):
        raise ValueError(f"{key} must map a tag key to a list of values")
    out: dict[str, list[str]] = {}
    for tag_key, values in tags.items():
        if not isinstance(tag_key, str) or not tag_key.strip():
            raise ValueError(f"tag key {tag_key!r} must be non-empty text")
        if isinstance(values, str) or not all(isinstance(v, str) and v for v in values):
            raise ValueError(f"tag {tag_key!r}: values must be a list of non-empty texts")
        out[tag_key] = list(values)
    return out


_CHANGE_CHECKS = {
    "name": _name, "enabled": _flag, "tags": _tags, "url": _text_or_none,
    "location": _text_or_none, "interval_seconds": _whole, "threshold_w": _number,
    "threshold_e": _number, "target_sla": _number, "scheduled_inclusion": _text_or_none,
    "scheduled_exclusion": _text_or_none,
}
