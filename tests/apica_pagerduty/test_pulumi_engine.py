"""The engine driver with stand-ins for the CLI and tools/build.sh: shell scripts that record
what they were asked (the real CLI runs in tests/e2e)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from apica_pagerduty.pulumi_engine import (
    PLUGIN_ENV,
    PROGRAM_PARTS,
    EngineError,
    Provider,
    PulumiProject,
    ToolsNotBuilt,
    built_tools,
    choose_provider,
    cli_version,
)
from sandbox.pulumi_provider import STAND_IN

KEY = "abcdefghijklmnopqrstuvwxyz012345"
# Records each call (arguments, standard input, the Pulumi and PagerDuty settings it got).
FAKE_PULUMI = """#!/bin/sh
{{ printf 'args: %s\\n' "$*"; printf 'stdin: '; cat; printf '\\n'
   env | grep -E '^(PULUMI|PAGERDUTY)_' | sort; printf 'PATH=%s\\n' "$PATH"; }} >> {log}
case "$1 $2" in
  "version "*) echo v3.274.0 ;;
  "fail "*) echo "error: integration key {key} refused" >&2; exit 4 ;;
  "chatty "*) seq 1 40; echo "error: gave up" >&2; exit 1 ;;
  "hang "*) exec sleep 30 ;;
  "stack export") echo '{{"version": 3, "deployment": {{"resources": []}}}}' ;;
  "stack output") echo '{{"services": {{}}}}' ;;
