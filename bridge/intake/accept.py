"""From an accepted ASM alert to durably stored PagerDuty events (the HTTP handler's call).

`accept_alert` returns only after one store transaction committed (durably: see
`bridge.store.base`) the events, the check's new open keys and the duplicate
fingerprint together, so the 202 to ASM means the alert cannot be lost. Every
event is checked against the Events API rules first: one PagerDuty would refuse
raises `InvalidEvent` (the webhook gets 422) and nothing is stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.errors import InvalidEvent
from bridge.intake import escalation
from bridge.intake.asm import AsmAlert
from bridge.intake.events import build_event, check_event
from bridge.store.base import Store
from bridge.store.records import NewEvent
from contract.routes_file import Route


@dataclass(frozen=True)
class Accepted:
    """What became of an alert: how many events were stored, or an exact duplicate."""

    event_count: int
    duplicate: bool


_ALERT_FIELDS = tuple(f.name for f in dataclasses.fields(AsmAlert))


def fingerprint(route_name: str, alert: AsmAlert) -> str:
    """Identity of an exact duplicate webhook: same route, same parsed alert."""
    # Field values in declaration order (not dataclasses.asdict: it deep-copies, and
    # this runs for every webhook).
    values = [route_name, *(getattr(alert, name) for name in _ALERT_FIELDS)]
    canonical = json.dumps(values, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def accept_alert(
    store: Store, route_name: str, route: Route, alert: AsmAlert, *, asm_base_url: str
) -> Accepted:
    """Store the PagerDuty events for `alert`; blocks until they are on disk."""
    count = store.enqueue(**_enqueue_args(route_name, route, alert, asm_base_url))
    return Accepted(0, True) if count is None else Accepted(count, False)


async def accept_alert_async(
    store: Store, route_name: str, route: Route, alert: AsmAlert, *, asm_base_url: str
) -> Accepted:
    """`accept_alert` for an event loop: no thread is held while the commit happens."""
    count = await store.enqueue_async(**_enqueue_args(route_name, route, alert, asm_base_url))
    return Accepted(0, True) if count is None else Accepted(count, False)


def _enqueue_args(
    route_name: str, route: Route, alert: AsmAlert, asm_base_url: str
) -> dict[str, Any]:
    routing_key = route.routing_key.get_secret_value()
    pd_severity = route.severity_map[alert.severity]

    def events_for(open_now: frozenset[str]) -> tuple[Sequence[NewEvent], frozenset[str]]:
        # Runs inside the transaction, so the open keys it reads cannot change under it.
        escalation_steps = escalation.steps_for(route_name, alert.check_key, alert.action,
                                                pd_severity, open_now)
        events = [
            NewEvent(
                routing_key,
                step.action,
                step.dedup_key,
                build_event(alert, route_name, route, action=step.action,
                            dedup_key=step.dedup_key, asm_base_url=asm_base_url),
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

    return {"route": route_name, "check_key": alert.check_key,
            "fingerprint": fingerprint(route_name, alert), "events_for": events_for}
