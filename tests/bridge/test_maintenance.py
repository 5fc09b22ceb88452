"""Maintenance windows on the bridge: which alerts are held, and the catch-up at the end.

The intake holds, the real store keeps, `CatchUp` sends; time is a `ManualClock`. At the
end, the real `python -m bridge` is stopped during a window and started after it: the
held alert pages.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.intake.pipeline import Intake
from bridge.maintenance import CatchUp, alert_of, covering, covers, held_record
from bridge.store.sqlite import SqliteStore, outbox_path
from contract.routes_file import MaintenanceWindow, RoutesFile, parse_routes
from sandbox.clock import ManualClock
from sandbox.server import PagerDutySandbox
from tests.bridge.conftest import make_alert, routes_document
from tests.bridge.test_serve import BridgeProcess, post, wait_until

# Saturday 5 December 2026; the window is 22:00-23:00 in Berlin (21:00-22:00 UTC).
BEFORE = datetime(2026, 12, 5, 20, 30, tzinfo=UTC)
DURING = datetime(2026, 12, 5, 21, 30, tzinfo=UTC)
AFTER = datetime(2026, 12, 5, 22, 0, 1, tzinfo=UTC)
DEPLOY = {"name": "deploy", "time_zone": "Europe/Berlin",
          "once": {"start": "2026-12-05T22:00", "end": "2026-12-05T23:00"}}


def windowed(*windows: dict, route: str = "checkout") -> RoutesFile:
    doc = routes_document()
    doc["version"] = 3
    doc["routes"][route]["maintenance"] = list(windows)
    return parse_routes(json.dumps(doc), "routes.json")


def window(**fields: object) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate({**DEPLOY, **fields})


# -- which alerts a window covers --------------------------------------------------------


@pytest.mark.parametrize(
    ("checks", "alert", "covered"),
    [
        (None, {}, True),  # every check of the route
        ({"ids": [101]}, {}, True),
        ({"ids": [102]}, {}, False),
        ({"guids": ["6F9619FF-8B86-D011-B42D-00C04FC964FF"]}, {"check_id": None}, True),
        ({"tags": ["tier : 1"]}, {}, True),  # as routes match tags: trimmed, any case
        ({"tags": ["Tier: 2", "Env"]}, {}, False),
        ({"tags": ["Tier"]}, {"tags": {}}, False),
    ],
)
def test_a_window_covers_its_checks_as_routes_match_them(checks, alert, covered):
    assert covers(window(checks=checks), make_alert(**alert)) is covered


def test_covering_finds_the_first_open_window_that_covers_the_check():
    other = {**DEPLOY, "name": "basket", "checks": {"ids": [102]}}
    weekly = {"name": "nightly", "time_zone": "UTC",
              "weekly": {"days": ["sat"], "start": "21:15", "end": "21:45"}}
    route = windowed(other, DEPLOY, weekly).routes["checkout"]
    found = covering(route, make_alert(), DURING)
    assert found is not None and found[0].name == "deploy"
    assert (found[1].start, found[1].end) == (DURING - timedelta(minutes=30),
                                              DURING + timedelta(minutes=30))
    assert covering(route, make_alert(), BEFORE) is None
    assert covering(route, make_alert(), AFTER) is None


def test_the_held_record_gives_back_the_alert_and_its_marks():
    alert = make_alert(groups=("Shop",), tags={"Team": ("Checkout", "Web")})
    record = held_record(alert, {"reconciled": True})
    assert json.loads(json.dumps(record)) == record  # JSON data, as the store keeps it
    assert alert_of(record) == (alert, {"reconciled": True})


# -- holding and catching up, with the real store ------------------------------------------


@pytest.fixture
def now() -> ManualClock:
    return ManualClock(DURING)


@pytest.fixture
def routes_in_force() -> list[RoutesFile]:
    return [windowed(DEPLOY)]


@pytest.fixture
def intake(outbox, metrics, now) -> Intake:
    return Intake(outbox, asm_base_url="https://asm.example", metrics=metrics, clock=now)


@pytest.fixture
def catch_up(outbox, intake, metrics, now, routes_in_force) -> CatchUp:
    return CatchUp(outbox, lambda: routes_in_force[0], intake.accept, metrics=metrics,
                   clock=now)


def send(intake: Intake, routes: RoutesFile, **fields: object):
    return intake.accept("checkout", routes.routes["checkout"], make_alert(**fields))


def events(outbox) -> list[tuple[str, str, dict]]:
    return [(e.action, e.dedup_key.rsplit(":", 1)[1],
             e.body.get("payload", {}).get("custom_details", {})) for e in outbox.pending()]


def test_during_a_window_alerts_are_held_and_the_end_pages_the_check_still_failing(
        outbox, intake, catch_up, now, routes_in_force, metrics):
    routes = routes_in_force[0]
    held = send(intake, routes, severity="F", timestamp="2026-12-05T21:30:00Z")
    assert (held.event_count, held.duplicate, held.stale) == (0, False, False)
    assert outbox.pending() == [] and outbox.open_keys("checkout", "id:101") == frozenset()
    assert catch_up.run_once() == 0  # still in the window
    now.set(AFTER)
    assert catch_up.run_once() == 1
    [(action, urgency, details)] = events(outbox)
    assert (action, urgency, details["new_severity"]) == ("trigger", "high", "F")
    assert details["maintenance"] == {"window": "deploy",
                                      "held_since": "2023-11-14T22:13:20+00:00"}
    assert outbox.held_alerts() == [] and outbox.open_keys("checkout", "id:101") == {"high"}
    assert metrics.held.labels("checkout")._value.get() == 1
    assert metrics.caught_up.labels("checkout", "trigger")._value.get() == 1
    assert catch_up.run_once() == 0


def test_a_check_that_recovered_in_the_window_is_resolved_at_its_end(
        outbox, intake, catch_up, now, routes_in_force):
    routes = routes_in_force[0]
    now.set(BEFORE)
    send(intake, routes, severity="E", timestamp="2026-12-05T20:30:00Z")  # paged before
    now.set(DURING)
    send(intake, routes, severity="F", timestamp="2026-12-05T21:10:00Z")
    send(intake, routes, action="resolve", severity="I", timestamp="2026-12-05T21:20:00Z")
    assert [e[0] for e in events(outbox)] == ["trigger"]
    now.set(AFTER)
    catch_up.run_once()
    # Only the latest alert counts: the check is back to normal, the incident closes.
    assert [(a, u) for a, u, _ in events(outbox)] == [("trigger", "high"), ("resolve", "high")]
    assert outbox.open_keys("checkout", "id:101") == frozenset()


def test_a_newer_webhook_after_the_window_wins_over_the_held_alert(
        outbox, intake, catch_up, now, routes_in_force):
    routes = routes_in_force[0]
    send(intake, routes, severity="F", timestamp="2026-12-05T21:30:00Z")
    now.set(AFTER)
    # The recovery's webhook comes before the catch-up has looked.
    send(intake, routes, action="resolve", severity="I", timestamp="2026-12-05T22:00:01Z")
    catch_up.run_once()
    assert [(a, u) for a, u, _ in events(outbox)] == [("resolve", "high"), ("resolve", "low")]
    assert outbox.held_alerts() == []
    assert [s.alert_at for s in outbox.stale_alerts()] == ["2026-12-05T21:30:00Z"]


def test_a_window_taken_out_of_the_routes_file_releases_its_alerts_at_once(
        outbox, intake, catch_up, routes_in_force):
    send(intake, routes_in_force[0], severity="W")
    routes_in_force[0] = windowed()
    assert catch_up.run_once() == 1
    assert [(a, u) for a, u, _ in events(outbox)] == [("trigger", "low")]


def test_a_held_alert_of_a_route_that_is_gone_is_dropped_and_said(
        outbox, intake, catch_up, routes_in_force, caplog):
    send(intake, routes_in_force[0], severity="F")
    doc = routes_document()
    del doc["routes"]["checkout"]
    routes_in_force[0] = parse_routes(json.dumps(doc), "routes.json")
    with caplog.at_level(logging.ERROR, logger="bridge.maintenance"):
        assert catch_up.run_once() == 0
    assert outbox.held_alerts() == [] and outbox.pending() == []
    assert "held alert dropped: route checkout is no longer in the routes file" in caplog.text


def test_a_restart_during_the_window_loses_nothing(tmp_path, now, metrics):
    path = outbox_path(tmp_path / "data")
    routes = windowed(DEPLOY)
    with SqliteStore(path) as box:
        Intake(box, asm_base_url="https://asm.example", clock=now).accept(
            "checkout", routes.routes["checkout"], make_alert(severity="E"))
    now.set(AFTER)
    with SqliteStore(path) as box:  # the bridge started again
        intake = Intake(box, asm_base_url="https://asm.example", clock=now)
        catch_up = CatchUp(box, lambda: routes, intake.accept, clock=now)
        assert catch_up.run_once() == 1
        assert [(e.action, e.dedup_key) for e in box.pending()] == [
            ("trigger", "apica-asm:checkout:id:101:high")]
        # Done once: a second look after another restart sends nothing more.
        assert catch_up.run_once() == 0


def test_a_catch_up_repeated_after_a_crash_is_a_replay_not_a_second_page(
        outbox, intake, now, routes_in_force):
    send(intake, routes_in_force[0], severity="F")
    now.set(AFTER)

    class CrashBeforeDrop:
        """The store as a crash between the catch-up's events and its drop leaves it."""

        def held_alerts(self):
            return outbox.held_alerts()

        def drop_held(self, *args):
            return False

    CatchUp(CrashBeforeDrop(), lambda: routes_in_force[0], intake.accept, clock=now).run_once()
    CatchUp(outbox, lambda: routes_in_force[0], intake.accept, clock=now).run_once()
    assert len(outbox.pending()) == 1 and outbox.held_alerts() == []


