"""The README's main command as an end-to-end test: sandbox, program, hand-off, bridge."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from apica_pagerduty.demo import (
    ALL_STORIES,
    GAP,
    HELD,
    STORIES,
    WINDOW,
    DemoFailed,
    check_incidents,
    choose_engine,
    run_demo,
)
from apica_pagerduty.pulumi_engine import ToolsNotBuilt
from contract.routes_file import load_routes_file


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], Path, str]:
    work = tmp_path_factory.mktemp("demo")
    out = io.StringIO()
    run = run_demo(work_dir=work, out=out, engine="mock")
    assert run.engine == "Pulumi's mock runtime (--engine mock)"
    return run.incidents, work, out.getvalue()


def test_every_story_leaves_the_incidents_it_implies(demo_run):
    incidents, _, _ = demo_run
    assert check_incidents(incidents) == []
    summary = sorted((i["service_name"], i["urgency"], i["status"]) for i in incidents)
    assert summary == [
        ("Legacy Web", "high", "resolved"),
        ("Search", "high", "triggered"),
        ("Search", "high", "triggered"),
        ("Search", "high", "triggered"),
        ("Search", "high", "triggered"),
        ("Search", "low", "resolved"),
        ("Status Page", "low", "triggered"),
    ]


def test_incidents_carry_asm_details_and_links(demo_run):
    incidents, _, _ = demo_run
    fatal = next(i for i in incidents if i["incident_key"] == "apica-asm:search:id:150:high")
    alert = fatal["alerts"][0]
    assert alert["severity"] == "critical"
    assert alert["custom_details"]["check_name"] == "Search API"
    # The message's quote-like and backslash characters survived ASM's raw substitution.
    assert "(step 'Sign in', C:\\agent\\run)" in alert["summary"]
    assert any(link["href"].endswith("/Check/Details/150") for link in alert["links"])


def test_routes_file_is_private_and_keys_never_logged(demo_run):
    _, work, output = demo_run
    routes_path = work / "routes.json"
    assert stat.S_IMODE(os.stat(routes_path).st_mode) == 0o600
    keys = [r.routing_key.get_secret_value() for r in load_routes_file(routes_path).routes.values()]
    assert len(keys) == 4
    log = (work / "bridge.log").read_text() + (work / "bridge-asm.log").read_text()
    assert "listening" in log
    for key in keys:
        assert key not in log
        assert key not in output


def test_progress_is_shown_step_by_step(demo_run):
    _, _, output = demo_run
    steps = [line for line in output.splitlines() if line.startswith("==> ")]
    assert [s.split()[1] for s in steps] == [
        "PagerDuty", "applying", "handing", "starting", "posting", "waiting",
        "the", "starting", "check", "the", "incidents",
    ]


def _details(incidents: list[dict], check_id: int) -> dict:
    [incident] = [i for i in incidents
                  if i["alerts"][0]["custom_details"].get("check_id") == check_id]
    return incident["alerts"][0]["custom_details"]


def test_the_gap_is_repaired_from_asms_state_and_marked(demo_run):
    incidents, work, output = demo_run
    details = _details(incidents, GAP.check_id)
    assert details["reconciled"] is True
    assert (details["asm_result"]["value"], details["asm_result"]["threshold_e"]) == (30000, 3000)
    assert f"ASM's webhook for check {GAP.check_id}: connection refused" in output
    assert '"event": "reconciled"' in (work / "bridge-asm.log").read_text()


def test_the_check_held_by_the_window_pages_at_its_end(demo_run):
    incidents, _, output = demo_run
    details = _details(incidents, HELD.check_id)
    assert details["maintenance"]["window"] == WINDOW
    assert "reconciled" not in details
    assert f"no incident for check {HELD.check_id} while the window is open" in output


def test_a_difference_is_reported_per_story():
    fatal = STORIES[0]
    incidents = [{
        "incident_number": 1, "service_name": "Search", "urgency": "low", "status": "triggered",
        "alerts": [{"custom_details": {"check_id": fatal.check_id}}],
    }]
    problems = check_incidents(incidents)
    assert problems[0] == (
        "a fatal check pages at high urgency (check 150): expected Search/high/triggered, "
        "got Search/low/triggered"
    )
    assert problems[1] == (
        "a warning that escalates to error is re-raised at high urgency (check 151): "
        "expected Search/low/resolved, Search/high/triggered, got no incident"
    )
    assert len(problems) == len(ALL_STORIES)


def _not_built() -> Path:
    raise ToolsNotBuilt("not built: /cache/0123/bin (run tools/build.sh)")


def test_auto_takes_the_mock_runtime_when_the_cli_is_not_built():
    engine = choose_engine("auto", _not_built)
    assert engine.tools is None
    assert (engine.description, engine.why) == (
        "Pulumi's mock runtime",
        "the Pulumi CLI is not built: /cache/0123/bin (run tools/build.sh)",
    )


def test_the_pulumi_engine_asked_for_and_not_built_fails_the_demo():
    with pytest.raises(DemoFailed) as failed:
        choose_engine("pulumi", _not_built)
    assert str(failed.value) == "--engine pulumi: not built: /cache/0123/bin (run tools/build.sh)"


def test_mock_is_taken_without_looking_for_the_cli():
    engine = choose_engine("mock", lambda: pytest.fail("looked for the CLI"))
    assert (engine.tools, engine.why) == (None, "--engine mock")
