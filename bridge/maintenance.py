"""Maintenance windows on the bridge: which alerts they hold, and the catch-up at their end.

While a window of the alert's route covers its check (`covering`: the whole route, or
the checks the window names by id, GUID or tag, matched as routes are), the intake
holds the alert (`Store.hold`) instead of storing events: the check's newest ASM time
and duplicate fingerprint advance as for any alert, nothing reaches PagerDuty, and the
check's open incidents stay as PagerDuty has them. Per check only the latest alert is
kept: the check's state when the window ends is what matters.

`CatchUp` reads the held alerts every second. One whose check no window covers any
more (the window ended, or the routes file no longer has it) goes through the normal
intake: a trigger pages the check that is still failing, a resolve closes what was
open before the window; escalation, order, dedup and stale rules as for a webhook,
with `"maintenance": {"window": ..., "held_since": ...}` in custom_details. Held
alerts live in the store, so a bridge restarted during a window catches up as if it
had run through it. A webhook newer than the held alert that arrives between the
window's end and the catch-up wins: the held alert is then stale and only dropped.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from bridge.intake.accept import Accepted, Details
from bridge.intake.asm import AsmAlert
from bridge.intake.matching import tag_claims
from bridge.metrics import BridgeMetrics
from bridge.periodic import Periodic
from bridge.store.records import HeldAlert
from contract.maintenance import Occurrence, occurrence_at
from contract.routes_file import MaintenanceWindow, Route, RoutesFile
from contract.vocabulary import normal_tag_text

log = logging.getLogger("bridge.maintenance")

#: How often the catch-up looks for held alerts whose window has ended (seconds).
CATCH_UP_EVERY = 1.0
MARK = "maintenance"


def covering(route: Route, alert: AsmAlert, when: datetime
             ) -> tuple[MaintenanceWindow, Occurrence] | None:
    """The first of the route's windows open at `when` that covers the alert's check."""
    for window in route.maintenance:
        if not covers(window, alert):
            continue
        occurrence = occurrence_at(window, when)
        if occurrence is not None:
            return window, occurrence
    return None


def covers(window: MaintenanceWindow, alert: AsmAlert) -> bool:
    """Is the alert's check one of the window's (every check without `checks`)?"""
    checks = window.checks
    if checks is None:
        return True
    if alert.check_id is not None and alert.check_id in checks.ids:
        return True
    if alert.check_guid and alert.check_guid.lower() in (g.lower() for g in checks.guids):
        return True
    tags = {normal_tag_text(key): {normal_tag_text(v) for v in values}
            for key, values in alert.tags.items()}
    return any(tag_claims(claim, tags) for claim in checks.tags)


# -- what the store keeps of a held alert ------------------------------------------------


def held_record(alert: AsmAlert, marks: Details | None) -> dict[str, Any]:
    """The held alert as JSON data (`Store.hold`'s `record`)."""
    fields = dataclasses.asdict(alert)
    fields["groups"] = list(alert.groups)
    fields["tags"] = {key: list(values) for key, values in alert.tags.items()}
    return {"alert": fields, "marks": dict(marks or {})}


def alert_of(record: dict[str, Any]) -> tuple[AsmAlert, dict[str, Any]]:
    """The alert and marks `held_record` wrote."""
    fields = dict(record["alert"])
    fields["groups"] = tuple(fields["groups"])
    fields["tags"] = {key: tuple(values) for key, values in fields["tags"].items()}
    return AsmAlert(**fields), dict(record.get("marks") or {})


def catch_up_marks(held: HeldAlert, marks: Details) -> dict[str, Any]:
    """The held alert's marks plus where it waited. The same for every try, so a catch-up
    repeated after a crash is a replay (stale), not a second page."""
    since = datetime.fromtimestamp(held.held_at, UTC).isoformat(timespec="seconds")
    return {**marks, MARK: {"window": held.window, "held_since": since}}


# -- the catch-up job --------------------------------------------------------------------


class HeldStore(Protocol):
    def held_alerts(self) -> list[HeldAlert]: ...

    def drop_held(self, route: str, check_key: str, version: int) -> bool: ...


class Accept(Protocol):
    """`bridge.intake.pipeline.Intake.accept`."""

    def __call__(self, route_name: str, route: Route, alert: AsmAlert, *,
                 marks: Details | None = None) -> Accepted: ...


class CatchUp:
    """Sends held alerts once no window covers their check; logs windows opening and
    closing. Runs in its own thread (`start`/`stop`); `run_once` is one look."""

    def __init__(
        self,
        store: HeldStore,
        routes: Callable[[], RoutesFile],
        accept: Accept,
        *,
        metrics: BridgeMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interval: float = CATCH_UP_EVERY,
        logger: logging.Logger = log,
    ) -> None:
        self._store = store
        self._routes = routes
        self._accept = accept
        self._metrics = metrics
        self._clock = clock
        self._log = logger
        self._open: set[tuple[str, str, datetime]] = set()
        self._job = Periodic("maintenance-catch-up", self.run_once, interval,
                             self._look_failed, join_timeout=10.0)

    def start(self) -> None:
        self._job.start()

    def stop(self) -> None:
        self._job.stop()

    def _look_failed(self) -> None:
        # The alerts stay held; the next look tries again.
        self._log.exception("maintenance catch-up failed; trying again",
                            extra={"event": "maintenance_catch_up_failed"})

    def run_once(self) -> int:
        """Send every held alert no window covers now; how many were sent."""
        now = self._clock()
        routes = self._routes()
        self._note_windows(routes, now)
        sent = 0
        for held in self._store.held_alerts():
            alert, marks = alert_of(held.alert)
            route = routes.routes.get(held.route)
            if route is None:
                self._log.error(
                    "held alert dropped: route %s is no longer in the routes file", held.route,
                    extra={"event": "maintenance_route_gone", "route": held.route,
                           "check": held.check_key, "window": held.window})
                self._store.drop_held(held.route, held.check_key, held.version)
                continue
            if covering(route, alert, now) is not None:
                continue
            accepted = self._accept(held.route, route, alert,
                                    marks=catch_up_marks(held, marks))
            self._store.drop_held(held.route, held.check_key, held.version)
            if accepted.event_count and self._metrics is not None:
                self._metrics.caught_up.labels(held.route, alert.action).inc()
            sent += 1
            self._log.info(
                "maintenance over for check %s: %s sent (%d events)", held.check_key,
                alert.action, accepted.event_count,
                extra={"event": "maintenance_caught_up", "route": held.route,
                       "check": held.check_key, "window": held.window, "action": alert.action,
                       "severity": alert.severity, "events": accepted.event_count,
                       "stale": accepted.stale})
        return sent

    def _note_windows(self, routes: RoutesFile, now: datetime) -> None:
        """One log line when a window opens and one when it closes."""
        open_now = set()
        for name, route in routes.routes.items():
            for window in route.maintenance:
                occurrence = occurrence_at(window, now)
                if occurrence is not None:
                    open_now.add((name, window.name, occurrence.start))
                    if (name, window.name, occurrence.start) not in self._open:
                        self._log.info(
                            "maintenance window %s of route %s open until %s", window.name,
                            name, occurrence.end.isoformat(timespec="seconds"),
                            extra={"event": "maintenance_window_open", "route": name,
                                   "window": window.name,
                                   "until": occurrence.end.isoformat(timespec="seconds")})
        for name, window, _ in sorted(self._open - open_now):
            self._log.info("maintenance window %s of route %s closed", window, name,
                           extra={"event": "maintenance_window_closed", "route": name,
                                  "window": window})
        self._open = open_now
