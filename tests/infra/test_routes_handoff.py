"""Key hand-off: `routes pull` against a stand-in `pulumi` on PATH, `routes install` from stdin."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from apica_pagerduty.cli import main
from infra.routes_handoff import HandoffError, extract_routes, routes_text

from .conftest import HOSTILE, raw_controls

KEY = "k" * 28 + "9f3a"
OTHER_KEY = "q" * 28 + "77b1"


def routes_doc() -> dict:
    return {
        "version": 1,
        "stack": "prod",
        "catch_all": None,
        "routes": {
            "checkout": {
                "service_name": "Checkout API",
                "service_id": "PABC123",
                "integration_name": "Apica-Checkout-API",
                "routing_key": KEY,
                "check_ids": [101],
            },
            "search": {
                "service_name": "Search",
                "service_id": "PDEF456",
                "integration_name": "Apica-Search",
                "routing_key": OTHER_KEY,
            },
        },
    }


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install a stand-in `pulumi` first on PATH; returns a function that sets its behaviour."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    log = tmp_path / "pulumi-args.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def behave(stdout: str = "", stderr: str = "", code: int = 0) -> Path:
        script.write_text(
            textwrap.dedent(
                f"""\
                #!{sys.executable}
                import json, os, sys
                json.dump({{"args": sys.argv[1:], "cwd": os.getcwd()}}, open({str(log)!r}, "w"))
                sys.stdout.write({stdout!r})
                sys.stderr.write({stderr!r})
                sys.exit({code})
                """
            )
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        return log

    return behave


def test_pull_writes_the_routes_file_0600_and_prints_keys_by_last_four(
    fake_pulumi, tmp_path, capsys
):
    log = fake_pulumi(stdout=json.dumps({"bridge_routes": routes_doc(), "other": 1}))
    out = tmp_path / "routes.json"

    code = main(["routes", "pull", "--stack", "prod", "--out", str(out)])

    printed = capsys.readouterr()
    assert code == 0
    assert json.loads(log.read_text())["args"] == [
        "stack",
        "output",
        "--json",
        "--show-secrets",
        "--stack",
        "prod",
    ]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["routes"]["checkout"]["routing_key"] == KEY
    assert printed.out.splitlines() == [
        f"wrote 2 route(s) for stack 'prod' to {out} (mode 0600)",
        "  checkout  Checkout API  key ...9f3a",
        "  search    Search  key ...77b1",
    ]
    assert KEY not in printed.out + printed.err


def test_pull_accepts_bridge_routes_exported_as_a_json_string(fake_pulumi, tmp_path):
    fake_pulumi(stdout=json.dumps({"bridge_routes": json.dumps(routes_doc())}))
    out = tmp_path / "routes.json"
    assert main(["routes", "pull", "--stack", "prod", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["stack"] == "prod"


def test_pull_runs_pulumi_in_the_given_directory(fake_pulumi, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    log = fake_pulumi(stdout=json.dumps({"bridge_routes": routes_doc()}))
    out = tmp_path / "routes.json"
    assert (
        main(["routes", "pull", "--stack", "prod", "--out", str(out), "--cwd", str(project)]) == 0
    )
    assert json.loads(log.read_text())["cwd"] == str(project)


def one_line_error(capsys) -> str:
    printed = capsys.readouterr()
    assert printed.out == ""
    assert "Traceback" not in printed.err
    assert len(printed.err.strip().splitlines()) == 1
    return printed.err.strip()


def test_pull_without_the_pulumi_cli_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["routes", "pull", "--stack", "prod", "--out", str(tmp_path / "r.json")]) == 1
    assert one_line_error(capsys).startswith(
        "routes pull: the Pulumi CLI (`pulumi`) is not on PATH"
    )


def test_pull_of_a_missing_stack_names_it(fake_pulumi, tmp_path, capsys):
    fake_pulumi(stderr="error: no stack named 'prod' found\n", code=255)
    assert main(["routes", "pull", "--stack", "prod", "--out", str(tmp_path / "r.json")]) == 1
    assert one_line_error(capsys) == (
        "routes pull: stack 'prod' does not exist (pulumi: no stack named it); "
        "check --stack and --cwd"
    )
    assert not (tmp_path / "r.json").exists()


def test_pull_passes_on_other_pulumi_errors_without_keys(fake_pulumi, tmp_path, capsys):
    fake_pulumi(stderr=f"warning: x\nerror: decrypting secret {KEY} failed\n", code=255)
    assert main(["routes", "pull", "--stack", "prod", "--out", str(tmp_path / "r.json")]) == 1
    message = one_line_error(capsys)
    assert message == (
        "routes pull: `pulumi stack output` failed for stack 'prod': "
        f"error: decrypting secret ...{KEY[-4:]} failed"
    )


def test_pull_when_the_output_is_absent_lists_the_outputs(fake_pulumi, tmp_path, capsys):
    fake_pulumi(stdout=json.dumps({"service_ids": {}, "url": "x"}))
    assert main(["routes", "pull", "--stack", "prod", "--out", str(tmp_path / "r.json")]) == 1
    assert one_line_error(capsys) == (
        "routes pull: stack 'prod' output 'bridge_routes': the stack has no output "
        "'bridge_routes' (its outputs: service_ids, url); run `pulumi up` with this "
        "project's program first"
    )


def test_pull_refuses_an_invalid_output_without_echoing_the_key(fake_pulumi, tmp_path, capsys):
    doc = routes_doc()
    doc["routes"]["checkout"]["routing_key"] = "too-short-" + KEY[:8]
    fake_pulumi(stdout=json.dumps({"bridge_routes": doc}))
    out = tmp_path / "r.json"
    out.write_text("previous")

    assert main(["routes", "pull", "--stack", "prod", "--out", str(out)]) == 1

    message = one_line_error(capsys)
    assert message.startswith("routes pull: stack 'prod' output 'bridge_routes': ")
    assert "routes.checkout.routing_key" in message
    assert KEY[:8] not in message
    assert out.read_text() == "previous"


def test_install_from_stdin(tmp_path, monkeypatch, capsys):
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps(routes_doc()).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    out = tmp_path / "routes.json"
    assert main(["routes", "install", "-", "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "key ...9f3a" in capsys.readouterr().out


def test_install_accepts_a_whole_stack_output_file(tmp_path, capsys):
    source = tmp_path / "outputs.json"
    source.write_text(json.dumps({"bridge_routes": routes_doc()}))
    out = tmp_path / "routes.json"
    assert main(["routes", "install", str(source), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["routes"]["search"]["routing_key"] == OTHER_KEY


def test_install_of_invalid_json_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"{nope")))
    assert main(["routes", "install", "-", "--out", str(tmp_path / "r.json")]) == 1
    assert one_line_error(capsys).startswith("routes install: standard input: not valid JSON")


def test_install_of_a_missing_file_is_one_line(tmp_path, capsys):
    assert main(["routes", "install", str(tmp_path / "nope.json")]) == 1
    assert one_line_error(capsys) == (
        f"routes install: cannot read {tmp_path / 'nope.json'}: no such file")


@pytest.mark.parametrize("source", ["/dev/zero", "fifo"])
def test_install_of_a_special_file_is_one_line_and_quick(tmp_path, capsys, source):
    if source == "fifo":
        source = str(tmp_path / "routes.fifo")
        os.mkfifo(source)
    assert main(["routes", "install", source, "--out", str(tmp_path / "r.json")]) == 1
    assert one_line_error(capsys) == (
        f"routes install: cannot read {source}: is not a regular file (a FIFO, socket or device?)")


def test_install_of_endless_stdin_stops_at_the_limit(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", open("/dev/zero"))  # noqa: SIM115
    assert main(["routes", "install", "-", "--out", str(tmp_path / "r.json")]) == 1
    assert one_line_error(capsys) == (
        "routes install: standard input is more than 32 MiB: not routes JSON")


def test_extract_routes_refuses_a_redacted_secret():
    with pytest.raises(HandoffError, match=r"printed '\[secret\]'"):
        extract_routes(json.dumps({"bridge_routes": "[secret]"}), "stack 'x'")


def test_routes_text_passes_a_routes_file_through():
    text = json.dumps(routes_doc())
    assert routes_text(text, "stdin") == text


@pytest.mark.parametrize("value", HOSTILE)
def test_install_summary_escapes_service_names(tmp_path, capsys, value):
    doc = routes_doc()
    doc["routes"]["checkout"]["service_name"] = value
    source = tmp_path / "routes-in.json"
    source.write_text(json.dumps(doc))
    assert main(["routes", "install", str(source), "--out", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert raw_controls(out) == []
    assert len(out.splitlines()) == 3  # the summary and one line per route


# -- writing over an existing routes file: previous keys (issue 9 item 2) --------------

NEW_KEY = "n" * 28 + "n3w2"


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """`routes install` of a routes document over `out`; returns (exit code, stdout, file)."""
    monkeypatch.delenv("PAGERDUTY_TOKEN", raising=False)
    out = tmp_path / "routes.json"

    def install(doc: dict, *flags: str) -> tuple[int, str, dict]:
        source = tmp_path / "in.json"
        source.write_text(json.dumps(doc))
        code = main(["routes", "install", str(source), "--out", str(out), *flags])
        return code, "", json.loads(out.read_text()) if out.exists() else {}

    return install, out


def _changed(doc: dict, key: str = NEW_KEY) -> dict:
    doc["routes"]["checkout"]["routing_key"] = key
    return doc


def test_install_over_a_file_keeps_a_changed_key_as_previous(installed, capsys):
    install, out = installed
    install(routes_doc())
    capsys.readouterr()
    code, _, written = install(_changed(routes_doc()))
    printed = capsys.readouterr().out
    assert code == 0
    assert written["version"] == 2
    assert written["routes"]["checkout"]["routing_key"] == NEW_KEY
    assert written["routes"]["checkout"]["previous_routing_keys"] == [
        {"routing_key": KEY, "integration_id": None}]
    assert "previous_routing_keys" not in written["routes"]["search"]
    assert printed.splitlines() == [
        f"wrote 2 route(s) for stack 'prod' to {out} (mode 0600)",
        "  checkout  Checkout API  key ...n3w2  previous ...9f3a",
        "  search    Search  key ...77b1",
        "note: route checkout: key changed from ...9f3a to ...n3w2; ...9f3a kept as a "
        "previous key, so resolves of incidents opened through it still reach it",
        "note: route checkout: previous keys ...9f3a kept, not verified (PAGERDUTY_TOKEN is "
        "not set); drop them with --forget-previous-keys once `apica-pd outbox` shows no "
        "incidents open on them",
    ]
    assert KEY not in printed and NEW_KEY not in printed


def test_install_with_forget_previous_keys_writes_none(installed, capsys):
    install, _ = installed
    install(routes_doc())
    install(_changed(routes_doc()))
    capsys.readouterr()
    code, _, written = install(_changed(routes_doc()), "--forget-previous-keys")
    assert (code, written["version"]) == (0, 1)
    assert "previous_routing_keys" not in written["routes"]["checkout"]
    assert capsys.readouterr().out.splitlines()[-1] == (
        "note: route checkout: previous keys ...9f3a forgotten")


def test_install_over_a_file_it_cannot_read_says_so_and_writes(installed, capsys):
    install, out = installed
    out.write_text('{"version": 9}')
    code, _, written = install(routes_doc())
    assert (code, written["routes"]["checkout"]["routing_key"]) == (0, KEY)
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"note: the existing {out} is not a routes file this release reads ({out}: version "
        "must be 1, 2 or 3 (got 9); regenerate it with this release's `apica-pd routes pull`): "
        "no previous keys carried from it")


def test_with_a_token_previous_keys_whose_integration_is_gone_are_dropped(
        installed, capsys, monkeypatch):
    """PAGERDUTY_TOKEN set (as in CI): the sandbox's REST API says which integrations of
    the service still exist."""
    from sandbox.server import PagerDutySandbox

    install, _ = installed
    with PagerDutySandbox(events_per_minute=None) as pd:
        service = pd.state.create_service(name="Checkout API")
        keys = [pd.state.add_integration(service["id"], name=f"Apica-{i}")
                for i in range(3)]
        doc = routes_doc()
        doc["routes"]["checkout"]["service_id"] = service["id"]
        for integration in keys[:2]:
            install(_changed(doc, integration["integration_key"]))
        # keys[0] is now a previous key of keys[1]; Pulumi replaces keys[1] by keys[2] and
        # deletes keys[0]'s integration.
        answer = httpx.delete(
            f"{pd.api_url}/services/{service['id']}/integrations/{keys[0]['id']}",
            headers={"Authorization": f"Token token={pd.token}"}, timeout=5)
        assert answer.status_code == 204
        monkeypatch.setenv("PAGERDUTY_TOKEN", pd.token)
        capsys.readouterr()
        code, _, written = install(_changed(doc, keys[2]["integration_key"]),
                                   "--api-url", pd.api_url)
    printed = capsys.readouterr().out
    assert code == 0
    assert [p["routing_key"] for p in written["routes"]["checkout"]["previous_routing_keys"]] \
        == [keys[1]["integration_key"]]
    gone = keys[0]["integration_key"][-4:]
    assert (f"note: route checkout: previous key ...{gone} dropped: its integration no longer "
            "exists in PagerDuty (resolve what was opened through it by hand)") in printed
    assert pd.token not in printed
