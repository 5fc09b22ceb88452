"""A routing-key change with events waiting (issue 9 item 2), end to end.

The real store, worker, routes table and routes files against the PagerDuty sandbox: a
route with key K_old, PagerDuty failing so events wait, the routes file switched to
K_new (a second integration on the same service), with K_old kept as a previous key or
deleted (what a Pulumi replace does). Each story says where every event went, which
incidents were left open and what was kept for a person.
"""

from __future__ import annotations

import time

import httpx
import pytest

from bridge.delivery.pacing import Pacing
from bridge.delivery.retry import Backoff
from bridge.delivery.sender import Sender
from bridge.delivery.worker import Worker
from bridge.intake.accept import accept_alert
from bridge.route_table import RouteTable
from contract.routes_file import RoutesFile, write_routes_file
from tests.bridge.conftest import plain_alert

CHECKS = {"A": 1, "B": 2, "C": 3, "D": 4, "X": 5}
NAMES = {number: name for name, number in CHECKS.items()}

# Steps: ("alert", check, ASM severity), "drain" (wait until nothing is pending), "fail"
# (PagerDuty answers 500), "up", ("switch", keep K_old as a previous key?), "delete"
# (K_old's integration deleted through PagerDuty's REST API).
STORIES = {
    "K_old kept as a previous key": (
        [("alert", "A", "F"), ("alert", "X", "F"), "drain", "fail",
         ("alert", "B", "F"), ("alert", "C", "F"),
         ("switch", True),
         ("alert", "C", "I"), ("alert", "A", "I"), ("alert", "D", "F"),
         "up", "drain"],
        # Delivered (202), in order: (action, check, key).
        [("trigger", "A", "K_old"), ("trigger", "X", "K_old"),
         ("trigger", "B", "K_new"),  # queued before the switch: a new incident, current key
         ("trigger", "C", "K_new"),
         ("resolve", "C", "K_new"),  # behind its trigger, to the key that opened it
         ("resolve", "A", "K_old"),  # opened through K_old: closed through K_old
         ("trigger", "D", "K_new")],
        # Incidents afterwards: check -> (status, opened through).
        {"A": ("resolved", "K_old"), "X": ("triggered", "K_old"), "B": ("triggered", "K_new"),
         "C": ("resolved", "K_new"), "D": ("triggered", "K_new")},
        [],  # dead letters: (reason, action, check)
    ),
    "K_old deleted and no longer listed": (
        [("alert", "X", "F"), "drain", "fail",
         ("alert", "B", "F"),
         ("switch", False), "delete",
         ("alert", "X", "I"), ("alert", "D", "F"),
         "up", "drain"],
        [("trigger", "X", "K_old"),
         ("trigger", "B", "K_new"),  # queued on K_old, still pages: through K_new
         ("trigger", "D", "K_new")],
        {"X": ("triggered", "K_old"), "B": ("triggered", "K_new"), "D": ("triggered", "K_new")},
        [("integration_gone", "resolve", "X")],  # X cannot be closed: for a person
    ),
}


def _wait(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.mark.parametrize("story", list(STORIES))
def test_a_key_change_with_events_waiting(tmp_path, pd, metrics, story, stores):
    steps, delivered, incidents, dead = STORIES[story]
    service = pd.state.create_service(name=f"Web {story}", urgency="severity_based")
    old = pd.state.add_integration(service["id"], name="Apica-Web")
    new = pd.state.add_integration(service["id"], name="Apica-Web-2")
    names = {old["integration_key"]: "K_old", new["integration_key"]: "K_new"}
    via = {old["id"]: "K_old", new["id"]: "K_new"}

    def routes_file(key: str, previous: list[str]) -> None:
        write_routes_file(tmp_path / "routes.json", RoutesFile.model_validate({
            "version": 2 if previous else 1, "stack": "test", "routes": {"web": {
                "service_name": service["name"], "service_id": service["id"],
                "integration_name": "Apica-Web", "routing_key": key,
                **({"previous_routing_keys": [{"routing_key": k} for k in previous]}
                   if previous else {})}}}))

    routes_file(old["integration_key"], [])
    table = RouteTable(tmp_path / "routes.json", metrics)
    table.load()
    box = stores.open()
    sender = Sender(pd.events_url, timeout=2.0)
    worker = Worker(box, sender, lambda: table.current, metrics=metrics, idle_poll=0.02,
                    backoff=Backoff(base=0.02, cap=0.05), pacing=Pacing(limit=60_000))
    worker.start()
    try:
        for step in steps:
            if step == "drain":
                _wait(lambda: not box.pending(), "an empty outbox")
            elif step == "fail":
                pd.faults.fail(status=500, seconds=3600)
            elif step == "up":
                _wait(lambda: any(e["status"] == 500 for e in pd.state.events()),
                      "a failed attempt")
                pd.faults.clear()
            elif step == "delete":
                answer = httpx.delete(
                    f"{pd.api_url}/services/{service['id']}/integrations/{old['id']}",
                    headers={"Authorization": f"Token token={pd.token}"}, timeout=5)
                assert answer.status_code == 204
            elif step[0] == "switch":
                routes_file(new["integration_key"], [old["integration_key"]] if step[1] else [])
                assert table.reload()
            else:
                _, check, severity = step
                action = "resolve" if severity == "I" else "trigger"
                accept_alert(box, "web", table.current.routes["web"],
                             plain_alert(severity, action, check_id=CHECKS[check]),
                             asm_base_url="https://asm.example.com")
    finally:
        worker.stop(timeout=5)
        sender.close()

    def check_of(dedup_key: str) -> str:
        return NAMES[int(dedup_key.split(":")[3])]

    assert [(e["body"]["event_action"], check_of(e["body"]["dedup_key"]),
             names[e["body"]["routing_key"]])
            for e in pd.state.events() if e["status"] == 202] == delivered
    assert {check_of(i["incident_key"]): (i["status"], via[i["integration_id"]])
            for i in pd.state.incidents(service_id=service["id"])} == incidents
    assert [(d.reason, d.action, check_of(d.dedup_key)) for d in box.dead_letters()] == dead
    assert [(p.reason, p.count) for p in box.route_problems()] == [
        (reason, 1) for reason, *_ in dead]
    assert (metrics.registry.get_sample_value("apica_bridge_events_dead_lettered_total",
                                              {"reason": "integration_gone"}) or 0) == len(dead)
    box.close()
