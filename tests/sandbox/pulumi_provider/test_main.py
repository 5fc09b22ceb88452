"""The plugin executable: engine flags before the engine's address, the port on stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sandbox.pulumi_provider import CALL_LOG_ENV
from tests.sandbox.pulumi_provider.conftest import plugin_port, plugin_version

REPO = Path(__file__).resolve().parents[3]


def test_it_serves_on_the_port_it_prints(tmp_path: Path):
    log = tmp_path / "rest.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.pulumi_provider",
            "--logtostderr",
            "-v=9",
            "--tracing",
            "127.0.0.1:1",
            "127.0.0.1:1",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", CALL_LOG_ENV: str(log)},
    )
    try:
        assert plugin_version(plugin_port(process)) == "4.37.0"
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "rpc GetPluginInfo" in log.read_text()