esac
"""


def script(path: Path, text: str) -> Path:
    path.write_text(text if text.startswith("#!") else "#!/bin/sh\n" + text)
    path.chmod(0o755)
    return path


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script(bin_dir / "pulumi", FAKE_PULUMI.format(log=tmp_path / "calls.log", key=KEY))
    return bin_dir


@pytest.fixture
def stand_in(tmp_path: Path) -> Provider:
    return choose_provider(tmp_path / "plugin", environ={})


@pytest.fixture
def project(
    tmp_path: Path, tools: Path, stand_in: Provider, monkeypatch: pytest.MonkeyPatch
) -> PulumiProject:
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", "ambient-token")
    monkeypatch.setenv("PAGERDUTY_TOKEN", "ambient-pagerduty-token")
    return PulumiProject.create(tmp_path / "work", tools, stand_in)


def calls(tmp_path: Path) -> str:
    return (tmp_path / "calls.log").read_text()


def test_built_tools_is_the_last_line_a_cache_hit_prints(tmp_path: Path):
    build = script(tmp_path / "build.sh", '[ "$1" = --check ] && echo /cache/abc/bin\n')
    assert built_tools(build) == Path("/cache/abc/bin")


def test_a_cache_miss_is_tools_not_built_with_the_scripts_reason(tmp_path: Path):
    build = script(tmp_path / "build.sh", "echo '[tools/build.sh] not built: /c/bin' >&2\nexit 3\n")
    with pytest.raises(ToolsNotBuilt) as missing:
        built_tools(build)
    assert str(missing.value) == "not built: /c/bin"


def test_cli_version_is_what_pulumi_version_prints(tools: Path):
    assert cli_version(tools) == "v3.274.0"


def test_the_stand_in_is_the_default_provider_and_says_so(stand_in: Provider, tmp_path: Path):
    assert stand_in.stand_in
    assert stand_in.executable == tmp_path / "plugin" / "pulumi-resource-pagerduty"
    assert stand_in.label == f"{STAND_IN} (sandbox/pulumi_provider; tests only)"


def test_a_binary_named_in_the_environment_is_used_with_its_reported_version(tmp_path: Path):
    binary = script(tmp_path / "provider", '[ "$1" = -version ] && echo 4.34.0\n')
    chosen = choose_provider(tmp_path / "plugin", environ={PLUGIN_ENV: str(binary)})
    assert (chosen.executable, chosen.stand_in) == (binary, False)
    assert chosen.label == f"{binary} from {PLUGIN_ENV} (its -version: 4.34.0)"
    assert not (tmp_path / "plugin").exists()


def test_a_binary_without_a_version_is_labelled_so(tmp_path: Path):
    binary = script(tmp_path / "provider", "exit 1\n")
    chosen = choose_provider(tmp_path / "plugin", environ={PLUGIN_ENV: str(binary)})
    assert chosen.label.endswith("(its -version: none)")


def test_a_named_file_that_is_not_executable_is_refused(tmp_path: Path):
    (tmp_path / "provider").write_text("")
    with pytest.raises(EngineError) as refused:
        choose_provider(tmp_path / "plugin", environ={PLUGIN_ENV: str(tmp_path / "provider")})
    assert str(refused.value) == f"{PLUGIN_ENV}={tmp_path / 'provider'}: not an executable file"


def test_create_copies_the_program_and_installs_the_provider(
    project: PulumiProject, stand_in: Provider, tmp_path: Path
):
    assert sorted(p.name for p in project.directory.iterdir()) == sorted(PROGRAM_PARTS)
    assert (project.directory / "infra" / "__main__.py").is_file()
    assert not list(project.directory.rglob("__pycache__"))
    pulumi_yaml = yaml.safe_load((project.directory / "Pulumi.yaml").read_text())
    assert pulumi_yaml["main"] == "infra/"
    assert pulumi_yaml["runtime"]["options"]["virtualenv"] == sys.prefix
    log = calls(tmp_path)
    assert log.startswith(
        f"args: plugin install resource pagerduty 4.37.0 --file {stand_in.executable} "
        "--non-interactive --color never\n"
    )


def test_the_engine_sees_its_own_settings_and_no_ambient_ones(
    project: PulumiProject, tools: Path, tmp_path: Path
):
    log = calls(tmp_path)
    work = tmp_path / "work"
    for line in (
        f"PULUMI_HOME={work / 'pulumi-home'}",
        f"PULUMI_BACKEND_URL=file://{work / 'state'}",
        "PULUMI_SKIP_UPDATE_CHECK=true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
        "PULUMI_IGNORE_AMBIENT_PLUGINS=true",
        f"PATH={Path(sys.executable).parent}{os.pathsep}{tools}{os.pathsep}",
    ):
        assert line in log
    assert "PULUMI_ACCESS_TOKEN" not in log and "PAGERDUTY_TOKEN" not in log


def test_init_stack_sets_the_api_url_and_passes_the_token_on_standard_input(
    project: PulumiProject, tmp_path: Path
):
    project.init_stack("dev", "http://127.0.0.1:9/", "sandbox-token-0001",
                       stack_file=Path("stacks/example.yaml"))
    log = calls(tmp_path)
    assert "args: stack init dev --non-interactive" in log
    assert "args: config set pagerduty:apiUrlOverride http://127.0.0.1:9 --non" in log
    assert "args: config set --secret pagerduty:token --non-interactive --color never\n" \
           "stdin: sandbox-token-0001\n" in log
    assert f"args: config set stackFile {Path('stacks/example.yaml').resolve()} --non" in log
    assert log.count("sandbox-token-0001") == 1


def test_a_failed_command_is_an_engine_error_with_its_last_lines_keys_masked(
    project: PulumiProject,
):
    with pytest.raises(EngineError) as failed:
        project.run("fail", "now")
    assert str(failed.value) == (
        "`pulumi fail now` exited 4:\nerror: integration key ...2345 refused"
    )
    assert project.run("fail", check=False).returncode == 4


def test_a_command_that_does_not_finish_in_time_is_an_engine_error(project: PulumiProject):
    project.timeout = 1
    with pytest.raises(EngineError) as late:
        project.run("hang")
    assert str(late.value) == "`pulumi hang` did not finish in 1 s"


def test_a_failure_shows_only_the_last_lines_it_printed(project: PulumiProject):
    with pytest.raises(EngineError) as failed:
        project.run("chatty")
    lines = str(failed.value).splitlines()
    assert lines[0] == "`pulumi chatty` exited 1:"
    assert lines[1:] == [str(n) for n in range(17, 41)] + ["error: gave up"]


def test_export_and_outputs_parse_what_the_cli_prints(project: PulumiProject, tmp_path: Path):
    assert project.export() == {"version": 3, "deployment": {"resources": []}}
    assert project.outputs() == {"services": {}}
    log = calls(tmp_path)
    assert "args: stack export --non-interactive --color never\n" in log
    assert "args: stack output --json --show-secrets --non-interactive --color never\n" in log


def test_apica_pd_runs_in_the_project_on_its_pulumi(project: PulumiProject, tmp_path: Path):
    done = project.apica_pd("routes", "pull", "--stack", "dev", "--out", str(tmp_path / "r.json"))
    assert done.returncode == 1
    assert done.stderr == (
        "routes pull: stack 'dev' output 'bridge_routes': the stack has no output "
        "'bridge_routes' (its outputs: services); run `pulumi up` with this project's "
        "program first\n"
    )
    log = calls(tmp_path)
    assert "args: stack output --json --show-secrets --stack dev\n" in log
    assert f"PULUMI_HOME={tmp_path / 'work' / 'pulumi-home'}" in log.split("--stack dev")[-1]
    assert not (tmp_path / "r.json").exists()


def test_cli_version_is_unknown_when_pulumi_prints_nothing(tmp_path: Path):
    script(tmp_path / "pulumi", "exit 0\n")
    assert cli_version(tmp_path) == "unknown version"


def test_a_build_script_that_is_not_there_is_tools_not_built(tmp_path: Path):
    with pytest.raises(ToolsNotBuilt) as missing:
        built_tools(tmp_path / "build.sh")
    assert str(missing.value) == f"bash: {tmp_path / 'build.sh'}: No such file or directory"
