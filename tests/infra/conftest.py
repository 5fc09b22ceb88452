"""Fixtures of the infra tests: real YAML files in tmp_path, problems as strings, mocks."""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

from apica_pagerduty.cli import main
from contract.vocabulary import DEFAULT_SEVERITY_MAP
from infra.errors import StackFileInvalid
from infra.model import (
    ExistingService,
    Integration,
    NewPolicy,
    NewService,
    Rule,
    Stack,
    Target,
    UrgencyRule,
)
from infra.preview import PreviewMocks
from infra.validate import load_stack
from sandbox.clock import ManualClock
from sandbox.directory import KINDS
from sandbox.server import PagerDutySandbox

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"
EXAMPLE = STACKS / "example.yaml"

# The smallest useful stack; tests append to it or start from their own text.
MINIMAL_STACK = """\
escalation_policies:
  oncall:
    name: On-call
    rules:
      - delay: 30m
        targets: [{user: ann@example.com}]
services:
  web:
    name: Web
    escalation_policy: oncall
"""
# MINIMAL_STACK with a routed check: 4 resources, 2 look-ups.
SMALL_STACK = MINIMAL_STACK + "    integration:\n      checks: {ids: [1]}\n"


def many_services_text(
    services: int, *, policy: str = "day", tail: str = "", checks: bool = True
) -> str:
    """`services` services, each with one check, all on `defaults.escalation_policy`."""
    lines = [
        "defaults:",
        f"  escalation_policy: {policy}",
        "escalation_policies:",
    ]
    for key in ("day", "night"):
        lines += [
            f"  {key}:",
            f"    name: {key.title()}",
            "    rules: [{delay: 30m, targets: [{user: ann@example.com}]}]",
        ]
    lines.append("services:")
    for index in range(services):
        lines += [f"  s{index}:", f"    name: Service {index}"]
        if checks:
            lines.append(f"    integration: {{checks: {{ids: [{index}]}}}}")
    return "\n".join(lines) + "\n" + tail


# Values that would rewrite a terminal if printed raw: erase the line and forge another,
# a CSI in its one-byte C1 form, a bidi override, a line separator, DEL, a bare newline.
HOSTILE = [
    pytest.param("Ops\x1b[2K\rstacks/prod.yaml: ok", id="escape-sequence"),
    pytest.param("Ops\x9b2K", id="c1-csi"),
    pytest.param("Ops\u202emoc.elpmaxe", id="bidi-override"),
    pytest.param("Ops\u2028forged line", id="line-separator"),
    pytest.param("Ops\x7f\x08", id="del-backspace"),
    pytest.param("Ops\nforged: ok", id="newline"),
]


def raw_controls(text: str) -> list[str]:
    """Characters of printed output that a terminal would act on (newlines end lines)."""
    return [char for char in text if not char.isprintable() and char != "\n"]


# -- resolved models, built directly (for plan and program tests) ------------------------


def integration(name: str = "Apica-Web", **overrides: Any) -> Integration:
    fields: dict[str, Any] = {
        "name": name,
        "vendor_id": None,
        "check_ids": (),
        "check_guids": (),
        "check_tags": (),
        "severity_map": dict(DEFAULT_SEVERITY_MAP),
        "links": (),
    }
    return Integration(**{**fields, **overrides})


def new_service(key: str = "web", **overrides: Any) -> NewService:
    """A new service `key` named `key.title()`, on policy `oncall`, PagerDuty's defaults."""
    fields: dict[str, Any] = {
        "key": key,
        "name": key.title(),
        "description": None,
        "escalation_policy": "oncall",
        "urgency": UrgencyRule(type="constant", urgency="severity_based"),
        "auto_resolve_timeout": 4 * 3600,
        "acknowledgement_timeout": 30 * 60,
        "alert_grouping": None,
        "auto_pause_timeout": None,
        "team": None,
        "protect": True,
        "integration": integration(f"Apica-{key.title()}"),
    }
    return NewService(**{**fields, **overrides})


def new_policy(key: str = "oncall", **overrides: Any) -> NewPolicy:
    """Policy `key` ("On-call"): one rule paging ann@example.com after 30 minutes."""
    fields: dict[str, Any] = {
        "key": key,
        "name": "On-call",
        "description": None,
        "num_loops": 1,
        "team": None,
        "protect": True,
        "rules": (
            Rule(
                delay_minutes=30,
                assignment="assign_to_everyone",
                targets=(Target(type="user", ref="ann@example.com"),),
            ),
        ),
    }
    return NewPolicy(**{**fields, **overrides})


