"""stacks/example.yaml through the real engine: preview, up, no perpetual diff, the engine's
resources against the offline plan's, `apica-pd routes pull` and `routes verify`, the
bridge and the demo's stories, destroy. One stack for the module; the tests run in file
order, destroy last.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from apica_pagerduty.demo import ALL_STORIES, DEFAULT_STACK, check_incidents, play_stories
from apica_pagerduty.pulumi_engine import Provider, PulumiProject
from contract.routes_file import load_routes_file
from sandbox.pulumi_provider import PROVIDER_VERSION
from sandbox.server import PagerDutySandbox
from tests.e2e.conftest import (
    Snapshot,
    by_name,
    engine_declared,
    offline_declared,
    ran_on,
    seeded_sandbox,
    snapshot,
)

pytestmark = pytest.mark.e2e

STACK = DEFAULT_STACK.stem  # "example": the stack's name picks stacks/example.yaml


@dataclass(frozen=True)
class Applied:
    project: PulumiProject
    pd: PagerDutySandbox
    seeded: Snapshot
    preview: str
    up: str


@pytest.fixture(scope="module")
def account() -> Iterator[tuple[PagerDutySandbox, Snapshot]]:
    yield from seeded_sandbox(DEFAULT_STACK)


@pytest.fixture(scope="module")
def applied(
    account: tuple[PagerDutySandbox, Snapshot],
    tools: Path,
    provider: Provider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Applied:
    pd, seeded = account
    project = PulumiProject.create(tmp_path_factory.mktemp("example"), tools, provider)
    project.init_stack(STACK, pd.api_url, pd.token)
    preview = project.run("preview").stdout
    up = project.run("up", "--yes").stdout
    return Applied(project, pd, seeded, preview, up)


def test_preview_then_up_creates_what_the_stack_file_says(applied: Applied, provider: Provider):
    resources = len(offline_declared(DEFAULT_STACK, STACK)) + 1  # and the stack itself
    assert f"+ {resources} to create" in applied.preview
    assert f"+ {resources} created" in applied.up
    ran_on(applied.up, provider)

    services = by_name(applied.pd, "services")
    assert sorted(services) == ["Checkout API", "Legacy Web", "Search", "Status Page"]
    checkout, search, status = services["Checkout API"], services["Search"], services["Status Page"]
    assert checkout["escalation_policy"]["summary"] == "Payments On-call"
    assert search["escalation_policy"]["summary"] == "SRE Escalation"
    assert status["escalation_policy"]["summary"] == "Platform On-call"
    assert checkout["incident_urgency_rule"]["type"] == "use_support_hours"
    assert checkout["support_hours"] == {
        "type": "fixed_time_per_day", "time_zone": "Europe/Berlin", "start_time": "09:00:00",
        "end_time": "17:00:00", "days_of_week": [1, 2, 3, 4, 5],
    }
    assert [a["to_urgency"] for a in checkout["scheduled_actions"]] == ["high"]
    assert status["incident_urgency_rule"] == {"type": "constant", "urgency": "low"}
    assert (checkout["auto_resolve_timeout"], checkout["acknowledgement_timeout"]) == (None, 1800)
    assert (status["auto_resolve_timeout"], status["acknowledgement_timeout"]) == (14400, None)
    assert search["auto_pause_notifications_parameters"] == {"enabled": True, "timeout": 300}
    assert status["auto_pause_notifications_parameters"]["enabled"] is False

    policies = by_name(applied.pd, "escalation_policies")
    platform = policies["Platform On-call"]
    assert (platform["num_loops"], [t["summary"] for t in platform["teams"]]) == (2, ["Platform"])
    assert [r["escalation_delay_in_minutes"] for r in platform["escalation_rules"]] == [30, 15]

    integrations = by_name(applied.pd, "integrations")
    vendors = {name: (i["type"], (i["vendor"] or {}).get("id")) for name, i in integrations.items()}
    assert vendors == {
        "Apica-Checkout-API": ("events_api_v2_inbound_integration", "PAPICA1"),
        "Apica-Search": ("events_api_v2_inbound_integration", None),
        "Apica-Status-Page": ("events_api_v2_inbound_integration", "PAPICA1"),
        "Apica-Legacy-Web": ("events_api_v2_inbound_integration", "PAPICA2"),
    }
    # Alert grouping through AlertGroupingSetting, one per grouped service (seconds).
    grouping = by_name(applied.pd, "alert_grouping_settings")
    assert {name: (g["type"], g["config"], [s["id"] for s in g["services"]])
            for name, g in grouping.items()} == {
        "Checkout API": ("time", {"timeout": 900}, [checkout["id"]]),
        "Search": ("content_based", {"time_window": 3600, "aggregate": "all",
                                     "fields": ["source", "component"]}, [search["id"]]),
        "Status Page": ("intelligent", {"time_window": 300, "iag_fields": ["summary"]},
                        [status["id"]]),
    }
    # Never the deprecated service-level parameters.
    assert {s["alert_grouping_parameters"]["type"] for s in services.values()} == {None}
    outputs = applied.project.outputs()
    keys = {i["service"]["summary"]: i["integration_key"] for i in integrations.values()}
    assert {k: s["id"] for k, s in outputs["services"].items()} == {
        "checkout": checkout["id"], "search": search["id"], "status-page": status["id"],
        "legacy-web": services["Legacy Web"]["id"],
    }
    assert sorted(outputs["integration_keys"].values()) == sorted(keys.values())

    state = applied.project.env["PULUMI_BACKEND_URL"].removeprefix("file://")
    stored = "\n".join(p.read_text() for p in Path(state).rglob("*.json"))
    assert applied.pd.token not in stored
    assert not [key for key in keys.values() if key in stored]


@pytest.mark.parametrize("refresh", [(), ("--refresh",)], ids=["state", "refreshed"])
def test_a_preview_of_the_applied_stack_shows_no_changes(applied: Applied, refresh: tuple):
    done = applied.project.run("preview", *refresh, "--expect-no-changes")
    assert "unchanged" in done.stdout


def test_the_only_plugin_is_the_one_installed_from_a_file(applied: Applied):
    # Downloads are off (PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION); nothing else came in.
    plugins = Path(applied.project.env["PULUMI_HOME"]) / "plugins"
    installed = sorted(p.name for p in plugins.iterdir() if p.is_dir())
    assert installed == [f"resource-pagerduty-v{PROVIDER_VERSION}"]


def test_the_offline_plan_declares_the_resources_the_engine_holds(applied: Applied):
    engine = engine_declared(applied.project.export())
    assert engine == offline_declared(DEFAULT_STACK, STACK)
    assert ("apica-pagerduty:index:ApicaService", "checkout", None, False) in engine


def test_routes_pull_feeds_the_bridge_and_every_story_pages_as_expected(
    applied: Applied, tmp_path: Path
):
    routes_path = tmp_path / "routes.json"
    pulled = applied.project.apica_pd("routes", "pull", "--stack", STACK,
                                      "--out", str(routes_path))
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.startswith(f"wrote 4 route(s) for stack '{STACK}' to {routes_path}")
    assert stat.S_IMODE(os.stat(routes_path).st_mode) == 0o600
    routes = load_routes_file(routes_path)
    integrations = by_name(applied.pd, "integrations").values()
    keys = {i["integration_key"] for i in integrations}
    assert {r.routing_key.get_secret_value() for r in routes.routes.values()} == keys
    # Each route names the integration that holds its key.
    assert {(r.integration_id, r.routing_key.get_secret_value()) for r in routes.routes.values()
            } == {(i["id"], i["integration_key"]) for i in integrations}
    assert not [key for key in keys if key in pulled.stdout + pulled.stderr]

    token_file = tmp_path / "token"
    token_file.write_text(applied.pd.token)
    verified = applied.project.apica_pd("routes", "verify", "--routes", str(routes_path),
                                        "--token-file", str(token_file),
                                        "--api-url", applied.pd.api_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.endswith("all 4 routes take Events API v2 events\n")
    assert not [key for key in keys if key in verified.stdout + verified.stderr]
    assert applied.pd.token not in verified.stdout + verified.stderr

    out = io.StringIO()
    incidents = play_stories(applied.pd, routes, routes_path, tmp_path, out)
    assert check_incidents(incidents) == []
    assert len(incidents) == sum(len(story.expected) for story in ALL_STORIES)


def test_destroy_leaves_nothing_of_ours_in_the_sandbox(applied: Applied):
    refused = applied.project.run("destroy", "--yes", "--skip-preview", check=False)
    assert refused.returncode != 0
    assert "is protected" in refused.stdout + refused.stderr
    applied.project.run("state", "unprotect", "--all", "--yes")
    applied.project.run("destroy", "--yes", "--skip-preview")
    assert snapshot(applied.pd) == applied.seeded
    assert engine_declared(applied.project.export()) == set()
