"""Reconciliation: repair webhooks that never arrived from ASM's own state.

ASM sends a webhook only when a check's severity changes, and never again. One refused
while the bridge restarted, or lost on the way, is a page that never happens or an
incident that never closes. So, at start and every `interval` seconds, one
`GET /checks` reads every check's current severity, and for each enabled check the
routes claim (check id, GUID or tag, as webhooks are matched; the catch-all claims
nothing) the bridge's own check state is compared with it:

* failing (a severity in `severities`, default F, E and W) while the urgency class
  that severity opens is not open: the missing trigger;
* back to normal (I) while something is open: the missing resolve.

The repair is an ordinary alert through the intake (`Intake.accept`: maintenance
windows, enrichment, escalation, order, duplicate and stale rules), stamped with the
time of ASM's last result so that a webhook newer than what ASM showed wins, marked
`"reconciled": true` in custom_details, counted in `apica_bridge_alerts_reconciled`.
Inside the store's transaction it is stored only if the check state still disagrees
(`only_if`), so a webhook that arrived meanwhile is not answered twice.

A repair that stored no event (held by a maintenance window, stale because a webhook
newer than ASM's result came, a duplicate) is not tried again while ASM shows the
same result: asking again would change nothing and only fill the stale list.

Checks that are disabled, have no result yet (`U`) or are at a severity outside
`severities` are left alone. Webhooks never wait for any of this: it runs in its own
thread with its own ASM client. When ASM cannot be reached (or refuses the
credential) the round is skipped, never taken as "everything recovered"; the first
skip is logged, then at most one line every `quiet` seconds until ASM answers again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from bridge.asm_config import RECONCILE_INTERVAL, RECONCILE_SEVERITIES
from bridge.asm_model import AsmCheck
from bridge.errors import AsmApiError, AsmAuthError, AsmUnavailable
from bridge.intake.accept import Accepted, Details, OnlyIf
from bridge.intake.asm import AsmAlert
from bridge.intake.escalation import urgency_class
from bridge.intake.matching import find_route
from bridge.metrics import BridgeMetrics
from bridge.periodic import Periodic
from contract.routes_file import Route, RoutesFile

log = logging.getLogger("bridge.reconcile")

DEFAULT_INTERVAL = RECONCILE_INTERVAL
DEFAULT_SEVERITIES = RECONCILE_SEVERITIES
#: Between two log lines about the same ASM outage.
DEFAULT_QUIET = 600.0
MARKS: Details = {"reconciled": True}


class AsmChecks(Protocol):
    """What reconciliation asks of ASM (`bridge.asm_api.AsmClient`)."""

    def list_checks(self) -> tuple[AsmCheck, ...]: ...


class OpenKeys(Protocol):
    def __call__(self, route: str, check_key: str) -> frozenset[str]: ...


class Accept(Protocol):
    """`bridge.intake.pipeline.Intake.accept`."""

    def __call__(self, route_name: str, route: Route, alert: AsmAlert, *,
                 marks: Details | None = None, only_if: OnlyIf | None = None) -> Accepted: ...


@dataclass(frozen=True)
class Repair:
    """One alert to store: where the bridge's state and ASM's disagree."""

    route_name: str
    route: Route
    alert: AsmAlert
    only_if: OnlyIf

    @property
    def identity(self) -> tuple[str, str, str, str, str | None]:
        """The same for the same repair from the same ASM result."""
        alert = self.alert
        return self.route_name, alert.check_key, alert.action, alert.severity, alert.timestamp


def repairs(checks: Iterable[AsmCheck], routes: RoutesFile, open_keys: OpenKeys,
            severities: str = DEFAULT_SEVERITIES) -> list[Repair]:
    """The alerts that make the bridge's check state agree with ASM's (pure but for
    `open_keys`, the store's read)."""
    found = []
    for check in checks:
        if not check.enabled or check.severity == "U":
            continue
        if check.severity != "I" and check.severity not in severities:
            continue
        alert = alert_from_check(check)
        match = find_route(routes, alert)
        if match is None or match.why == "catch_all":
            continue  # the routes do not claim it
        route = routes.routes[match.route_name]
        open_now = open_keys(match.route_name, alert.check_key)
        if alert.action == "resolve":
            if open_now:
                found.append(Repair(match.route_name, route, alert, _still_open))
            continue
        wanted = urgency_class(route.severity_map[alert.severity])
        if wanted not in open_now:
            found.append(Repair(match.route_name, route, alert, _not_open(wanted)))
    return found


def _still_open(open_now: frozenset[str]) -> bool:
    return bool(open_now)


def _not_open(wanted: str) -> OnlyIf:
    def check(open_now: frozenset[str]) -> bool:
        return wanted not in open_now

    return check


def alert_from_check(check: AsmCheck) -> AsmAlert:
    """The alert ASM would have sent for the check's current state."""
    normal = check.severity == "I"
    return AsmAlert(
        action="resolve" if normal else "trigger",
        severity=check.severity,  # type: ignore[arg-type]  # U is left out by the caller
        old_severity=None,
        check_id=check.id,
        check_guid=check.guid,
        check_name=check.name,
        check_type=check.check_type_name or check.check_type,
        message=check.message or "",
        timestamp=(check.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
                   if check.timestamp is not None else None),
        location=check.location,
        groups=(),
        tags=dict(check.tags),
        result_guid=None,
    )


class Reconciler:
    """One round now (`run_round`), or a round at start and every `interval` in a thread."""

    def __init__(
        self,
        asm: AsmChecks,
        routes: Callable[[], RoutesFile],
        open_keys: OpenKeys,
        accept: Accept,
        *,
        interval: float = DEFAULT_INTERVAL,
        severities: str = DEFAULT_SEVERITIES,
        quiet: float = DEFAULT_QUIET,
        metrics: BridgeMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self._asm = asm
        self._routes = routes
        self._open_keys = open_keys
        self._accept = accept
        self.interval = interval
        self._severities = severities
        self._quiet = quiet
        self._metrics = metrics
        self._clock = clock
        self._log = logger
        self._skipped = 0
        self._said_at: float | None = None
        # Repairs that stored nothing, by identity: not tried again while ASM shows them.
        self._settled: set[tuple[str, str, str, str, str | None]] = set()
        # stop waits 5 s at most: a round in an ASM call ends on the client's own time
        # limits, holds no lock and writes nothing half, so the process need not wait.
        self._job = Periodic("reconcile", self.run_round, interval, self._round_failed,
                             join_timeout=5.0, clock=clock)

    def start(self) -> None:
        self._job.start()

    def stop(self) -> None:
        self._job.stop()

    def _round_failed(self) -> None:
        self._round("failed")
        self._log.exception("reconciliation round failed", extra={"event": "reconcile_failed"})

    def run_round(self) -> int | None:
        """Compare and repair once; how many alerts were stored (None: ASM did not answer)."""
        try:
            checks = self._asm.list_checks()
        except AsmApiError as exc:
            self._skip(exc)
            return None
        self._back()
        stored = 0
        found = repairs(checks, self._routes(), self._open_keys, self._severities)
        self._settled &= {repair.identity for repair in found}
        for repair in found:
            if self._job.stopping:
                break
            if repair.identity in self._settled:
                continue
            accepted = self._accept(repair.route_name, repair.route, repair.alert,
                                    marks=MARKS, only_if=repair.only_if)
            if not accepted.event_count:
                self._settled.add(repair.identity)
            else:
                stored += 1
                if self._metrics is not None:
                    self._metrics.reconciled.labels(repair.route_name,
                                                    repair.alert.action).inc()
                self._log.info(
                    "repaired check %s on route %s from ASM's state: %s (%s)",
                    repair.alert.check_key, repair.route_name, repair.alert.action,
                    repair.alert.severity,
                    extra={"event": "reconciled", "route": repair.route_name,
                           "check": repair.alert.check_key, "action": repair.alert.action,
                           "severity": repair.alert.severity,
                           "asm_time": repair.alert.timestamp,
                           "events": accepted.event_count})
        self._round("ok")
        return stored

    def _skip(self, exc: AsmApiError) -> None:
        refused = isinstance(exc, AsmAuthError)
        self._round("asm_refused" if refused else (
            "asm_unavailable" if isinstance(exc, AsmUnavailable) else "failed"))
        self._skipped += 1
        now = self._clock()
        if self._said_at is not None and now - self._said_at < self._quiet:
            return
        self._said_at = now
        self._log.log(
            logging.ERROR if refused else logging.WARNING,
            "reconciliation skipped (%d round%s so far): %s; webhooks are taken as always",
            self._skipped, "s" * (self._skipped != 1), exc,
            extra={"event": "reconcile_skipped", "reason": str(exc),
                   "skipped_rounds": self._skipped})

    def _back(self) -> None:
        if self._skipped:
            self._log.info("ASM answers again after %d skipped reconciliation rounds",
                           self._skipped,
                           extra={"event": "reconcile_resumed", "skipped_rounds": self._skipped})
        self._skipped, self._said_at = 0, None

    def _round(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.reconcile_rounds.labels(result).inc()
