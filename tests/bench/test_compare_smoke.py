"""bench/compare_alertmanager.py: its pure parts, and a smoke run so the benchmark cannot rot.

Nothing here asserts a time: latency and drain figures vary with the machine. The
smoke run checks that the script runs both relays end to end and reports every row.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench import compare_alertmanager as bench

ROOT = Path(__file__).resolve().parents[2]


def _rec(at: float, action: str, check: int, key: str, severity: str = "warning") -> bench.Record:
    body: dict[str, object] = {"event_action": action, "dedup_key": key, "routing_key": "k" * 32}
    if action == "trigger":
        body["payload"] = {"summary": f"{bench.CHECK_NAME.format(check)}: x", "severity": severity}
    return bench.Record(at, 202, body)


def _sent(at: float, kind: bench.Kind, check: int = 1, status: int = 202) -> bench.Sent:
    return bench.Sent(bench.Action(0.0, check, kind, 0, True), at, status)


def test_workload_counts_and_order() -> None:
    actions = bench.build_workload(10, 5.0, 3, 0.3, 2.0)
    kinds = [a.kind for a in actions]
    assert kinds.count("trigger") == 10
    assert kinds.count("resolve") == 10
    assert kinds.count("escalate") == 3
    assert [a.at for a in actions] == sorted(a.at for a in actions)
    for check in range(10):
        mine = [a.kind for a in actions if a.check == check]
        assert mine[0] == "trigger" and mine[-1] == "resolve"


def test_matching_trigger_escalation_and_resolve_of_every_key() -> None:
    sent = [_sent(10.0, "trigger"), _sent(11.0, "escalate"), _sent(12.0, "resolve")]
    records = [
        _rec(10.1, "trigger", 1, "low"),
        _rec(11.2, "trigger", 1, "high", "critical"),
        _rec(12.3, "resolve", 1, "high"),  # no payload: attributed through its dedup key
        _rec(12.4, "resolve", 1, "low"),
    ]
    assert bench.match_deliveries(sent, records) == {0: 10.1, 1: 11.2, 2: 12.4}


def test_matching_counts_a_key_left_open_as_not_resolved() -> None:
    sent = [_sent(10.0, "trigger"), _sent(11.0, "escalate"), _sent(12.0, "resolve")]
    records = [
        _rec(10.1, "trigger", 1, "low"),
        _rec(11.2, "trigger", 1, "high", "critical"),
        _rec(12.3, "resolve", 1, "high"),
    ]
    assert bench.match_deliveries(sent, records)[2] is None


def test_matching_ignores_refused_sends_and_events_before_the_send() -> None:
    sent = [_sent(10.0, "trigger", status=0), _sent(20.0, "trigger")]
    records = [_rec(10.1, "trigger", 1, "low")]
    assert bench.match_deliveries(sent, records) == {1: None}


def test_matching_a_key_closed_before_the_resolve_counts_as_closed() -> None:
    # The bridge resolves the low-urgency key when a check escalates.
    sent = [_sent(12.0, "resolve")]
    records = [
        _rec(10.1, "trigger", 1, "low"),
        _rec(11.2, "trigger", 1, "high", "critical"),
        _rec(11.3, "resolve", 1, "low"),
        _rec(12.2, "resolve", 1, "high"),
    ]
    assert bench.match_deliveries(sent, records) == {0: 12.2}


def test_matching_a_resolve_with_nothing_to_close_is_done_when_sent() -> None:
    # The trigger was refused at the door (relay down): only its loss counts.
    sent = [_sent(10.0, "trigger", status=0), _sent(12.0, "resolve")]
    assert bench.match_deliveries(sent, [_rec(12.1, "resolve", 1, "low")]) == {1: 12.0}


def test_alertmanager_config_routes_each_service_to_its_key() -> None:
    keys = ["a" * 32, "b" * 32]
    config = yaml.safe_load(bench.render_am_config("http://127.0.0.1:9/v2/enqueue", keys, "1s"))
    route = config["route"]
    assert route["group_by"] == ["..."]
    assert route["group_wait"] == "0s"
    assert route["group_interval"] == "1s"
    receivers = {r["name"]: r for r in config["receivers"]}
    for n, key in enumerate(keys):
        pd = receivers[f"svc-{n}"]["pagerduty_configs"][0]
        assert pd["routing_key"] == key
        assert pd["url"] == "http://127.0.0.1:9/v2/enqueue"
        assert pd["send_resolved"] is True
    assert [r["receiver"] for r in route["routes"]] == ["svc-0", "svc-1"]


def test_the_floor_has_its_accept_rows_only() -> None:
    applies = {row.label for row in bench.ROWS if bench._applies(row, "floor")}
    assert applies == {"accept latency p50 (answer to the sender)",
                       "accept latency p99 (answer to the sender)"}
    assert all(bench._applies(row, "bridge") for row in bench.ROWS)


def test_cpu_per_alert_leaves_start_up_out() -> None:
    sent = [_sent(float(i), "trigger", check=i) for i in range(100)]
    usage = bench.ProcUsage(cpu_ticks={1: int(3 * bench.TICKS)})  # 3 s in all
    result = bench.ScenarioResult("healthy", {"bridge": bench.Outcome(sent, [])},
                                  {"bridge": usage}, {"bridge": 0}, 60.0,
                                  {"bridge": {"startup_cpu_s": 1.0}})
    assert bench._per_10k(result, "bridge") == pytest.approx(200.0)  # (3 - 1) s per 100


def test_alertmanager_resolve_ends_every_alert_of_the_check() -> None:
    action = bench.Action(0.0, 7, "resolve", 1, True)
    alerts = bench.am_alerts(action, 100.0, 90.0)
    assert [a["labels"]["severity"] for a in alerts] == ["warning", "critical"]
    assert all(a["endsAt"] < bench._rfc3339(100.0) for a in alerts)


@pytest.mark.slow
def test_smoke_run_reports_every_row_for_both_relays(tmp_path: Path) -> None:
    # CI installs them (.ci/run), so there a missing binary is a failure, not a skip.
    missing = bench.ha_pair_missing()  # the HA pair's PostgreSQL and HAProxy
    if shutil.which(bench.AM_BINARY) is None:
        missing = "prometheus-alertmanager is not installed: run `bash bench/setup_alertmanager.sh`"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    out, raw = tmp_path / "table.md", tmp_path / "raw.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "compare_alertmanager.py"),
            "--smoke",
            "--out",
            str(out),
            "--json",
            str(raw),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    table = out.read_text()
    for row in bench.ROWS:
        assert row.label in table
    figures = json.loads(raw.read_text())
    healthy = {f["metric"]: f for f in figures if f["scenario"] == "healthy" and "metric" in f}
    # Correctness, not speed: with PagerDuty healthy both relays deliver everything.
    for relay in ("bridge", "alertmanager"):
        assert healthy["delivered / accepted, healthy"][relay] == 100.0
    # The floor (append + fsync, nothing else) answers; it has accept rows and no others.
    assert healthy["accept latency p50 (answer to the sender)"]["floor"] > 0
    assert "floor" not in healthy["delivered / accepted, healthy"]
    # A supervisor holding the port (systemd socket activation): what is sent while a
    # relay is down waits in the backlog. Only a webhook in flight at the very moment of
    # the kill can fail (its connection dies with the process): at most one per relay,
    # where the same kill without the held port refuses every webhook of the down time.
    held = {f["metric"]: f for f in figures if f["scenario"] == "kill-held" and "metric" in f}
    kill = {f["metric"]: f for f in figures if f["scenario"] == "kill" and "metric" in f}
    refused = held["webhooks refused while down, kill -9, port held by systemd"]
    for relay in ("bridge", "alertmanager"):
        assert refused[relay] <= 1 < kill["webhooks refused while down, kill -9"][relay]
    assert held["delivered / accepted, kill -9, port held by systemd"]["bridge"] == 100.0
    # One of two replicas killed -9 behind HAProxy: ASM would see no webhook refused.
    assert kill["webhooks refused while down, kill -9"]["ha-pair"] == 0
    assert kill["delivered / accepted, kill -9"]["ha-pair"] == 100.0
    assert "HA pair" in table
