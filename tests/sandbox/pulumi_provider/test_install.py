"""The plugin script the engine runs, and the command that installs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sandbox.pulumi_provider import STAND_IN
from sandbox.pulumi_provider.install import install_arguments, main, write_plugin_script
from tests.sandbox.pulumi_provider.conftest import plugin_port, plugin_version


def test_the_script_runs_the_stand_in_from_any_directory(tmp_path: Path):
    script = write_plugin_script(tmp_path / "plugin")
    assert script.name == "pulumi-resource-pagerduty"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert f"# {STAND_IN}: not the real provider." in text
    assert sys.executable in text
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    process = subprocess.Popen(
        [str(script), "127.0.0.1:1"],
        cwd=elsewhere,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        assert plugin_version(plugin_port(process)) == "4.37.0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_install_arguments_and_the_command_line(tmp_path: Path, capsys):
    script = tmp_path / "pulumi-resource-pagerduty"
    assert install_arguments(script) == [
        "plugin",
        "install",
        "resource",
        "pagerduty",
        "4.37.0",
        "--file",
        str(script),
    ]
    assert main([str(tmp_path / "bin")]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'bin' / 'pulumi-resource-pagerduty'}\n"
    assert main([]) == 2
    assert STAND_IN in capsys.readouterr().err
