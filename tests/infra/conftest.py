"""Fixtures for the stack-file tests: real YAML files in tmp_path, problems as strings."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.errors import StackFileInvalid
from infra.model import Stack
from infra.validate import load_stack

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"

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
