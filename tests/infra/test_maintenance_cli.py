"""`apica-pd maintenance`: windows open now and next, from stack files and routes files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.infra.conftest import Run

STACK = """\
    escalation_policies:
      web-oncall:
        name: Web On-call
        rules: [{delay: 30m, targets: [{user: alice@example.com}]}]
    services:
      checkout:
        name: Checkout
        escalation_policy: web-oncall
        integration:
          checks: {ids: [101, 102]}
          maintenance:
            - name: deploy
              time_zone: Europe/Berlin
              weekly: {days: [sat], start: "22:00", end: "01:30"}
              checks: {ids: [101]}
            - name: move
              time_zone: America/New_York
              once: {start: "2026-12-10 20:00", end: "2026-12-10 23:00"}
      search:
        name: Search
        escalation_policy: web-oncall
        integration:
          checks: {ids: [201]}
          maintenance:
            - name: old
              time_zone: UTC
              once: {start: "2026-01-01 00:00", end: "2026-01-01 01:00"}
"""
SATURDAY_NIGHT = "2026-12-05T23:30+01:00"


def test_it_lists_open_windows_until_when_then_the_next_ones(
        run: Run, write_stack: Callable[..., Path]) -> None:
    path = write_stack(STACK)
    code, out, err = run("maintenance", str(path), "--at", SATURDAY_NIGHT)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{path}: 3 maintenance windows, 1 open now",
        "  checkout/deploy  OPEN until Sun 2026-12-06 01:30 Europe/Berlin, next Sat "
        "2026-12-12 22:00 - Sun 2026-12-13 01:30 Europe/Berlin; ids 101",
        "  checkout/move    next Thu 2026-12-10 20:00 - 23:00 America/New_York; every check",
        "  search/old       over (one-off); every check",
    ]


def test_a_routes_file_shows_the_windows_the_bridge_runs_with(run: Run, tmp_path: Path) -> None:
    from tests.bridge.conftest import routes_document

    doc = routes_document()
    doc["version"] = 3
    doc["routes"]["checkout"]["maintenance"] = [{
        "name": "nightly", "time_zone": "UTC",
        "weekly": {"days": ["mon", "tue"], "start": "02:00", "end": "03:00"}}]
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(doc))
    code, out, _ = run("maintenance", str(path), "--at", SATURDAY_NIGHT)
    assert (code, out.splitlines()) == (0, [
        f"{path}: 1 maintenance window, 0 open now",
        "  checkout/nightly  next Mon 2026-12-07 02:00 - 03:00 UTC; every check"])


def test_a_file_without_windows_says_so(run: Run, write_stack: Callable[..., Path]) -> None:
    path = write_stack(STACK.split("          maintenance:")[0] + "\n")
    code, out, _ = run("maintenance", str(path))
    assert (code, out) == (0, f"{path}: no maintenance windows\n")


def test_an_invalid_file_exits_1_with_its_problems(
        run: Run, write_stack: Callable[..., Path]) -> None:
    good = write_stack(STACK, "good.yaml")
    bad = write_stack(STACK.replace('end: "01:30"', 'end: "25:00"'), "bad.yaml")
    code, out, err = run("maintenance", str(bad), str(good), "--at", SATURDAY_NIGHT)
    assert code == 1
    assert out.startswith(f"{good}: 3 maintenance windows")
    assert err == (f"{bad}:14:54: services.checkout.integration.maintenance[0].weekly.end: "
                   "'25:00' is not a time of day: write HH:MM, e.g. \"09:00\"\n")


def test_a_time_without_an_offset_is_refused(run: Run, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    with pytest.raises(SystemExit) as stopped:
        run("maintenance", "x.yaml", "--at", "2026-12-05T22:30")
    assert stopped.value.code == 2
    assert "argument --at: '2026-12-05T22:30' needs an offset or Z (e.g. +01:00)" in \
        capsys.readouterr().err
