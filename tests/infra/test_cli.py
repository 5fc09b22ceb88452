"""`apica-pd validate`, `schema` and `plan`: output, exit codes, no traceback for bad input."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import infra.validate
from infra.cli import plan_command

from .conftest import HOSTILE, MINIMAL_STACK, STACKS, RecordingMocks, Run, raw_controls


def test_validate_good_files(run: Run) -> None:
    code, out, err = run("validate", *(str(STACKS / n) for n in ("example.yaml", "dev.yaml")))
    assert (code, err) == (0, "")
    assert out == (
        f"{STACKS / 'example.yaml'}: ok (4 services, 3 escalation policies)\n"
        f"{STACKS / 'dev.yaml'}: ok (2 services, 1 escalation policy)\n"
    )


def test_validate_reports_every_problem_and_exits_1(
    run: Run, write_stack: Callable[..., Path]
) -> None:
    bad = write_stack(
        MINIMAL_STACK.replace("name: Web", "nmae: Web") + "catch_all: api\n", "bad.yaml"
    )
    code, out, err = run("validate", str(bad))
    assert (code, out) == (1, "")
    assert err == (
        f"{bad}:9:5: services.web: unknown key 'nmae'; did you mean 'name'?\n"
        f"{bad}:11:12: catch_all: 'api' is not a service key; services are: web\n"
    )


def test_validate_mixes_good_and_bad(run: Run, write_stack: Callable[..., Path]) -> None:
    good = write_stack(MINIMAL_STACK, "good.yaml")
    empty = write_stack("", "empty.yaml")
    code, out, err = run("validate", str(good), str(empty))
    assert code == 1
    assert out == f"{good}: ok (1 service, 1 escalation policy)\n"
    assert err == (
        f"{empty}:1:1: the file is empty: a stack needs at least `services:`\n"
        "1 of 2 files are invalid\n"
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda d: d / "missing.yaml", "no such file", id="missing"),
        pytest.param(lambda d: d, "is a directory, not a stack file", id="directory"),
        pytest.param(
            lambda d: (os.mkfifo(d / "fifo"), d / "fifo")[1],
            "is not a regular file (a FIFO, socket or device?)",
            id="fifo",
        ),
        pytest.param(
            lambda d: (d / "bin.yaml", (d / "bin.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\0\0"))[0],
            "1:1: is not UTF-8 text (binary data or another encoding?)",
            id="binary",
        ),
    ],
)
def test_validate_never_shows_a_traceback(
    run: Run, tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    path = make(tmp_path)
    code, out, err = run("validate", str(path))
    assert (code, out) == (1, "")
    separator = ":" if message[0].isdigit() else ": "
    assert err == f"{path}{separator}{message}\n"
    assert "Traceback" not in err


def test_validate_needs_a_file(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        run("validate")
    assert caught.value.code == 2
    assert "the following arguments are required: FILE" in capsys.readouterr().err


def test_schema_prints_the_committed_schema(run: Run) -> None:
    code, out, err = run("schema")
    assert (code, err) == (0, "")
    assert out == (STACKS / "schema.json").read_text(encoding="utf-8")
    assert json.loads(out)["title"] == "apica-pagerduty stack file"


def test_a_bug_of_ours_is_one_line_not_a_traceback(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(infra.validate, "check_file", broken)
    code, out, err = run("validate", "stacks/example.yaml")
    assert (code, out) == (1, "")
    assert err == "stacks/example.yaml: internal error (RuntimeError); please report it\n"


# -- plan ------------------------------------------------------------------------------


def test_plan_prints_the_tree(run: Run, small_stack: Path) -> None:
    code, out, err = run("plan", str(small_stack))
    assert (code, err) == (0, "")
    assert out.startswith("stack small: 4 resources, 2 look-ups")
    assert "+ pagerduty:index/escalationPolicy:EscalationPolicy  policy-oncall  [protect]" in out


def test_plan_json_with_stack_name(run: Run, small_stack: Path) -> None:
    code, out, _ = run("plan", str(small_stack), "--json", "--stack", "prod")
    assert code == 0
    data = json.loads(out)
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
def test_plan_bad_file_exits_1_with_problems(
    run: Run, write_stack: Callable[..., Path], text: str
) -> None:
    path = write_stack(text, "bad.yaml")
    code, out, err = run("plan", str(path))
    assert (code, out) == (1, "")
    assert str(path) in err
    assert "Traceback" not in err


def test_plan_reports_program_errors_without_the_key(
    small_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = plan_command(small_stack, mocks=RecordingMocks(key="not-a-key-9876"))
    captured = capsys.readouterr()
    assert (code, captured.out) == (1, "")
    assert "bridge_routes" in captured.err and "routing_key" in captured.err
    assert "9876" not in captured.err
    assert "Traceback" not in captured.err


def test_plan_refuses_a_look_up_the_provider_would_fail(
    small_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = plan_command(small_stack, mocks=RecordingMocks(account={"user": ["ANN@example.com"]}))
    captured = capsys.readouterr()
    assert (code, captured.out) == (1, "")
    assert captured.err == (
        f"{small_stack}: Unable to locate any user with the email: ann@example.com (PagerDuty "
        "has 'ANN@example.com': look-ups match the email exactly, case included; write it as "
        "PagerDuty has it)\n"
    )


# -- what is printed never carries a raw control character ----------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_validate_escapes_values_it_quotes(
    run: Run, write_stack: Callable[..., Path], value: str
) -> None:
    # The unknown-policy message lists the declared policy keys as they are written.
    text = MINIMAL_STACK.replace("  oncall:", f"  {json.dumps(value)}:")
    bad = write_stack(text, "bad.yaml")
    code, out, err = run("validate", str(bad))
    assert (code, out) == (1, "")
    assert raw_controls(err) == []
    key_problem, reference_problem = err.splitlines()
    assert key_problem.startswith(f"{bad}:2:3: escalation_policies: escalation policy key ")
    assert reference_problem.startswith(
        f"{bad}:10:24: services.web.escalation_policy: unknown escalation policy 'oncall'; "
        "declared in escalation_policies: Ops"
    )


@pytest.mark.parametrize("value", HOSTILE)
def test_plan_escapes_values_in_the_tree(
    run: Run, write_stack: Callable[..., Path], value: str
) -> None:
    path = write_stack(MINIMAL_STACK + f"    description: {json.dumps(value)}\n", "x.yaml")
    code, out, err = run("plan", str(path))
    assert (code, err) == (0, "")
    assert raw_controls(out) == []
    (line,) = [line for line in out.splitlines() if "description: Ops" in line]
    assert "forged" not in out.replace(line, "")
