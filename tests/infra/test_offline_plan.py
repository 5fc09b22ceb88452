"""infra.offline_plan and `apica-pd plan`: the real program under mocks, presented for review."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

from apica_pagerduty.cli import main as cli_main
from infra.offline_plan import (
    SECRET,
    OfflinePlan,
    PlanMocks,
    plan_command,
    render_tree,
    run_stack_file_offline,
    to_json,
)

from .conftest import MINIMAL_STACK

EXAMPLE = Path(__file__).resolve().parents[2] / "stacks" / "example.yaml"
# Anything shaped like an integration key (the mocks invent 32 hex characters).
KEY_SHAPE = re.compile(r"\b[0-9a-f]{32}\b")

SMALL_STACK = MINIMAL_STACK + "    integration:\n      checks: {ids: [1]}\n"


@pytest.fixture(scope="module")
def example_plan() -> OfflinePlan:
    return run_stack_file_offline(EXAMPLE)


@pytest.fixture
def small_stack(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_STACK, encoding="utf-8")
    return path


class RecordingMocks(PlanMocks):
    """Injected mocks see every registration and look-up (the sandbox plugs in this way)."""

    def __init__(self, key: str | None = None) -> None:
        super().__init__()
        self.key = key
        self.seen: list[str] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.seen.append(args.name)
        resource_id, outputs = super().new_resource(args)
        if self.key is not None and "integrationKey" in outputs:
            outputs["integrationKey"] = self.key
        return resource_id, outputs

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.seen.append(args.token)
        result, failures = super().call(args)
        # Ids of its own, as a real API would give: the plan must still name them.
        return {**result, "id": f"PX{len(self.seen)}"}, failures


def test_example_registrations_have_parents_and_protect(example_plan: OfflinePlan) -> None:
    by_name = {r.name: r for r in example_plan.registrations}
    assert example_plan.stack == "example"
    assert by_name["service-checkout"].parent == "checkout"
    assert by_name["service-checkout"].protect is True
    assert by_name["service-status-page"].protect is False
    assert by_name["checkout"].type == "apica-pagerduty:index:ApicaService"
    assert by_name["checkout"].parent is None
    assert by_name["policy-platform-oncall"].parent is None


def test_runner_can_run_again_in_the_same_process(example_plan: OfflinePlan) -> None:
    again = run_stack_file_offline(EXAMPLE)
    assert again.registrations == example_plan.registrations
    assert again.lookups == example_plan.lookups
    assert again.outputs == example_plan.outputs


def test_tree_shows_components_children_look_ups_and_hides_secrets(
    example_plan: OfflinePlan,
) -> None:
    tree = render_tree(example_plan)
    assert "+ apica-pagerduty:index:ApicaService  checkout\n" in tree
    assert "  + pagerduty:index/service:Service  service-checkout  [protect]\n" in tree
    assert "      escalation_policy: ${policy-payments-oncall.id}\n" in tree
    assert "      service: ${service:Legacy Web}\n" in tree
    assert "  user: alice@example.com\n" in tree
    assert f"  bridge_routes: {SECRET}\n" in tree
    assert f"  integration_keys: {SECRET}\n" in tree
    assert not KEY_SHAPE.search(tree)


def test_json_lists_resources_look_ups_and_outputs(example_plan: OfflinePlan) -> None:
    text = to_json(example_plan)
    data = json.loads(text)
    assert len(data["resources"]) == len(example_plan.registrations) == 13
    integration = next(r for r in data["resources"] if r["name"] == "service-checkout-apica")
    assert integration["parent"] == "checkout"
    assert integration["inputs"] == {
        "name": "Apica-Checkout-API",
        "service": "${service-checkout.id}",
        "vendor": "PAPICA1",
    }
    assert {"kind": "service", "name": "Legacy Web"} in [
        {"kind": x["kind"], "name": x["name"]} for x in data["lookups"]
    ]
    assert data["outputs"]["bridge_routes"] == {"secret": True, "value": SECRET}
    assert not KEY_SHAPE.search(text)


def test_injected_mocks_are_used(small_stack: Path) -> None:
    mocks = RecordingMocks()
    plan = run_stack_file_offline(small_stack, "dev", mocks)
    assert plan.stack == "dev"
    assert "service-web-apica" in mocks.seen
    assert "pagerduty:index/getUser:getUser" in mocks.seen
    policy = next(r for r in plan.registrations if r.name == "policy-oncall")
    assert policy.inputs["rules"][0]["targets"] == [
        {"type": "user_reference", "id": "${user:ann@example.com}"}
    ]
    assert {x.id for x in plan.lookups} <= {f"PX{i}" for i in range(1, len(mocks.seen) + 1)}


def test_cli_plan_prints_the_tree(small_stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["plan", str(small_stack)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("stack small: 4 resources, 2 look-ups")
    assert "+ pagerduty:index/escalationPolicy:EscalationPolicy  policy-oncall  [protect]" in out


def test_cli_plan_json_with_stack_name(
    small_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["plan", str(small_stack), "--json", "--stack", "prod"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stack"] == "prod"
    assert {o: v["secret"] for o, v in data["outputs"].items()} == {
        "bridge_routes": True,
        "integration_keys": True,
        "services": False,
    }


@pytest.mark.parametrize(
    "text",
    ["", "- a list\n", "services: [\n", "services:\n  web:\n    name: Web\n    nmae: x\n"],
)
def test_cli_plan_bad_file_exits_1_with_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    assert cli_main(["plan", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(path) in captured.err
    assert "Traceback" not in captured.err


def test_plan_command_reports_program_errors_without_the_key(
    small_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = plan_command(small_stack, mocks=RecordingMocks(key="not-a-key-9876"))
    captured = capsys.readouterr()
    assert code == 1
    assert "bridge_routes" in captured.err and "routing_key" in captured.err
    assert "9876" not in captured.err
    assert "Traceback" not in captured.err


def test_invented_ids_do_not_collide_at_scale() -> None:
    # The plan shows ids as what they refer to, so a collision would mislabel a resource.
    mocks = PlanMocks()
    ids = {
        mocks.new_resource(MockResourceArgs("pagerduty:index/service:Service", f"s-{i}", {}))[0]
        for i in range(20_000)
    }
    assert len(ids) == 20_000
