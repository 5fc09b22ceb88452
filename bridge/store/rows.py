"""What every backend keeps, and how records become rows and back (the same for both).

The limits are read at call time (`rows.UNCLAIMED_KEEP`), so a test can lower one for
either backend in one place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, TypeVar

from bridge.store.records import DeadLetter, HeldAlert, PendingEvent, StoredEvent

DEFAULT_DUPLICATE_WINDOW = 60.0
# Forget duplicate fingerprints and old sends at most this often (seconds), not on every
# write.
PRUNE_EVERY = 1.0
# Webhooks refused because no route claims their check, and stale ones: the newest kept.
UNCLAIMED_KEEP = 1000
UNCLAIMED_BODY_CHARS = 4096
STALE_KEEP = 1000
# Fingerprints kept per check at its newest ASM timestamp (alerts within one second).
FINGERPRINTS_AT_NEWEST = 16
# /readyz: a real write at most this often (seconds) when no alert committed lately.
PROBE_EVERY = 1.0
# What an event carries from table to table (events -> dead letters -> events).
CARRIED = "route, check_key, action, dedup_key, body"
NO_LEASE = "lease_owner = NULL, lease_until = NULL"

E = TypeVar("E", bound=StoredEvent)


def columns(record: type[Any]) -> str:
    """The table's columns for a record: its fields, by name and in order."""
    return ", ".join(f.name for f in fields(record))


def from_row(record: type[E], row: Sequence[Any]) -> E:
    values = dict(zip((f.name for f in fields(record)), row, strict=True))
    values["body"] = json.loads(values["body"])
    return record(**values)


def dump_body(body: dict[str, Any]) -> str:
    # The key is chosen at send time; a stored body never carries one.
    return json.dumps({k: v for k, v in body.items() if k != "routing_key"},
                      separators=(",", ":"), ensure_ascii=False)


# The same SELECTs on both backends.
PENDING = f"SELECT {columns(PendingEvent)} FROM events"
DEAD_LETTERS = f"SELECT {columns(DeadLetter)} FROM dead_letters"
# Held alerts (maintenance windows).
HELD_ALERTS = ("SELECT route, check_key, window_name, alert, held_at, updated_at, version"
               " FROM held_alerts ORDER BY held_at, route, check_key")


def dump_held(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def held_from_row(row: Sequence[Any]) -> HeldAlert:
    route, check_key, window, alert, held_at, updated_at, version = row
    return HeldAlert(route, check_key, window, json.loads(alert), held_at, updated_at, version)
