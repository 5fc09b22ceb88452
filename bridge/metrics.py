"""Every Prometheus metric the bridge exports, on one injected registry.

Tests pass a fresh `CollectorRegistry`; `serve` passes the one it exposes on /metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bridge.store.records import OutboxStats, RouteProblem


class _OutboxCollector(Collector):
    """Reads queue depth at scrape time so the numbers come from the store, not a cache."""

    def __init__(self, stats: Callable[[], OutboxStats],
                 route_problems: Callable[[], list[RouteProblem]] | None) -> None:
        self._stats = stats
        self._route_problems = route_problems

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats()
        yield GaugeMetricFamily(
            "apica_bridge_outbox_pending", "Events stored and not yet delivered.", stats.pending
        )
        yield GaugeMetricFamily(
            "apica_bridge_outbox_oldest_pending_age_seconds",
            "Age of the oldest undelivered event (0 when none).",
            stats.oldest_pending_age_seconds,
        )
        yield GaugeMetricFamily(
            "apica_bridge_dead_letters", "Events PagerDuty refused, kept for a person.",
            stats.dead_letters,
        )
        if self._route_problems is not None:
            problems = GaugeMetricFamily(
                "apica_bridge_route_problem",
                "Delivery problems that need a person, per route and reason (a count kept "
                "in the store).", labels=["route", "reason"],
            )
            for problem in self._route_problems():
                problems.add_metric([problem.route, problem.reason], problem.count)
            yield problems


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "apica_bridge_webhooks_received", "ASM webhooks received.", ["route"], registry=r
        )
        self.accepted = Counter(
            "apica_bridge_alerts_accepted", "ASM alerts durably stored.", ["route"], registry=r
        )
        self.refused = Counter(
            "apica_bridge_webhooks_refused", "ASM webhooks refused, by reason.", ["reason"],
            registry=r,
        )
        self.stale = Counter(
            "apica_bridge_alerts_stale",
            "ASM alerts older than their check's newest accepted one (or replays of one at "
            "it): recorded, answered stale, not sent.", ["route"], registry=r,
        )
        self.duplicates = Counter(
            "apica_bridge_webhooks_duplicate", "Exact duplicate webhooks dropped.", ["route"],
            registry=r,
        )
        self.delivered = Counter(
            "apica_bridge_events_delivered", "Events PagerDuty accepted.", ["action"], registry=r
        )
        self.retried = Counter(
            "apica_bridge_delivery_retries", "Delivery attempts to retry, by reason.", ["reason"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "apica_bridge_events_dead_lettered", "Events moved to dead letters, by reason.",
            ["reason"], registry=r,
        )
        self.delivery_latency = Histogram(
            "apica_bridge_delivery_latency_seconds",
            "From webhook accepted to PagerDuty's 2xx.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
            registry=r,
        )
        self.routes_reloads = Counter(
            "apica_bridge_routes_reloads", "Routes file reloads, by result.", ["result"],
            registry=r,
        )
        # ASM's own state (issue 14): reconciliation, maintenance windows, enrichment.
        self.reconcile_rounds = Counter(
            "apica_bridge_reconcile_rounds",
            "Reconciliation rounds against ASM's API, by result (ok, asm_unavailable, "
            "asm_refused, failed).", ["result"], registry=r,
        )
        self.reconciled = Counter(
            "apica_bridge_alerts_reconciled",
            "Alerts the bridge stored because ASM's state and its own disagreed (a lost "
            "webhook repaired), by action.", ["route", "action"], registry=r,
        )
        self.held = Counter(
            "apica_bridge_alerts_held",
            "Alerts recorded and not paged because a maintenance window covered their check.",
            ["route"], registry=r,
        )
        self.caught_up = Counter(
            "apica_bridge_maintenance_caught_up",
            "Held alerts sent when no window covered their check any more, by action.",
            ["route", "action"], registry=r,
        )
        self.enrichment = Counter(
            "apica_bridge_enrichment",
            "Triggers offered ASM's latest result, by outcome (enriched, unavailable, "
            "paused).", ["outcome"], registry=r,
        )

    def watch_outbox(
        self, stats: Callable[[], OutboxStats],
        route_problems: Callable[[], list[RouteProblem]] | None = None,
    ) -> None:
        self.registry.register(_OutboxCollector(stats, route_problems))
