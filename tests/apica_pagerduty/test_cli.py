"""`apica-pd`: every part's subcommands are registered; handlers give the exit code."""

from __future__ import annotations

import pytest

from apica_pagerduty.cli import QUICK_COMMANDS, build_parser, main

EXPECTED = {
    "validate", "schema", "plan", "diff", "routes", "asm", "serve", "asm-setup", "outbox",
    "dead-letters", "unclaimed", "store", "test-route", "sandbox", "demo", "import",
    "change-event", "maintenance",
}


def test_every_part_registers_its_commands():
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert commands == EXPECTED


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


def test_handler_exit_code_is_returned(tmp_path, capsys):
    bad = tmp_path / "stack.yaml"
    bad.write_text("services: []\n")
    assert main(["validate", str(bad)]) == 1
    assert f"{bad}:1:11: services: " in capsys.readouterr().err


@pytest.mark.parametrize(("command", "module"), sorted(QUICK_COMMANDS.items()))
def test_a_quick_command_is_registered_by_its_module_alone(command, module):
    parser = build_parser((module,))
    assert command in parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