def test_windows_opening_and_closing_are_logged_once(catch_up, now, caplog):
    with caplog.at_level(logging.INFO, logger="bridge.maintenance"):
        catch_up.run_once()
        catch_up.run_once()
        now.set(AFTER)
        catch_up.run_once()
    assert [r.getMessage() for r in caplog.records] == [
        "maintenance window deploy of route checkout open until 2026-12-05T22:00:00+00:00",
        "maintenance window deploy of route checkout closed"]


def test_an_alert_pagerduty_would_refuse_is_refused_even_in_a_window(outbox, intake, now):
    from pydantic import SecretStr

    from bridge.errors import InvalidEvent
    from contract.routes_file import Route

    routes = windowed(DEPLOY)
    broken = Route.model_construct(**{**dict(routes.routes["checkout"]),
                                      "routing_key": SecretStr("short")})
    with pytest.raises(InvalidEvent):
        intake.accept("checkout", broken, make_alert())
    assert outbox.held_alerts() == []


# -- the real bridge, stopped during a window and started after it -------------------------


@pytest.mark.slow
def test_a_bridge_restarted_after_the_window_pages_what_it_held(tmp_path: Path,
                                                                pd: PagerDutySandbox):
    service = pd.state.create_service(name=f"Checkout {len(pd.state.services())}",
                                      urgency="severity_based")
    key = pd.state.add_integration(service["id"], name="Apica-Checkout")["integration_key"]
    start = datetime.now(UTC).replace(microsecond=0)
    end = start + timedelta(seconds=6)
    doc = routes_document(catch_all=None)
    doc["version"] = 3
    doc["routes"] = {"checkout": {
        **doc["routes"]["checkout"], "routing_key": key,
        "maintenance": [{"name": "deploy", "time_zone": "UTC",
                         "once": {"start": (start - timedelta(minutes=1)).strftime(
                             "%Y-%m-%dT%H:%M:%S"), "end": end.strftime("%Y-%m-%dT%H:%M:%S")},
                         "checks": {"ids": [101]}}]}}
    routes_file = tmp_path / "routes.json"
    routes_file.write_text(json.dumps(doc))
    data = tmp_path / "data"
    bridge = BridgeProcess(routes_file, data, pd.events_url)
    try:
        url = bridge.wait_for("listening")["url"]
        bridge.wait_for("maintenance_window_open")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        assert post(url, {"S": "F", "CHECK_ID": "101", "UTC-T": stamp}).status_code == 202
        # Check 102 is not in the window: it pages at once.
        assert post(url, {"S": "E", "CHECK_ID": "102", "UTC-T": stamp}).status_code == 202
        wait_until(lambda: len(pd.state.incidents(service["id"])) == 1, what="102 paged")
    finally:
        assert bridge.stop() == 0
    with SqliteStore(outbox_path(data), read_only=True) as box:
        assert [h.check_key for h in box.held_alerts()] == ["id:101"]
    while datetime.now(UTC) < end:
        time.sleep(0.1)

    back = BridgeProcess(routes_file, data, pd.events_url)
    try:
        back.wait_for("listening")
        caught = back.wait_for("maintenance_caught_up")
        assert (caught["check"], caught["action"], caught["events"]) == ("id:101", "trigger", 1)
        wait_until(lambda: len(pd.state.incidents(service["id"])) == 2, what="101 paged")
        held = pd.state.incidents(service["id"])[-1]["alerts"][0]["custom_details"]
        assert (held["check_id"], held["maintenance"]["window"]) == (101, "deploy")
    finally:
        assert back.stop() == 0
