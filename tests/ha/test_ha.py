"""Two bridges on one PostgreSQL behind a real load balancer (HAProxy): a steady webhook
stream while one bridge is killed with -9 and restarted, then both are restarted one
after the other (SIGTERM, wait ready, next).

What ASM would see and what PagerDuty gets: no webhook refused or failed, every 202
delivered, per check the order it was sent in, and nothing delivered again that would
reopen a resolved incident. HAProxy retries a request whose connection was refused or
closed unanswered on the other bridge (`bench.ha_pair`); its counters say how often
that happened, and the store answers a retried request the dead bridge had committed
as a duplicate.

And the database itself stopping under a real bridge process: every webhook meanwhile
is answered 503 (never a 202 that was not committed), /readyz says so, and once the
server is started again the bridge is ready and storing without being touched.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import requests

from bench.ha_pair import HAPROXY_HINT, BridgeProcess, HaPair, haproxy_binary
from bridge.store.location import StoreLocation, open_store
from contract.routes_file import Route, RoutesFile, write_routes_file
from sandbox.server import PagerDutySandbox

ROUTES = ("web", "api", "shop", "search")
CHECKS_PER_ROUTE = 3
SENDERS = 4  # concurrent webhook senders, each its own checks
RATE = 40.0  # webhooks per second over all senders
BASE_TIME = datetime(2026, 12, 1, 8, 0, tzinfo=UTC).timestamp()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def haproxy() -> str:
    binary = haproxy_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"HAProxy not found; {HAPROXY_HINT}")
        pytest.skip(f"HAProxy not found; {HAPROXY_HINT}")
    return binary


@dataclass(frozen=True)
class Sent:
    check: int
    seq: int  # the check's n-th webhook: even = trigger F, odd = resolve I
    status: int
    answer: str  # "accepted", "duplicate", ... or the error


def webhook(check: int, seq: int) -> dict:
    trigger = seq % 2 == 0
    return {
        "action": "trigger" if trigger else "resolve", "check_id": 1000 + check,
        "check_name": f"HA check {check}", "check_type": "URL",
        "severity": "F" if trigger else "I", "old_severity": "I" if trigger else "F",
        "message": f"ha {seq}", "location": "Loopback",
        # A new second per webhook of a check: none is older than the one before.
        "timestamp": datetime.fromtimestamp(BASE_TIME + seq, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S"),
    }


class Stream:
    """SENDERS threads posting at RATE through the load balancer until stopped; each
    sends its checks' webhooks in turn, a check's next only after its last was answered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent: list[Sent] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(SENDERS)]

    def __enter__(self) -> Stream:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(60)

    def _run(self, sender: int) -> None:
        checks = [c for c in range(len(ROUTES) * CHECKS_PER_ROUTE) if c % SENDERS == sender]
        seqs = dict.fromkeys(checks, 0)
        interval = SENDERS / RATE
        next_at = time.monotonic()
        with requests.Session() as http:
            while not self.stopping.is_set():
                for check in checks:
                    next_at += interval
                    time.sleep(max(next_at - time.monotonic(), 0))
                    route = ROUTES[check % len(ROUTES)]
                    seq = seqs[check]
                    try:
                        answer = http.post(f"{self.url}/v1/asm/{route}",
                                           json=webhook(check, seq), timeout=30)
                        status, body = answer.status_code, answer.json()
                        word = ("duplicate" if body.get("duplicate") else body.get("status")
                                or body.get("error", "?"))
                    except (requests.RequestException, ValueError) as exc:
                        status, word = 0, f"{time.time():.3f} {exc}"
                    with self.lock:
                        self.sent.append(Sent(check, seq, status, word))
                    seqs[check] = seq + 1
                    if self.stopping.is_set():
                        break

    def count(self) -> int:
        with self.lock:
            return len(self.sent)

    def wait_for(self, more: int) -> None:
        target = self.count() + more
        deadline = time.monotonic() + 60
        while self.count() < target:
            assert time.monotonic() < deadline, "the stream stalled"
            time.sleep(0.02)


