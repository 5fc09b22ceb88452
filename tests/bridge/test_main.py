"""`python -m bridge`: the relay ships alone (no infra, Pulumi, sandbox or dispatcher)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOREIGN = ("pulumi", "pulumi_pagerduty", "infra", "sandbox", "apica_pagerduty")

# Imports every bridge module, then runs each command far enough that its handler's
# own imports happen (a missing routes file or store stops each one), and reports
# every foreign package that was asked for, imported or not.
PROBE = r"""
import importlib, json, pkgutil, sys

FOREIGN = set(sys.argv[1].split(","))
asked = []

class Recorder:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FOREIGN:
            asked.append(name)
        return None

sys.meta_path.insert(0, Recorder())
import bridge
for module in pkgutil.walk_packages(bridge.__path__, "bridge."):
    if module.name != "bridge.__main__":
        importlib.import_module(module.name)
from bridge.cli import main

tmp = sys.argv[2]
codes = {}
for argv in (["serve", "--routes", tmp + "/none.json", "--data-dir", tmp],
             ["asm-setup", "--routes", tmp + "/none.json"],
             ["outbox", "--data-dir", tmp], ["unclaimed", "--data-dir", tmp],
             ["dead-letters", "list", "--data-dir", tmp],
             ["test-route", "web", "--routes", tmp + "/none.json"]):
    codes[argv[0]] = main(argv)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in FOREIGN)
print(json.dumps({"asked": sorted(set(asked)), "loaded": loaded, "codes": codes}))
"""


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APICA_PD_")}
    return {**env, "PYTHONPATH": str(ROOT)}


def test_the_bridge_imports_nothing_of_infra_pulumi_sandbox_or_the_dispatcher(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(FOREIGN), str(tmp_path)],
        cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["asked"], report["loaded"]) == ([], [])
    # Each command really ran (and stopped at the missing file or store).
    assert report["codes"] == {"serve": 2, "asm-setup": 2, "outbox": 2, "unclaimed": 2,
                               "dead-letters": 2, "test-route": 2}


def _python_m_bridge(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", *argv], cwd=ROOT, env=_clean_env(),
                          capture_output=True, text=True, timeout=60)


def test_without_a_command_it_serves(tmp_path):
    done = _python_m_bridge("--routes", str(tmp_path / "none.json"), "--data-dir",
                            str(tmp_path))
    assert done.returncode == 2
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert (line["event"], line["msg"]) == (
        "start_failed", f"cannot start: {tmp_path / 'none.json'}: no such file")


def test_a_command_runs_that_command(tmp_path):
    done = _python_m_bridge("outbox", "--data-dir", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"apica-pd outbox: no outbox at {tmp_path / 'nowhere' / 'outbox.sqlite3'} "
        "(wrong --data-dir?)")


def test_help_lists_the_bridges_commands():
    done = _python_m_bridge("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m bridge [-h] COMMAND ...")
    for command in ("serve", "asm-setup", "outbox", "dead-letters", "unclaimed", "test-route"):
        assert command in done.stdout
