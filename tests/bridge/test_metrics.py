"""The bridge's metrics on an injected registry, outbox gauges read at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from bridge.metrics import BridgeMetrics
from bridge.store.records import OutboxStats, RouteProblem


def test_metrics_live_on_the_injected_registry_only():
    first, second = BridgeMetrics(CollectorRegistry()), BridgeMetrics(CollectorRegistry())
    first.accepted.labels(route="web").inc()
    assert first.registry.get_sample_value(
        "apica_bridge_alerts_accepted_total", {"route": "web"}
    ) == 1
    assert second.registry.get_sample_value(
        "apica_bridge_alerts_accepted_total", {"route": "web"}
    ) is None


def test_outbox_gauges_come_from_the_store_at_each_scrape():
    metrics = BridgeMetrics(CollectorRegistry())
    stats = [OutboxStats(pending=3, oldest_pending_age_seconds=12.5, dead_letters=1)]
    metrics.watch_outbox(lambda: stats[0])

    def sample(name: str) -> float | None:
        return metrics.registry.get_sample_value(name)

    assert sample("apica_bridge_outbox_pending") == 3
    assert sample("apica_bridge_outbox_oldest_pending_age_seconds") == 12.5
    stats[0] = OutboxStats(pending=0, oldest_pending_age_seconds=0.0, dead_letters=2)
    assert sample("apica_bridge_outbox_pending") == 0
    assert sample("apica_bridge_dead_letters") == 2


def test_delivery_latency_histogram_is_exposed():
    metrics = BridgeMetrics(CollectorRegistry())
    metrics.delivery_latency.observe(0.02)
    text = generate_latest(metrics.registry).decode()
    assert 'apica_bridge_delivery_latency_seconds_bucket{le="0.025"} 1.0' in text
    assert 'apica_bridge_delivery_latency_seconds_bucket{le="0.01"} 0.0' in text


def test_route_problems_are_a_gauge_per_route_and_reason_read_at_scrape():
    metrics = BridgeMetrics(CollectorRegistry())
    problems = [RouteProblem("web", "integration_gone", 2, 0.0, "m")]
    metrics.watch_outbox(lambda: OutboxStats(0, 0.0, 0), lambda: problems)
    assert metrics.registry.get_sample_value(
        "apica_bridge_route_problem", {"route": "web", "reason": "integration_gone"}) == 2
    problems.append(RouteProblem("api", "routing_key_refused", 1, 0.0, "m"))
    assert metrics.registry.get_sample_value(
        "apica_bridge_route_problem", {"route": "api", "reason": "routing_key_refused"}) == 1
