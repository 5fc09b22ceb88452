"""`apica-pd sandbox serve|incidents` as users run them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import requests

from apica_pagerduty.cli import main
from tests.sandbox.conftest import trigger


@pytest.fixture
def served(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"users": [{"email": "ann@example.com", "name": "Ann"}]}))
    command = ["sandbox", "serve", "--token", "cli-token-1234", "--seed", str(seed)]
    process = subprocess.Popen(
        [sys.executable, "-m", "apica_pagerduty", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_serve_prints_its_url_first_and_stops_on_sigterm(served):
    url = served.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:")
    token_line = served.stdout.readline()
    assert token_line == "REST API token ...1234 (from --token)\n"
    assert "cli-token-1234" not in token_line
    auth = {"Authorization": "Token token=cli-token-1234"}
    users = requests.get(url + "/users", headers=auth, timeout=5)
    assert [u["email"] for u in users.json()["users"]] == ["ann@example.com"]
    served.send_signal(signal.SIGTERM)
    assert served.wait(timeout=10) == 0


def test_incidents_prints_a_table_or_json(pd, key, capsys):
    requests.post(pd.events_url, json=trigger(key), timeout=5)
    assert main(["sandbox", "incidents", "--url", pd.url]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[1].split()[:4] == ["1", "Checkout", "API", "high"]
    assert main(["sandbox", "incidents", "--url", pd.url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["incident_key"] == "check-101"


def test_incidents_from_an_unreachable_sandbox_is_one_line(capsys):
    assert main(["sandbox", "incidents", "--url", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sandbox: cannot read incidents from http://127.0.0.1:9:")
    assert len(err.strip().splitlines()) == 1


def test_serve_with_a_bad_seed_file_exits_1(tmp_path, capsys):
    seed = tmp_path / "seed.json"
    seed.write_text('{"robots": []}')
    assert main(["sandbox", "serve", "--seed", str(seed)]) == 1
    assert capsys.readouterr().err.startswith(f"sandbox: cannot seed from {seed}: unknown kinds")


def test_serve_asm_prints_its_url_first_and_serves_the_seed(tmp_path):
    seed = tmp_path / "asm-seed.json"
    seed.write_text(json.dumps({"checks": [{"name": "Login", "id": 101,
                                            "result": {"severity": "E"}}]}))
    ticket = "11111111-2222-3333-4444-555566667777"
    process = subprocess.Popen(
        [sys.executable, "-m", "apica_pagerduty", "sandbox", "serve-asm",
         "--auth-ticket", ticket, "--seed", str(seed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert process.stdout.readline() == f"ASM API: {url}/v3\n"
        assert process.stdout.readline() == "auth_ticket ...7777 (from --auth-ticket)\n"
        checks = requests.get(url + "/v3/checks", params={"auth_ticket": ticket}, timeout=5)
        assert [(c["id"], c["severity"]) for c in checks.json()] == [(101, "E")]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_serve_asm_with_a_bad_seed_file_exits_1(tmp_path, capsys):
    seed = tmp_path / "asm-seed.json"
    seed.write_text('{"checks": [{"id": 1}]}')
    assert main(["sandbox", "serve-asm", "--seed", str(seed)]) == 1
    assert capsys.readouterr().err == (
        f"sandbox: cannot seed from {seed}: every check needs a name\n")