def resolved_stack(*services: NewService | ExistingService, **overrides: Any) -> Stack:
    """A Stack of `services` and the policy `oncall` (`new_policy()`)."""
    fields: dict[str, Any] = {
        "escalation_policies": {"oncall": new_policy()},
        "services": {service.key: service for service in services},
        "catch_all": None,
        "apica_vendor_id": None,
    }
    return Stack(**{**fields, **overrides})


# -- mocks -------------------------------------------------------------------------------


class RecordingMocks(PreviewMocks):
    """PreviewMocks that record what the program asks for (as injected mocks see it).

    `key` replaces every integration key (to play a provider handing out bad ones);
    `own_ids` answers look-ups with ids of its own, as a real API would.
    """

    def __init__(
        self,
        key: str | None = None,
        *,
        own_ids: bool = False,
        account: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(account)
        self.key = key
        self.own_ids = own_ids
        self.seen: list[str] = []  # logical names and look-up tokens, in order
        self.calls: list[tuple[str, tuple[tuple[str, Any], ...]]] = []  # look-ups with args

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.seen.append(args.name)
        resource_id, outputs = super().new_resource(args)
        if self.key is not None and "integrationKey" in outputs:
            outputs["integrationKey"] = self.key
        return resource_id, outputs

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.seen.append(args.token)
        self.calls.append((args.token, tuple(sorted(args.args.items()))))
        result, failures = super().call(args)
        if self.own_ids:
            result = {**result, "id": f"PX{len(self.seen)}"}
        return result, failures


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `apica-pd <args>` in-process: (exit code, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def write_stack(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented YAML text (or bytes) to `tmp_path/<name>` and return its path."""

    def write(content: str | bytes, name: str = "stack.yaml") -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
        return path

    return write


@pytest.fixture
def problems_of(write_stack: Callable[..., Path]) -> Callable[[str], list[str]]:
    """Every problem of a stack file, as `stack.yaml:line:col: message` strings.

    Fails the test if the file is valid: a rule test must see its problem.
    """

    def problems(content: str) -> list[str]:
        path = write_stack(content)
        try:
            load_stack(path, display="stack.yaml")
        except StackFileInvalid as exc:
            return [str(problem) for problem in exc.problems]
        pytest.fail("the stack file was valid; expected problems")

    return problems


@pytest.fixture
def stack_of(write_stack: Callable[..., Path]) -> Callable[[str], Stack]:
    """The resolved Stack of valid YAML text (the test fails with the problems otherwise)."""

    def stack(content: str) -> Stack:
        path = write_stack(content)
        try:
            return load_stack(path, display="stack.yaml")
        except StackFileInvalid as exc:
            pytest.fail(f"expected a valid stack file, got:\n{exc}")

    return stack


@pytest.fixture
def small_stack(write_stack: Callable[..., Path]) -> Path:
    """SMALL_STACK as `small.yaml` (so its stack name is `small`)."""
    return write_stack(SMALL_STACK, "small.yaml")


# -- a running sandbox holding a hand-made account (import tests) --------------------------


@pytest.fixture
def pd() -> Iterator[PagerDutySandbox]:
    """The PagerDuty sandbox on loopback, on a manual clock."""
    with PagerDutySandbox(clock=ManualClock(), token="import-test-token") as sandbox:
        yield sandbox


class HandMadeAccount:
    """An account set up as a person would: policies, services and integrations made
    through the REST API; users, schedules and teams seeded (the API makes none)."""

    def __init__(self, pd: PagerDutySandbox) -> None:
        self.pd = pd
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Token token={pd.token}"
        self.ids: dict[str, str] = {}

    def post(self, path: str, wrapper: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(self.pd.api_url + path, json={wrapper: body}, timeout=10)
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()[wrapper]
        return created

    def policy(self, name: str, rules: list[tuple[int, str, list[str]]], **fields: Any) -> str:
        """`rules`: (delay minutes, assignment strategy, ["user:email" | "schedule:name"])."""
        body = {
            "name": name,
            "escalation_rules": [
                {
                    "escalation_delay_in_minutes": delay,
                    "escalation_rule_assignment_strategy": {"type": strategy},
                    "targets": [self._target(target) for target in targets],
                }
                for delay, strategy, targets in rules
            ],
            **fields,
        }
        self.ids[name] = self.post("/escalation_policies", "escalation_policy", body)["id"]
        return self.ids[name]

    def service(self, name: str, policy: str, **fields: Any) -> str:
        body = {
            "name": name,
            "escalation_policy": {"id": self.ids[policy], "type": "escalation_policy_reference"},
            **fields,
        }
        self.ids[name] = self.post("/services", "service", body)["id"]
        return self.ids[name]

    def integration(self, service: str, name: str, vendor: str | None = None) -> str:
        body: dict[str, Any] = {"name": name, "type": "events_api_v2_inbound_integration"}
        if vendor is not None:
            body = {"name": name, "vendor": {"id": vendor, "type": "vendor_reference"}}
        path = f"/services/{self.ids[service]}/integrations"
        integration_id = self.post(path, "integration", body)["id"]
        self.ids[f"{service}/{name}"] = integration_id
        return integration_id

    def _target(self, target: str) -> dict[str, str]:
        kind, _, ref = target.partition(":")
        return {"id": self.ids[ref], "type": f"{kind}_reference"}

    def person(self, email: str, name: str) -> None:
        self.ids[email] = self.pd.state.add_user(email, name)["id"]

    def schedule(self, name: str) -> None:
        self.ids[name] = self.pd.state.add_schedule(name)["id"]

    def team(self, name: str) -> None:
        self.ids[name] = self.pd.state.add_team(name)["id"]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every object of the account, to compare before and after."""
        with self.pd.state.lock:
            return copy.deepcopy(
                {kind: self.pd.state.directory.list(kind) for kind in KINDS}
            )


def apica_vendor(pd: PagerDutySandbox) -> str:
    return next(v["id"] for v in pd.state.directory.list("vendors") if v["name"] == "Apica")


@pytest.fixture
def account(pd: PagerDutySandbox) -> HandMadeAccount:
    return hand_made_account(pd)


def hand_made_account(pd: PagerDutySandbox) -> HandMadeAccount:
    """2 policies, 3 services: one with support hours, one with an Apica integration."""
    made = HandMadeAccount(pd)
    made.person("alice@example.com", "Alice")
    made.person("bob@example.com", "Bob")
    made.schedule("Platform Primary")
    made.team("Platform")
    made.policy(
        "Platform On-call",
        [(30, "assign_to_everyone", ["schedule:Platform Primary"]),
         (15, "round_robin", ["user:alice@example.com", "user:bob@example.com"])],
        num_loops=2,
        description="Platform engineering, follow the sun",
        teams=[{"id": made.ids["Platform"], "type": "team_reference"}],
    )
    made.policy("Payments On-call", [(10, "assign_to_everyone", ["user:alice@example.com"])])
    made.service(
        "Checkout API",
        "Payments On-call",
        description="Public checkout API",
        auto_resolve_timeout=None,
        acknowledgement_timeout=1800,
        incident_urgency_rule={
            "type": "use_support_hours",
            "during_support_hours": {"type": "constant", "urgency": "high"},
            "outside_support_hours": {"type": "constant", "urgency": "low"},
        },
        support_hours={
            "type": "fixed_time_per_day",
            "time_zone": "Europe/Berlin",
            "days_of_week": [1, 2, 3, 4, 5],
            "start_time": "09:00:00",
            "end_time": "17:00:00",
        },
        scheduled_actions=[{
            "type": "urgency_change",
            "at": {"type": "named_time", "name": "support_hours_start"},
            "to_urgency": "high",
        }],
    )
    made.integration("Checkout API", "Apica-Checkout-API", vendor=apica_vendor(pd))
    made.integration("Checkout API", "Deploy hooks")
    made.service(
        "Search",
        "Platform On-call",
        incident_urgency_rule={"type": "constant", "urgency": "severity_based"},
        alert_grouping_parameters={"type": "time", "config": {"timeout": 15}},
        auto_pause_notifications_parameters={"enabled": True, "timeout": 300},
    )
    made.service(
        "Status Page",
        "Platform On-call",
        description="status.example.com",
        incident_urgency_rule={"type": "constant", "urgency": "low"},
        acknowledgement_timeout=None,
    )
    return made
