"""The real Pulumi engine on this project's program, for the demo, tests/e2e and benchmarks.

`PulumiProject.create` copies the program (Pulumi.yaml, infra/, contract/, stacks/)
into a work directory with its own PULUMI_HOME, a file backend and a passphrase, and
installs the PagerDuty plugin from a file: the labelled stand-in
(sandbox/pulumi_provider) unless APICA_PD_PAGERDUTY_PLUGIN names another binary.
The CLI comes from tools/build.sh's cache (`built_tools` never builds). Nothing
reaches out: update checks, plugin downloads and plugins found on PATH are off.
Users run their own released `pulumi` and provider (README, "Production").
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from contract.errors import ApicaError
from contract.redact import mask_keys

ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = ROOT / "tools" / "build.sh"
# The binary to install as the PagerDuty plugin instead of the stand-in.
PLUGIN_ENV = "APICA_PD_PAGERDUTY_PLUGIN"
# What Pulumi runs: Pulumi.yaml's `main: infra/`, what it imports, the stack files.
PROGRAM_PARTS = ("Pulumi.yaml", "infra", "contract", "stacks")
COMMAND_TIMEOUT = 600.0
VERSION_TIMEOUT = 20.0
# Ambient settings that would point the engine or the provider elsewhere.
_AMBIENT_PREFIXES = ("PULUMI_", "PAGERDUTY_")
_FAILURE_LINES = 25


class EngineError(ApicaError):
    """The engine could not be found or a `pulumi` command failed; `str()` says which."""


class ToolsNotBuilt(EngineError):
    """tools/build.sh has no cache hit for this checkout (or cannot run)."""


def built_tools(script: Path = BUILD_SCRIPT) -> Path:
    """The directory holding `pulumi` and its Python language host, if already built."""
    try:
        done = subprocess.run(
            ["bash", str(script), "--check"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolsNotBuilt(f"{script} --check could not run: {exc}") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise ToolsNotBuilt(reason.removeprefix("[tools/build.sh] "))
    return Path(done.stdout.strip().splitlines()[-1])


def cli_version(tools: Path) -> str:
    """What `pulumi version` prints (v3.274.0 for tools/build.sh's CLI)."""
    done = subprocess.run(
        [str(tools / "pulumi"), "version"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
    )
    return done.stdout.strip() or "unknown version"


@dataclass(frozen=True)
class Provider:
    """The PagerDuty plugin a project installs, and how output names it."""

    executable: Path
    stand_in: bool
    label: str


def choose_provider(plugin_dir: Path, environ: dict[str, str] | None = None) -> Provider:
    """The binary named by APICA_PD_PAGERDUTY_PLUGIN, else the stand-in written to `plugin_dir`."""
    from sandbox.pulumi_provider import STAND_IN
    from sandbox.pulumi_provider.install import write_plugin_script

    custom = (os.environ if environ is None else environ).get(PLUGIN_ENV)
    if not custom:
        script = write_plugin_script(plugin_dir)
        return Provider(script, True, f"{STAND_IN} (sandbox/pulumi_provider; tests only)")
    path = Path(custom)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise EngineError(f"{PLUGIN_ENV}={custom}: not an executable file")
    return Provider(
        path, False, f"{path} from {PLUGIN_ENV} (its -version: {_reported_version(path)})"
    )


def _reported_version(path: Path) -> str:
    # Bridged providers print their version for `-version`; anything else may not.
    try:
        done = subprocess.run(
            [str(path), "-version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired):
        return "none"
    first = (done.stdout.strip().splitlines() or [""])[0]
    return first if done.returncode == 0 and first else "none"


@dataclass
class PulumiProject:
    """A copy of the program with its own Pulumi home and file backend; runs `pulumi`."""

    directory: Path
    env: dict[str, str]
    provider: Provider
    timeout: float = COMMAND_TIMEOUT

    @classmethod
    def create(
        cls,
        work: Path,
        tools: Path,
        provider: Provider,
        *,
        extra_env: dict[str, str] | None = None,
        timeout: float = COMMAND_TIMEOUT,
    ) -> PulumiProject:
        """Copy the program into `work/project` and install `provider` for it."""
        directory, home, state = work / "project", work / "pulumi-home", work / "state"
        directory.mkdir(parents=True)
        home.mkdir()
        state.mkdir()
        for part in PROGRAM_PARTS:
            source = ROOT / part
            if source.is_dir():
                shutil.copytree(source, directory / part,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, directory / part)
        _point_at_this_venv(directory / "Pulumi.yaml")
        ambient = {k: v for k, v in os.environ.items() if not k.startswith(_AMBIENT_PREFIXES)}
        env = {
            **ambient,
            # The stand-in language host runs `python3` from PATH: this venv's first.
            "PATH": os.pathsep.join(
                [str(Path(sys.executable).parent), str(tools), ambient.get("PATH", os.defpath)]
            ),
            "PULUMI_HOME": str(home),
            "PULUMI_BACKEND_URL": f"file://{state}",
            "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(16),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            **(extra_env or {}),
        }
        project = cls(directory, env, provider, timeout)
        project.install_provider()
        return project

    def install_provider(self) -> None:
        from sandbox.pulumi_provider.install import install_arguments

        # Installed as the version the SDK asks for, whatever the binary says it is.
        self.run(*install_arguments(self.provider.executable))

    def run(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`pulumi ARGS` in the project; EngineError with its last lines if it fails."""
        command = ["pulumi", *args, "--non-interactive", "--color", "never"]
        try:
            done = subprocess.run(
                command, cwd=self.directory, env=self.env, input=stdin,
                stdin=subprocess.DEVNULL if stdin is None else None,
                capture_output=True, text=True, timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            raise EngineError(f"`pulumi {' '.join(args)}` did not finish in "
                              f"{self.timeout:.0f} s") from None
        if check and done.returncode != 0:
            raise EngineError(f"`pulumi {' '.join(args)}` exited {done.returncode}:\n"
                              + failure_tail(done))
        return done

    def init_stack(
        self, stack: str, api_url: str, token: str, stack_file: Path | None = None
    ) -> None:
        """A new stack pointed at `api_url` (no trailing slash), the token as a secret."""
        self.run("stack", "init", stack)
        self.run("config", "set", "pagerduty:apiUrlOverride", api_url.rstrip("/"))
        # On standard input, so the token is on no command line.
        self.run("config", "set", "--secret", "pagerduty:token", stdin=token)
        if stack_file is not None:
            self.run("config", "set", "stackFile", str(stack_file.resolve()))

    def export(self) -> dict[str, Any]:
        """`pulumi stack export`: the deployment's resources (secrets stay encrypted)."""
        return json.loads(self.run("stack", "export").stdout)

    def outputs(self) -> dict[str, Any]:
        """The stack's outputs with secrets shown."""
        return json.loads(self.run("stack", "output", "--json", "--show-secrets").stdout)

    def apica_pd(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`apica-pd ARGS` run with this project's Pulumi environment, in the project."""
        return subprocess.run(
            [sys.executable, "-m", "apica_pagerduty", *args],
            cwd=self.directory, env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=self.timeout,
        )


def failure_tail(done: subprocess.CompletedProcess[str]) -> str:
    """The last lines a failed command printed, keys masked."""
    lines = (done.stdout + done.stderr).strip().splitlines()
    return mask_keys("\n".join(lines[-_FAILURE_LINES:]))


def _point_at_this_venv(pulumi_yaml: Path) -> None:
    # `virtualenv: .venv` would name a venv the copy does not have; a host that reads
    # the option gets this interpreter's venv, the stand-in host finds it on PATH.
    project = yaml.safe_load(pulumi_yaml.read_text(encoding="utf-8"))
    options = project.get("runtime", {}).get("options")
    if isinstance(options, dict):
        if sys.prefix != sys.base_prefix:
            options["virtualenv"] = sys.prefix
        else:
            options.pop("virtualenv", None)
    pulumi_yaml.write_text(yaml.safe_dump(project, sort_keys=False), encoding="utf-8")
