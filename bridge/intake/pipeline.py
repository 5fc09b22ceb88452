"""Every alert's way into the store: webhooks, and the alerts the bridge makes itself.

`Intake.accept_webhook` is what `serve` hands the HTTP app as `accept`; `Intake.accept`
is the same way in for the bridge's own alerts (reconciliation, the maintenance
catch-up), from their threads. In order:

1. A check a maintenance window of its route covers now is held (`Store.hold`): nothing
   is paged, the alert is kept for the catch-up (`bridge.maintenance`).
2. Otherwise a trigger gets ASM's latest result when enrichment is on
   (`bridge.enrichment`: never longer than its deadline, never a reason to refuse).
3. `bridge.intake.accept` stores the events (escalation, duplicate and stale rules).

An event PagerDuty would refuse raises `InvalidEvent` in every case, held or not, so
that the webhook is refused now rather than dead-lettered at the window's end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bridge.enrichment import Enricher
from bridge.intake.accept import (
    Accepted,
    Details,
    OnlyIf,
    accept_alert,
    accept_alert_async,
    prepare,
)
from bridge.intake.asm import AsmAlert
from bridge.maintenance import covering, held_record
from bridge.metrics import BridgeMetrics
from bridge.store.base import Store
from contract.routes_file import MaintenanceWindow, Route

log = logging.getLogger("bridge.intake")


def _now() -> datetime:
    return datetime.now(UTC)


class Intake:
    def __init__(
        self,
        store: Store,
        *,
        asm_base_url: str,
        enricher: Enricher | None = None,
        metrics: BridgeMetrics | None = None,
        clock: Callable[[], datetime] = _now,
        logger: logging.Logger = log,
    ) -> None:
        self._store = store
        self._asm_base_url = asm_base_url
        self._enricher = enricher
        self._metrics = metrics
        self._clock = clock
        self._log = logger

    async def accept_webhook(self, route_name: str, route: Route, alert: AsmAlert) -> Accepted:
        """A webhook's alert: held, or enriched and stored; returns once it is on disk."""
        held = covering(route, alert, self._clock()) if route.maintenance else None
        if held is not None:
            # Rare (only while a window is open): a worker thread may wait for the commit.
            return await asyncio.to_thread(self._hold, route_name, route, alert, None, held[0])
        enrichment = None
        if self._enricher is not None and _enrichable(alert):
            enrichment = await self._enricher.details_async(alert.check_id)  # type: ignore[arg-type]
        return await accept_alert_async(self._store, route_name, route, alert,
                                        asm_base_url=self._asm_base_url, enrichment=enrichment)

    def accept(
        self, route_name: str, route: Route, alert: AsmAlert, *,
        marks: Details | None = None, only_if: OnlyIf | None = None,
    ) -> Accepted:
        """An alert the bridge made (`marks` say how): held, or enriched and stored."""
        held = covering(route, alert, self._clock()) if route.maintenance else None
        if held is not None:
            return self._hold(route_name, route, alert, marks, held[0])
        enrichment = None
        if self._enricher is not None and _enrichable(alert):
            enrichment = self._enricher.details(alert.check_id)  # type: ignore[arg-type]
        return accept_alert(self._store, route_name, route, alert,
                            asm_base_url=self._asm_base_url, marks=marks,
                            enrichment=enrichment, only_if=only_if)

    def _hold(self, route_name: str, route: Route, alert: AsmAlert, marks: Details | None,
              window: MaintenanceWindow) -> Accepted:
        prepared = prepare(route_name, route, alert, asm_base_url=self._asm_base_url,
                           marks=marks)
        prepared.events_for(frozenset())  # InvalidEvent now, not at the window's end
        record: dict[str, Any] = held_record(alert, marks)
        accepted = Accepted.of(self._store.hold(prepared.incoming, window=window.name,
                                                record=record))
        if not (accepted.duplicate or accepted.stale):
            if self._metrics is not None:
                self._metrics.held.labels(route_name).inc()
            self._log.debug(
                "alert held by maintenance window %s", window.name,
                extra={"event": "alert_held", "route": route_name, "check": alert.check_key,
                       "action": alert.action, "window": window.name})
        return accepted


def _enrichable(alert: AsmAlert) -> bool:
    # Only a trigger has a payload to enrich; ASM's API finds checks by id only.
    return alert.action == "trigger" and alert.check_id is not None
