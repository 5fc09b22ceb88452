"""From an accepted ASM alert to durably stored PagerDuty events (the HTTP handler's call).

`accept_alert` returns only after one store transaction committed (durably: see
`bridge.store.base`) the events, the check's new open keys, the duplicate
fingerprint and the check's newest ASM timestamp together, so the 202 to ASM means
the alert cannot be lost. Every event is checked against the Events API rules first
(with the route's current key; the key actually used is chosen at send time): one
PagerDuty would refuse raises `InvalidEvent` (the webhook gets 422) and nothing is
stored. An exact duplicate of the check's latest alert, or an alert older than the
check's newest accepted one (or a replay of one at the same time), stores nothing.

Alerts the bridge makes itself come the same way, with `marks` saying where from
(`{"reconciled": true}`, a maintenance catch-up): they go into custom_details and into
the duplicate fingerprint, so a made alert is never taken for a copy of a webhook.
`enrichment` (ASM's latest result) goes into custom_details only: a duplicate webhook
stays a duplicate whatever ASM answered for it. `only_if(open_now)`, checked inside the
transaction, stores the events only while the check's open classes still call for them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from bridge.errors import InvalidEvent
from bridge.intake import escalation
from bridge.intake.asm import AsmAlert, normalize_timestamp
from bridge.intake.events import build_event, check_event
from bridge.store.base import EventsFor, Store
from bridge.store.records import Enqueued, IncomingAlert, NewEvent
from contract.routes_file import Route


@dataclass(frozen=True)
class Accepted:
    """What became of an alert: how many events were stored, or an exact duplicate, or
    stale (older than `newest_alert_at`, the check's newest accepted ASM timestamp)."""

    event_count: int
    duplicate: bool
    stale: bool = False
    newest_alert_at: str | None = None

    @classmethod
    def of(cls, enqueued: Enqueued) -> Accepted:
        return cls(enqueued.events, enqueued.verdict == "duplicate",
                   enqueued.verdict == "stale", enqueued.newest_alert_at)


_ALERT_FIELDS = tuple(f.name for f in dataclasses.fields(AsmAlert))


Details = Mapping[str, Any]
#: Given the check's open urgency classes (inside the transaction): still worth storing?
OnlyIf = Callable[[frozenset[str]], bool]


def fingerprint(route_name: str, alert: AsmAlert, marks: Details | None = None) -> str:
    """Identity of an exact duplicate webhook: same route, same parsed alert (and marks)."""
    # Field values in declaration order (not dataclasses.asdict: it deep-copies, and
    # this runs for every webhook).
    values = [route_name, *(getattr(alert, name) for name in _ALERT_FIELDS)]
    if marks:
        values.append(dict(marks))
    canonical = json.dumps(values, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def accept_alert(
    store: Store, route_name: str, route: Route, alert: AsmAlert, *, asm_base_url: str,
    marks: Details | None = None, enrichment: Details | None = None,
    only_if: OnlyIf | None = None,
) -> Accepted:
    """Store the PagerDuty events for `alert`; blocks until they are on disk."""
    return Accepted.of(store.enqueue(*prepare(route_name, route, alert, asm_base_url=asm_base_url,
                                              marks=marks, enrichment=enrichment,
                                              only_if=only_if)))


async def accept_alert_async(
    store: Store, route_name: str, route: Route, alert: AsmAlert, *, asm_base_url: str,
    enrichment: Details | None = None,
) -> Accepted:
    """`accept_alert` for an event loop (a webhook): no thread is held while it commits."""
    return Accepted.of(await store.enqueue_async(
        *prepare(route_name, route, alert, asm_base_url=asm_base_url, enrichment=enrichment)))


class Prepared(NamedTuple):
    """What `Store.enqueue` (or `Store.hold`) takes for one alert."""

    incoming: IncomingAlert
    events_for: EventsFor


def prepare(
    route_name: str, route: Route, alert: AsmAlert, *, asm_base_url: str,
    marks: Details | None = None, enrichment: Details | None = None,
    only_if: OnlyIf | None = None,
) -> Prepared:
    """The store's view of `alert` and its events; `events_for` raises `InvalidEvent` for
    an event PagerDuty would refuse."""
    pd_severity = route.severity_map[alert.severity]
    details = {**(enrichment or {}), **(marks or {})} or None

    def events_for(open_now: frozenset[str]) -> tuple[Sequence[NewEvent], frozenset[str]]:
        # Runs inside the transaction, so the open keys it reads cannot change under it.
        if only_if is not None and not only_if(open_now):
            return (), open_now
        escalation_steps = escalation.steps_for(route_name, alert.check_key, alert.action,
                                                pd_severity, open_now)
        events = [
            NewEvent(
                step.action,
                step.dedup_key,
                build_event(alert, route_name, route, action=step.action,
                            dedup_key=step.dedup_key, asm_base_url=asm_base_url,
                            details=details),
            )
            for step in escalation_steps.steps
        ]
        # Checked here, before the commit and the 202: an event PagerDuty would refuse
        # is refused to ASM now (422 with the reason) instead of being dead-lettered
        # after ASM was told the page is safe. Raising rolls the whole alert back.
        for event in events:
            problems = check_event(event.body)
            if problems:
                raise InvalidEvent(problems, route_name=route_name)
        return events, frozenset(escalation_steps.open_after)

    incoming = IncomingAlert(route=route_name, check_key=alert.check_key, action=alert.action,
                             severity=alert.severity,
                             fingerprint=fingerprint(route_name, alert, marks),
                             asm_time=normalize_timestamp(alert.timestamp))
    return Prepared(incoming, events_for)
