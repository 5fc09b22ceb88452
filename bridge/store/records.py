"""What the store takes and gives back, as plain records (no backend in them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class NewEvent:
    """An event to store: what it does and its Events API body.

    The body's `routing_key` is never stored: the key is chosen when the event is sent,
    from the routes in force then (`bridge.delivery.targets`).
    """

    action: str
    dedup_key: str
    body: dict[str, Any]


@dataclass(frozen=True)
class IncomingAlert:
    """What the store needs of an alert to tell a duplicate or a stale one from a new one.

    `asm_time`: ASM's own timestamp, normalised (`2026-11-26T10:00:00Z`, so text order is
    time order); None when the webhook had none (then it is never stale).
    """

    route: str
    check_key: str
    action: str
    severity: str
    fingerprint: str | None
    asm_time: str | None


#: What became of an alert offered to `Store.enqueue`.
Verdict = Literal["stored", "duplicate", "stale"]


@dataclass(frozen=True)
class Enqueued:
    """`events` stored (0 unless `stored`); `newest_alert_at`: the check's newest ASM
    timestamp the store had accepted before, for a stale answer."""

    verdict: Verdict
    events: int = 0
    newest_alert_at: str | None = None


@dataclass(frozen=True)
class HeldAlert:
    """An alert a maintenance window holds instead of paging: per check the latest one
    that came while a window covered it, paged or resolved once none does
    (`bridge.maintenance`). `alert` is the intake's own record of it; `version` grows
    with every alert held for the check, so `drop_held` never drops a newer one."""

    route: str
    check_key: str
    window: str
    alert: dict[str, Any]
    held_at: float
    updated_at: float
    version: int


@dataclass(frozen=True)
class StoredEvent:
    """What every stored event carries, pending or dead: its body and its lane (route)."""

    id: int
    route: str
    check_key: str
    action: str
    dedup_key: str
    body: dict[str, Any]
    created_at: float
    attempts: int


@dataclass(frozen=True)
class PendingEvent(StoredEvent):
    next_attempt_at: float
    last_error: str | None
    # Who is sending it and until when (None: nobody): a lease outlives its process.
    lease_owner: str | None
    lease_until: float | None


@dataclass(frozen=True)
class DeadLetter(StoredEvent):
    """An event that will not be delivered as it is. `id` is the letter's own,
    `event_id` the event's; `routing_key` the key it was (to be) sent to, if any."""

    routing_key: str | None
    event_id: int
    status: int | None
    reason: str
    message: str
    dead_at: float


@dataclass(frozen=True)
class LaneHead:
    """Just enough to schedule a lane (a route) and choose its key; the body is read
    only when the head is claimed."""

    id: int
    route: str
    action: str
    dedup_key: str
    next_attempt_at: float
    lease_owner: str | None
    lease_until: float | None
    # The routing key the incident was opened through (`incident_keys`), if the bridge
    # opened it and has not resolved it.
    opened_through: str | None


@dataclass(frozen=True)
class Claim:
    """Claim lane head `event_id` to send it to `routing_key` (paced per key)."""

    event_id: int
    routing_key: str


@dataclass(frozen=True)
class Claimed:
    """The heads now leased to the claimer (a send counted for each key); for heads whose
    key had no room, when it will (`waits`); for heads whose lane another holds (a live
    lease on the head or on another event of the lane), until when (`held`)."""

    events: list[PendingEvent]
    waits: dict[int, float]
    held: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Throttle:
    """What a 429 left for a routing key: a lower limit since `since` (raised back by
    one per clean window), and no send before `not_before`."""

    limit: int
    since: float
    not_before: float


@dataclass(frozen=True)
class KeyWindow:
    """A routing key's sends in the look-back window, oldest first, and its throttle."""

    sent_at: tuple[float, ...]
    throttle: Throttle | None


@dataclass(frozen=True)
class RouteProblem:
    """A delivery problem on a route that needs a person (`bridge.delivery.worker`)."""

    route: str
    reason: str
    count: int
    last_at: float
    message: str


@dataclass(frozen=True)
class KeyIncidents:
    """Incidents the bridge opened through a key and has not resolved."""

    route: str
    routing_key: str
    open: int


@dataclass(frozen=True)
class Unclaimed:
    """A webhook refused because no route claims its check (body cut to a few KB)."""

    id: int
    received_at: float
    check_id: int | None
    check_guid: str | None
    check_name: str
    severity: str
    action: str
    body: str
    body_bytes: int


@dataclass(frozen=True)
class StaleAlert:
    """A webhook older than its check's newest accepted alert (or a replay of one at it)."""

    id: int
    received_at: float
    route: str
    check_key: str
    action: str
    severity: str
    alert_at: str
    newest_alert_at: str


@dataclass(frozen=True)
class RouteBacklog:
    route: str
    pending: int
    oldest_created_at: float
    max_attempts: int
    last_error: str | None


@dataclass(frozen=True)
class OutboxStats:
    """Queue depth, for /metrics and `apica-pd outbox`."""

    pending: int
    oldest_pending_age_seconds: float
    dead_letters: int
