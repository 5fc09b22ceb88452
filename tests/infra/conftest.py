"""Fixtures of the infra tests: real YAML files in tmp_path, problems as strings, mocks."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

from infra.errors import StackFileInvalid
from infra.model import Stack
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


class RecordingMocks(PreviewMocks):
    """PreviewMocks that record what the program asks for (as injected mocks see it).

    `key` replaces every integration key (to play a provider handing out bad ones);
    `own_ids` answers look-ups with ids of its own, as a real API would.
    """

    def __init__(
        self, key: str | None = None, *, own_ids: bool = False, vendor_name: str = "Apica"
    ) -> None:
        super().__init__(vendor_name)
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
