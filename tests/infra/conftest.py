"""Fixtures of the infra tests: real YAML files in tmp_path, problems as strings, mocks."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

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