def test_kill9_and_rolling_restart_behind_haproxy(tmp_path, postgres, haproxy, capsys):
    store_url = postgres.new_schema("ha_test")
    with PagerDutySandbox(events_per_minute=None) as pd:
        routes = {}
        services = {}
        for name in ROUTES:
            service = pd.state.create_service(name=f"HA {name}", urgency="severity_based")
            key = pd.state.add_integration(service["id"], name=f"Apica-HA-{name}")
            routes[name] = Route(service_name=service["name"], service_id=service["id"],
                                 integration_name=f"Apica-HA-{name}",
                                 routing_key=key["integration_key"])
            services[name] = service
        routes_path = write_routes_file(tmp_path / "routes.json",
                                        RoutesFile(version=1, stack="ha", routes=routes))
        env = {"APICA_PD_EVENTS_TIMEOUT": "2", "APICA_PD_EVENTS_PER_KEY": "10000",
               "APICA_PD_LOG_LEVEL": "WARNING"}
        with HaPair(tmp_path, routes_path, pd.events_url, store_url, env=env) as pair:
            one, two = pair.bridges
            timeline = []
            with Stream(pair.url) as stream:
                stream.wait_for(60)
                one.kill9()
                timeline.append((f"killed -9 bridge1 at {time.time():.3f}", stream.count()))
                stream.wait_for(40)  # served by bridge2 alone
                pair.restart(one)
                timeline.append(("bridge1 back", stream.count()))
                stream.wait_for(40)
                for bridge in (one, two):  # a rolling restart
                    at = time.time()
                    assert bridge.terminate() == 0
                    timeline.append((f"{bridge.name} stopped (SIGTERM at {at:.3f})",
                                     stream.count()))
                    pair.restart(bridge)
                    timeline.append((f"{bridge.name} back", stream.count()))
                    stream.wait_for(40)
            stats = pair.proxy.stats()
            sent = stream.sent
            with open_store(StoreLocation(url=store_url), read_only=True) as box:
                deadline = time.monotonic() + 60
                while box.stats().pending:
                    assert time.monotonic() < deadline, "the outbox never drained"
                    time.sleep(0.1)
        events = [(e["body"]["dedup_key"], e["body"]["event_action"])
                  for e in pd.state.events() if e["status"] == 202]
        incidents = [i for name in ROUTES
                     for i in pd.state.incidents(service_id=services[name]["id"])]

    refused = [s for s in sent if s.status != 202]
    answers = {word: sum(1 for s in sent if s.answer == word) for word in {s.answer for s in sent}}
    with capsys.disabled():
        print(f"\nHA stream: {len(sent)} webhooks, answers {answers}; " + ", ".join(
            f"{what} after {n}" for what, n in timeline))
        print("HAProxy: retries {wretr}, redispatches {wredis}, errors to clients "
              "{eresp}".format(**stats["BACKEND"]))
    assert refused == []
    # Every webhook of the stream is new: a duplicate is a retried request that the
    # bridge it first reached had committed before it died.
    assert answers.get("accepted", 0) + answers.get("duplicate", 0) == len(sent)
    # Per check, what PagerDuty got (a repeat in a row is at least once: merged or no-op)
    # is exactly what was sent, in the order sent: no resolved incident reopened.
    for check in range(len(ROUTES) * CHECKS_PER_ROUTE):
        route = ROUTES[check % len(ROUTES)]
        dedup = f"apica-asm:{route}:id:{1000 + check}:high"
        got = [action for key, action in events if key == dedup]
        collapsed = [a for i, a in enumerate(got) if i == 0 or got[i - 1] != a]
        expected = ["trigger" if s.seq % 2 == 0 else "resolve"
                    for s in sorted((s for s in sent if s.check == check), key=lambda s: s.seq)
                    if s.answer in ("accepted", "duplicate")]
        assert collapsed == expected, (check, got)
    last = {s.check: s.seq for s in sent}
    assert {i["status"] for i in incidents if i["status"] != "resolved"} <= {"triggered"}
    still_open = sum(1 for i in incidents if i["status"] == "triggered")
    assert still_open == sum(1 for seq in last.values() if seq % 2 == 0)
    assert json.dumps(sent[0].__dict__)  # the records are plain data


def test_the_database_stopping_and_starting_under_a_bridge(tmp_path, postgres):
    store_url = postgres.new_schema("ha_db_down")
    with PagerDutySandbox(events_per_minute=None) as pd:
        service = pd.state.create_service(name="HA db", urgency="severity_based")
        key = pd.state.add_integration(service["id"], name="Apica-HA-db")
        routes_path = write_routes_file(tmp_path / "routes.json", RoutesFile(
            version=1, stack="ha", routes={"web": Route(
                service_name=service["name"], service_id=service["id"],
                integration_name="Apica-HA-db", routing_key=key["integration_key"])}))
        bridge = BridgeProcess("bridge", tmp_path, routes_path, pd.events_url,
                               {"APICA_PD_STORE_URL": store_url})
        bridge.start()
        try:
            post = lambda seq: requests.post(f"{bridge.url}/v1/asm/web",  # noqa: E731
                                             json=webhook(0, seq), timeout=30)
            assert post(0).status_code == 202
            with open_store(StoreLocation(url=store_url), read_only=True) as box:
                deadline = time.monotonic() + 30
                while box.stats().pending:  # delivered and marked so, before the stop
                    assert time.monotonic() < deadline, "the first alert was never delivered"
                    time.sleep(0.05)
            postgres.stop()
            try:
                started = time.monotonic()
                answer = post(1)
                assert (answer.status_code, answer.json()["error"]) == (503, "store_error")
                assert time.monotonic() - started < 10
                ready = requests.get(f"{bridge.url}/readyz", timeout=10)
                assert (ready.status_code, ready.json()["problems"]) == (
                    503, ["store not writable"])
                assert requests.get(f"{bridge.url}/healthz", timeout=5).status_code == 200
            finally:
                postgres.start()
            deadline = time.monotonic() + 30
            while requests.get(f"{bridge.url}/readyz", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "the bridge never got ready again"
                time.sleep(0.2)
            assert post(2).status_code == 202
            deadline = time.monotonic() + 30
            while len(pd.state.events()) < 2:
                assert time.monotonic() < deadline, "nothing delivered after the restart"
                time.sleep(0.05)
        finally:
            bridge.close()
        log = bridge.log_path.read_text()
    # The 202s went out in order; the webhook refused while the database was down did not.
    assert [(e["body"]["event_action"], e["body"]["payload"]["summary"])
            for e in pd.state.events()] == [("trigger", "HA check 0: ha 0"),
                                            ("trigger", "HA check 0: ha 2")]
    assert postgres.bridge_password not in log
