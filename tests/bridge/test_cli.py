"""The bridge's commands: `asm-setup`, `outbox`, `dead-letters list|redrive`, `unclaimed`,
`test-route`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.store.records import NewEvent
from bridge.store.sqlite import SqliteStore, outbox_path
from contract.routes_file import parse_routes
from tests.bridge.conftest import TOKEN, enqueue, make_alert, new_event, routes_document

KEY = "Q" * 28 + "wxyz"


@pytest.fixture(autouse=True)
def _no_bridge_env(monkeypatch):
    for name in ("APICA_PD_CONFIG", "APICA_PD_DATA_DIR", "APICA_PD_ROUTES_FILE",
                 "APICA_PD_EVENTS_URL", "APICA_PD_STORE_URL"):
        monkeypatch.delenv(name, raising=False)


def _fill(box) -> None:
    for route, dedup in [("web", "d1"), ("web", "d2"), ("api", "d3")]:
        enqueue(box, new_event(dedup=dedup), route=route)
    first, *_ = box.pending()
    box.reschedule(first.id, next_attempt_at=0, error="503 server_error: down")
    box.dead_letter(box.pending()[-1].id, routing_key=KEY, status=400,
                    reason="invalid_event", message="Event object is invalid")


@pytest.fixture
def data_dir(tmp_path):
    """A filled SQLite outbox (the hostile surroundings below are a file's)."""
    path = tmp_path / "data"
    with SqliteStore(outbox_path(path)) as box:
        _fill(box)
    return path


def configured(data_dir: Path):
    """The outbox the commands see (--data-dir, or APICA_PD_STORE_URL), opened."""
    from bridge.config import load_config
    from bridge.store.location import open_store

    return open_store(load_config(env=os.environ, overrides={"data_dir": data_dir}).store)


@pytest.fixture
def on_backend(stores, monkeypatch, tmp_path):
    """An empty outbox on each backend, as the commands find it: the --data-dir to give
    (for PostgreSQL, APICA_PD_STORE_URL is set, and --data-dir does not matter)."""
    for name, value in stores.env.items():
        monkeypatch.setenv(name, value)
    stores.open().close()
    return tmp_path / "data"


@pytest.fixture
def filled(on_backend):
    """`on_backend` with events pending, one failing, and a dead letter."""
    with configured(on_backend) as box:
        _fill(box)
    return on_backend


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_outbox_table(capsys, filled):
    code, out, _ = run(capsys, "outbox", "--data-dir", str(filled))
    assert code == 0
    assert out.startswith("pending 2, oldest ")
    assert "dead letters 1" in out
    (web,) = [line for line in out.splitlines() if line.startswith("web ")]
    assert web.split()[1] == "2"
    assert "503 server_error: down" in web


def test_outbox_json(capsys, filled):
    code, out, _ = run(capsys, "outbox", "--data-dir", str(filled), "--json")
    report = json.loads(out)
    assert code == 0
    assert (report["pending"], report["dead_letters"]) == (2, 1)
    (web,) = report["routes"]
    assert web["oldest_age_seconds"] >= 0
    del web["oldest_age_seconds"]
    assert web == {"route": "web", "pending": 2, "max_attempts": 1,
                   "last_error": "503 server_error: down"}


K_NEW = "N" * 28 + "n3w2"
K_OLD = "O" * 28 + "0ld1"
K_OLDER = "P" * 28 + "0ld0"
K_GONE = "G" * 28 + "g0n3"


@pytest.fixture
def keyed(tmp_path, on_backend):
    """A store with incidents open on a previous key and on a key no longer listed, and a
    routes file listing a current and two previous keys."""
    from contract.routes_file import RoutesFile, write_routes_file

    routes = write_routes_file(tmp_path / "routes.json", RoutesFile.model_validate({
        "version": 2, "stack": "t", "routes": {"web": {
            "service_name": "Web", "service_id": "PWEB", "integration_name": "Apica-Web",
            "routing_key": K_NEW, "previous_routing_keys": [
                {"routing_key": K_OLD}, {"routing_key": K_OLDER}]}}}))
    data = on_backend
    with configured(data) as box:
        for dedup, key in [("a", K_OLD), ("b", K_OLD), ("c", K_NEW), ("d", K_GONE)]:
            enqueue(box, new_event("trigger", dedup), check=f"id:{dedup}")
            box.mark_delivered(box.pending()[0].id, routing_key=key)
        box.record_route_problem("web", "integration_gone",
                                 f"incident d was opened through ...g0n3 ({K_GONE})")
    return routes, data


def test_outbox_shows_open_incidents_per_key_and_route_problems(capsys, keyed):
    routes, data = keyed
    code, out, _ = run(capsys, "outbox", "--data-dir", str(data), "--routes", str(routes))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == ("pending 0, oldest 0s, dead letters 0, unclaimed webhooks 0, "
                        "stale alerts 0")
    assert [" ".join(line.split()) for line in lines[1:6]] == [
        "ROUTE KEY ROLE OPEN INCIDENTS OPENED THROUGH IT",
        "web ...n3w2 current 1",
        "web ...0ld1 previous 2 keep until they close",
        "web ...0ld0 previous 0 safe to forget",
        "web ...g0n3 not listed 1 resolve them in PagerDuty by hand",
    ]
    assert lines[6].startswith("problem on route web: integration_gone x1, last ")
    assert lines[6].endswith("incident d was opened through ...g0n3 (...g0n3)")
    for key in (K_NEW, K_OLD, K_OLDER, K_GONE):
        assert key not in out


def test_outbox_json_keys_and_without_a_readable_routes_file(capsys, keyed, tmp_path):
    _, data = keyed
    code, out, err = run(capsys, "outbox", "--data-dir", str(data), "--json",
                         "--routes", str(tmp_path / "absent.json"))
    report = json.loads(out)
    assert (code, err) == (0, "")
    assert report["keys"] == [
        {"route": "web", "routing_key": key, "role": "unknown", "open_incidents": count}
        for key, count in [("...g0n3", 1), ("...n3w2", 1), ("...0ld1", 2)]]
    assert [(p["route"], p["reason"], p["count"]) for p in report["route_problems"]] == [
        ("web", "integration_gone", 1)]


def test_outbox_lists_alerts_held_by_maintenance_windows(capsys, tmp_path):
    from bridge.intake.pipeline import Intake
    from sandbox.clock import ManualClock

    doc = routes_document()
    doc["version"] = 3
    doc["routes"]["checkout"]["maintenance"] = [{
        "name": "deploy", "time_zone": "UTC",
        "once": {"start": "2026-12-05T21:00", "end": "2026-12-05T22:00"}}]
    routes = parse_routes(json.dumps(doc), "routes.json")
    data = tmp_path / "held"
    with SqliteStore(outbox_path(data), clock=lambda: 1_765_000_000.0) as box:
        Intake(box, asm_base_url="https://asm.example",
               clock=ManualClock(datetime(2026, 12, 5, 21, 30, tzinfo=UTC))).accept(
            "checkout", routes.routes["checkout"], make_alert(severity="F"))
    code, out, _ = run(capsys, "outbox", "--data-dir", str(data))
    assert code == 0
    assert out.splitlines()[-1] == (
        "held by maintenance window deploy: route checkout check id:101: trigger F, held "
        "since 2025-12-06T05:46:40+00:00 (sent when the window ends)")
    code, out, _ = run(capsys, "outbox", "--data-dir", str(data), "--json")
    assert json.loads(out)["held_alerts"] == [{
        "route": "checkout", "check": "id:101", "window": "deploy", "action": "trigger",
        "severity": "F", "held_since": "2025-12-06T05:46:40+00:00"}]


def test_outbox_missing_store_is_an_error_not_created(capsys, tmp_path):
    code, _, err = run(capsys, "outbox", "--data-dir", str(tmp_path / "nowhere"))
    assert code == 2
    assert "no outbox" in err
    assert not (tmp_path / "nowhere").exists()


def test_dead_letters_list_shows_message_and_last4_only(capsys, filled):
    code, out, _ = run(capsys, "dead-letters", "list", "--data-dir", str(filled))
    assert code == 0
    assert "Event object is invalid" in out
    assert "...wxyz" in out
    assert KEY not in out
    code, out, _ = run(capsys, "dead-letters", "list", "--data-dir", str(filled), "--json")
    (row,) = json.loads(out)
    assert (row["route"], row["status"], row["routing_key"]) == ("api", 400, "...wxyz")


def test_redrive_by_id_and_unknown_id(capsys, filled):
    with configured(filled) as box:
        (letter,) = box.dead_letters()
    code, out, err = run(capsys, "dead-letters", "redrive", str(letter.id), "999",
                         "--data-dir", str(filled))
    assert code == 1
    assert f"re-drove 1 dead letter(s): {letter.id}" in out
    assert "not found: 999" in err
    with configured(filled) as box:
        assert box.dead_letters() == []
        assert [e.dedup_key for e in box.pending()] == ["d1", "d2", "d3"]


def test_redrive_all(capsys, filled):
    code, out, _ = run(capsys, "dead-letters", "redrive", "--all", "--data-dir", str(filled))
    assert code == 0
    assert "re-drove 1" in out


def test_redrive_needs_ids_or_all(capsys, filled):
    code, _, err = run(capsys, "dead-letters", "redrive", "--data-dir", str(filled))
    assert code == 2
    assert "IDs or --all" in err


def test_test_route_triggers_and_resolves(capsys, pd, pd_routes_file):
    path, key, service = pd_routes_file
    code, out, _ = run(capsys, "test-route", "web", "--routes", str(path),
                       "--events-url", pd.events_url)
    assert code == 0
    assert key not in out
    assert f"...{key[-4:]}" in out
    lines = out.splitlines()
    assert lines[1].startswith("trigger ") and "delivered (202" in lines[1]
    assert lines[2].startswith("resolve ") and "delivered (202" in lines[2]
    (incident,) = pd.state.incidents(service_id=service["id"])
    assert (incident["status"], incident["urgency"]) == ("resolved", "low")


def test_test_route_reports_refusal(capsys, pd, pd_routes_file):
    path, _, _ = pd_routes_file
    pd.faults.fail(status=403, count=1, body={"status": "error", "message": "Forbidden"})
    code, out, _ = run(capsys, "test-route", "web", "--routes", str(path),
                       "--events-url", pd.events_url)
    assert code == 1
    assert "FAILED (403 forbidden: Forbidden)" in out
    assert "resolve" not in out


def test_test_route_unknown_route(capsys, pd, pd_routes_file):
    path, _, _ = pd_routes_file
    code, _, err = run(capsys, "test-route", "nope", "--routes", str(path),
                       "--events-url", pd.events_url)
    assert code == 2
    assert "no route 'nope'" in err and "routes: web" in err


def test_redrive_while_the_bridge_runs_is_delivered(capsys, on_backend, pd, pd_routes_file):
    """The CLI is another connection (another process in real life); the worker polls."""
    from bridge.delivery.sender import Sender
    from bridge.delivery.worker import Worker
    from contract.routes_file import load_routes_file

    routes_path, _, _ = pd_routes_file
    routes = load_routes_file(routes_path)
    data = on_backend
    body = {"event_action": "trigger", "dedup_key": "redrive-me",
            "payload": {"summary": "s", "source": "x", "severity": "info"}}
    with configured(data) as box:
        enqueue(box, NewEvent("trigger", "redrive-me", body), check="id:9")
        pd.faults.fail(status=400, count=1)
        sender = Sender(pd.events_url)
        worker = Worker(box, sender, lambda: routes, idle_poll=0.05)
        worker.start()
        try:
            deadline = time.monotonic() + 10
            while not box.dead_letters() and time.monotonic() < deadline:
                time.sleep(0.01)
            code, out, _ = run(capsys, "dead-letters", "redrive", "--all",
                               "--data-dir", str(data))
            assert (code, out.strip()) == (0, "re-drove 1 dead letter(s): 1")
            while box.pending() and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            worker.stop(timeout=5)
            sender.close()
    assert [e["status"] for e in pd.state.events()] == [400, 202]


def test_unclaimed_lists_refused_webhooks(capsys, filled):
    with configured(filled) as box:
        box.record_unclaimed(check_id=999, check_guid=None, check_name="Login EU",
                             severity="F", action="trigger",
                             body=b'{"check_id": "999",\n "severity": "F"}')
    code, out, _ = run(capsys, "unclaimed", "--data-dir", str(filled))
    assert code == 0
    first, second = out.splitlines()
    assert first.startswith("#1 ") and first.endswith(
        "check_id=999 guid=- name='Login EU' trigger F")
    assert second == '    body (37 bytes): {"check_id": "999", "severity": "F"}'
    code, out, _ = run(capsys, "unclaimed", "--data-dir", str(filled), "--json")
    [row] = json.loads(out)
    assert (row["check_id"], row["check_name"], row["body_bytes"]) == (999, "Login EU", 37)
    code, out, _ = run(capsys, "outbox", "--data-dir", str(filled))
    assert "unclaimed webhooks 1" in out.splitlines()[0]


def test_asm_setup_command_prints_targets(routes_file, monkeypatch, capsys):
    for name in [n for n in os.environ if n.startswith("APICA_PD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("APICA_PD_TOKENS", TOKEN)
    assert main(["asm-setup", "--routes", str(routes_file),
                 "--public-url", "https://bridge.example.com", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    urls = [t["trigger"]["url"] for t in data["targets"]]
    assert urls == [f"https://bridge.example.com/v1/asm/{n}"
                    for n in ("checkout", "search", "fallback")]
    assert TOKEN not in json.dumps(data)

    assert capsys.readouterr().err == ""  # a public URL: nothing to warn about

    assert main(["asm-setup", "--routes", str(routes_file), "--reveal"]) == 0
    out, err = capsys.readouterr()
    assert f"  X-Apica-Token: {TOKEN}\n" in out
    assert "URL:          http://127.0.0.1:8080/v1/asm/checkout" in out
    # Without --public-url the URLs are the listen address: said in the output and on stderr.
    warning = ("WARNING: no --public-url (or APICA_PD_PUBLIC_URL): the URLs below are the "
               "bridge's listen address http://127.0.0.1:8080, which ASM cannot reach. Give "
               "the https:// URL ASM reaches (the proxy in front of the bridge).")
    assert out.startswith(warning + "\n\n== Route checkout")
    assert err == f"apica-pd asm-setup: {warning}\n"


def test_asm_setup_reports_a_bad_routes_file(tmp_path, capsys):
    assert main(["asm-setup", "--routes", str(tmp_path / "none.json")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_serve_refuses_a_non_finite_reload_interval_at_start(tmp_path, monkeypatch, capsys):
    """`inf` killed the routes watcher (OverflowError) and `nan` busy-polled."""
    monkeypatch.setenv("APICA_PD_RELOAD_INTERVAL", "inf")
    code, _, err = run(capsys, "serve", "--data-dir", str(tmp_path))
    assert code == 2
    assert err == "apica-pd serve: APICA_PD_RELOAD_INTERVAL: 'inf' is not a finite number\n"


@pytest.mark.parametrize(("argv", "none"), [(["dead-letters", "list"], "no dead letters\n"),
                                            (["unclaimed"], "no unclaimed webhooks\n")])
def test_empty_listings_say_so_and_their_json_is_an_empty_list(capsys, on_backend, argv,
                                                                none):
    assert run(capsys, *argv, "--data-dir", str(on_backend)) == (0, none, "")
    code, out, _ = run(capsys, *argv, "--data-dir", str(on_backend), "--json")
    assert (code, json.loads(out)) == (0, [])


def test_a_store_of_a_newer_bridge_is_one_line_not_a_traceback(capsys, tmp_path):
    import sqlite3

    path = outbox_path(tmp_path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    code, out, err = run(capsys, "outbox", "--data-dir", str(tmp_path))
    assert (code, out) == (2, "")
    assert err == (f"apica-pd outbox: {path}: the outbox has schema version 99, and this "
                   "bridge knows up to 5; run the bridge that wrote it (or a newer one)\n")


# -- hostile surroundings: a full disk, no write access, a reader that goes away -------

ROOT = Path(__file__).resolve().parents[2]
READ_ONLY_COMMANDS = [["outbox"], ["outbox", "--json"], ["dead-letters", "list"],
                      ["dead-letters", "list", "--json"], ["unclaimed"], ["unclaimed", "--json"]]
# Root ignores file modes; without these capabilities it is held to them like anyone.
AS_ROOT_HELD_TO_MODES = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def _no_more_bytes() -> None:
    """In the child: no file may grow (RLIMIT_FSIZE 0), as on a full disk."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def bridge_command(*argv: str, prefix: Sequence[str] = (), **popen) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APICA_PD_")}
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.run([*prefix, sys.executable, "-m", "bridge", *argv], cwd=ROOT,
                          env={**env, "PYTHONPATH": str(ROOT)}, text=True, timeout=60, **popen)


@pytest.fixture
def without_write_access(data_dir):
    """`data_dir` and its outbox made read-only; the prefix that runs a command held to it."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        raise RuntimeError("as root this test needs setpriv (util-linux) to drop "
                           "CAP_DAC_OVERRIDE")
    for leftover in data_dir.glob("outbox.sqlite3-*"):
        leftover.unlink()
    (data_dir / "outbox.sqlite3").chmod(0o400)
    data_dir.chmod(0o500)
    yield AS_ROOT_HELD_TO_MODES if os.geteuid() == 0 else []
    data_dir.chmod(0o700)


@pytest.mark.parametrize("argv", READ_ONLY_COMMANDS, ids=" ".join)
def test_looking_works_on_a_full_disk(data_dir, argv):
    """Opening the store wrote to it (WAL mode, schema): `disk I/O error`, a traceback."""
    done = bridge_command(*argv, "--data-dir", str(data_dir), preexec_fn=_no_more_bytes)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout


@pytest.mark.parametrize("argv", READ_ONLY_COMMANDS, ids=" ".join)
def test_looking_works_without_write_access(data_dir, without_write_access, argv):
    done = bridge_command(*argv, "--data-dir", str(data_dir), prefix=without_write_access)
    assert (done.returncode, done.stderr) == (0, "")
    assert sorted(p.name for p in data_dir.iterdir()) == ["outbox.sqlite3"]


def test_changing_on_a_full_disk_is_one_line(data_dir):
    done = bridge_command("dead-letters", "redrive", "--all", "--data-dir", str(data_dir),
                          preexec_fn=_no_more_bytes)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"apica-pd dead-letters: cannot change the outbox at "
                           f"{data_dir / 'outbox.sqlite3'}: disk I/O error\n")


def test_changing_without_write_access_is_one_line(data_dir, without_write_access):
    done = bridge_command("dead-letters", "redrive", "--all", "--data-dir", str(data_dir),
                          prefix=without_write_access)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"apica-pd dead-letters: cannot change the outbox at "
                           f"{data_dir / 'outbox.sqlite3'}: Permission denied\n")


@pytest.mark.parametrize("argv", READ_ONLY_COMMANDS, ids=" ".join)
def test_output_into_a_closed_pipe_ends_quietly_with_141(data_dir, argv):
    """`apica-pd outbox | head -0`: BrokenPipeError was a traceback (or exit 120)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    try:
        done = bridge_command(*argv, "--data-dir", str(data_dir), stdout=write_end)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")


def test_looking_neither_creates_nor_migrates(capsys, tmp_path):
    import sqlite3

    from bridge.store.sqlite_schema import schema_version

    path = outbox_path(tmp_path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=2")
    db.close()
    code, out, err = run(capsys, "outbox", "--data-dir", str(tmp_path))
    assert (code, out) == (2, "")
    assert err == (f"apica-pd outbox: {path}: the outbox has schema version 2, and this bridge "
                   "reads version 5; start the bridge once (or run `apica-pd store migrate`) "
                   "to upgrade it\n")
    with sqlite3.connect(path) as db:
        assert schema_version(db) == 2


# -- apica-pd store migrate, on each backend ---------------------------------------------


def test_store_migrate_creates_then_finds_the_schema_current(capsys, stores, monkeypatch,
                                                             tmp_path):
    from bridge.store.postgres_schema import SCHEMA_VERSION as PG_VERSION
    from bridge.store.sqlite_schema import SCHEMA_VERSION as SQLITE_VERSION

    for name, value in stores.env.items():
        monkeypatch.setenv(name, value)
    version = PG_VERSION if stores.backend == "postgresql" else SQLITE_VERSION
    where = stores.location.shown
    args = ("store", "migrate", "--data-dir", str(tmp_path / "data"))
    assert run(capsys, *args) == (
        0, f"outbox {where}: schema version {version} (upgraded from 0)\n", "")
    assert run(capsys, *args) == (
        0, f"outbox {where}: schema version {version} (already current)\n", "")
    code, out, _ = run(capsys, "outbox", "--data-dir", str(tmp_path / "data"))
    assert (code, out.splitlines()[0]) == (0, "pending 0, oldest 0s, dead letters 0, "
                                              "unclaimed webhooks 0, stale alerts 0")


def test_a_store_url_that_cannot_be_reached_is_one_line_without_its_password(
        capsys, monkeypatch, postgres):
    monkeypatch.setenv("APICA_PD_STORE_URL", postgres.url(password="not-the-password-9"))
    code, out, err = run(capsys, "outbox")
    assert (code, out) == (2, "")
    assert err.startswith(
        f"apica-pd outbox: postgresql://bridge:***@127.0.0.1:{postgres.port}/apica: ")
    assert "password authentication failed" in err
    assert "not-the-password-9" not in err and err.count("\n") == 1
