"""The stand-in under the real Pulumi engine (CLI v3.274.0 from tools/build.sh): up, refresh,
an update in place, a replace, destroy, against the sandbox on loopback.

The CLI is built from the Go module proxy by tools/build.sh (a cache hit after the
first build). Without Go or the build these tests fail under CI=true and skip locally.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.pulumi_provider import CALL_LOG_ENV, STAND_IN
from sandbox.pulumi_provider.install import install_arguments, write_plugin_script
from sandbox.seed import apply_seed
from sandbox.server import PagerDutySandbox

pytestmark = pytest.mark.engine

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / "tools" / "build.sh"
TOKEN = "engine-test-token-0001"
COMMAND_TIMEOUT = 180
PROGRAM = """\
import pulumi
import pulumi_pagerduty as pagerduty

config = pulumi.Config()
name = config.get("serviceName") or "Checkout"
user = pagerduty.get_user_output(email="alice@example.com")
policy = pagerduty.EscalationPolicy(
    "policy",
    name="Checkout Escalation",
    num_loops=1,
    rules=[{"escalation_delay_in_minutes": 10,
            "targets": [{"type": "user_reference", "id": user.id}]}],
)
service = pagerduty.Service(
    "service",
    name=name,
    escalation_policy=policy.id,
    acknowledgement_timeout="null",
    incident_urgency_rule={
        "type": "use_support_hours",
        "during_support_hours": {"type": "constant", "urgency": "high"},
        "outside_support_hours": {"type": "constant", "urgency": "low"},
    },
    support_hours={"type": "fixed_time_per_day", "time_zone": "Europe/Berlin",
                   "start_time": "09:00:00", "end_time": "17:00:00",
                   "days_of_weeks": [1, 2, 3, 4, 5]},
    scheduled_actions=[{"type": "urgency_change", "to_urgency": "high",
                        "ats": [{"type": "named_time", "name": "support_hours_start"}]}],
)
vendor = pagerduty.get_vendor_output(name=config.get("vendor") or "Apica")
integration = pagerduty.ServiceIntegration(
    "integration",
    name="Apica-" + name,
    service=service.id,
    vendor=vendor.id,
    opts=pulumi.ResourceOptions(additional_secret_outputs=["integration_key"]),
)
pagerduty.AlertGroupingSetting(
    "grouping", name="Checkout grouping", type="time", services=[service.id],
    config={"timeout": 300},
)
pulumi.export("service_id", service.id)
pulumi.export("service_url", service.html_url)
pulumi.export("integration_key", pulumi.Output.secret(integration.integration_key))
"""


def _missing(reason: str) -> None:
    # CI must run the engine tests: a missing CLI there is a failure, locally a skip.
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pulumi_bin() -> Path:
    """The directory with `pulumi` and the Python language host, built by tools/build.sh."""
    if shutil.which("go") is None:
        _missing("the Pulumi CLI is not built: tools/build.sh needs Go (>= 1.26.6) on PATH")
    built = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=3600)
    if built.returncode != 0:
        tail = (built.stderr.strip().splitlines() or ["no output"])[-1]
        _missing(f"tools/build.sh could not build the Pulumi CLI: {tail}")
    return Path(built.stdout.strip().splitlines()[-1])


@dataclass
class Project:
    """A Pulumi project in tmp_path with its own PULUMI_HOME and file backend."""

    directory: Path
    env: dict[str, str]
    rest_log: Path

    def pulumi(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["pulumi", *args, "--non-interactive", "--color", "never"],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        if ok and done.returncode != 0:
            pytest.fail(
                f"pulumi {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def outputs(self) -> dict[str, Any]:
        shown = self.pulumi("stack", "output", "--show-secrets", "--json").stdout
        return json.loads(shown)

    def rpcs(self) -> set[str]:
        lines = self.rest_log.read_text().splitlines()
        return {line.split(": rpc ", 1)[1].split()[0] for line in lines if ": rpc " in line}


@pytest.fixture
def sandbox() -> Iterator[PagerDutySandbox]:
    with PagerDutySandbox(token=TOKEN) as pd:
        apply_seed(pd.state, {"users": [{"email": "alice@example.com", "name": "Alice"}]})
        yield pd


@pytest.fixture
def project(tmp_path: Path, pulumi_bin: Path, sandbox: PagerDutySandbox) -> Project:
    home, state, work = tmp_path / "pulumi-home", tmp_path / "state", tmp_path / "project"
    for directory in (home, state, work):
        directory.mkdir()
    rest_log = tmp_path / "stand-in.log"
    env = {
        # The stand-in language host runs `python3` from PATH: the venv's first.
        "PATH": os.pathsep.join(
            [str(Path(sys.executable).parent), str(pulumi_bin), "/usr/bin", "/bin"]
        ),
        "HOME": str(tmp_path),
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_CONFIG_PASSPHRASE": "engine-test-passphrase",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        CALL_LOG_ENV: str(rest_log),
    }
    (work / "Pulumi.yaml").write_text("name: stand-in-probe\nruntime: python\n")
    (work / "__main__.py").write_text(PROGRAM)
    found = Project(work, env, rest_log)
    script = write_plugin_script(tmp_path / "plugin")
    found.pulumi(*install_arguments(script))
    found.pulumi("stack", "init", "dev")
    found.pulumi("config", "set", "pagerduty:apiUrlOverride", sandbox.url)
    found.pulumi("config", "set", "--secret", "pagerduty:token", TOKEN)
    return found


def only(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, items
    return items[0]


def test_up_refresh_update_replace_drift_destroy(project: Project, sandbox: PagerDutySandbox):
    directory = sandbox.state.directory
    up = project.pulumi("up", "--yes")
    assert f"{STAND_IN}: this is not the real pulumi-resource-pagerduty" in up.stdout
    service = only(directory.list("services"))
    policy = only(directory.list("escalation_policies"))
    integration = only(directory.list("integrations"))
    setting = only(directory.list("alert_grouping_settings"))
    assert service["escalation_policy"]["id"] == policy["id"]
    assert service["acknowledgement_timeout"] is None
    assert service["support_hours"]["days_of_week"] == [1, 2, 3, 4, 5]
    assert service["scheduled_actions"][0]["at"]["name"] == "support_hours_start"
    assert integration["vendor"]["summary"] == "Apica"
    assert (setting["config"], [s["id"] for s in setting["services"]]) == (
        {"timeout": 300},
        [service["id"]],
    )
    first_key = integration["integration_key"]
    assert project.outputs() == {
        "service_id": service["id"],
        "service_url": service["html_url"],
        "integration_key": first_key,
    }
    stored = "\n".join(p.read_text() for p in (project.directory.parent / "state").rglob("*.json"))
    assert first_key not in stored and TOKEN not in stored

    project.pulumi("preview", "--refresh", "--expect-no-changes")

    project.pulumi("config", "set", "serviceName", "Checkout API")
    renamed = project.pulumi("up", "--yes")
    assert "~ 2 updated" in renamed.stdout
    assert only(directory.list("services"))["id"] == service["id"]
    assert service["name"] == "Checkout API" and integration["name"] == "Apica-Checkout API"
    assert project.outputs()["integration_key"] == first_key

    project.pulumi("config", "set", "vendor", "Datadog")
    replaced = project.pulumi("up", "--yes")
    assert "+-1 replaced" in replaced.stdout
    new = only(directory.list("integrations"))
    assert new["id"] != integration["id"] and new["vendor"]["summary"] == "Datadog"
    assert new["integration_key"] != first_key
    assert project.outputs()["integration_key"] == new["integration_key"]
    project.pulumi("preview", "--refresh", "--expect-no-changes")

    # Deleted outside Pulumi: a refresh reads a 404 and drops it from the state, so the
    # destroy does not try it (the real provider fails an integration delete on a 404).
    with sandbox.state.lock:
        directory.delete("integrations", new["id"])
    drifted = project.pulumi("preview", "--refresh", "--expect-no-changes", ok=False)
    assert drifted.returncode != 0 and "+ 1 to create" in drifted.stdout
    project.pulumi("refresh", "--yes", "--skip-preview")
    project.pulumi("destroy", "--yes", "--skip-preview")
    for collection in (
        "services",
        "escalation_policies",
        "integrations",
        "alert_grouping_settings",
    ):
        assert directory.list(collection) == [], collection
    assert project.rpcs() == {
        "Handshake",
        "GetPluginInfo",
        "CheckConfig",
        "DiffConfig",
        "Configure",
        "Invoke",
        "Check",
        "Diff",
        "Create",
        "Read",
        "Update",
        "Delete",
        "Cancel",
    }
