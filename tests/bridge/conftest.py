"""Shared bridge fixtures: routes files, alerts, a fake clock, the real store on either
backend, the PagerDuty sandbox, a bridge on loopback.

The store: `backend` is "sqlite" or "postgresql" (every test that takes `outbox` or
`stores` runs on both; a module overrides `backend` to pin one). PostgreSQL is the real
private cluster of the session (`postgres`, tests/conftest.py), a fresh schema per
store; without Debian's server binaries those runs skip locally and fail under CI=true.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from prometheus_client import CollectorRegistry

from bridge.intake.asm import AsmAlert
from bridge.metrics import BridgeMetrics
from bridge.store.base import Store
from bridge.store.location import StoreLocation, open_store
from bridge.store.records import Enqueued, IncomingAlert, NewEvent
from bridge.store.sqlite import SqliteStore, outbox_path
from contract.routes_file import Route, RoutesFile, parse_routes, write_routes_file
from sandbox.asm_api import AsmSandbox
from sandbox.postgres_cluster import PostgresCluster
from sandbox.server import PagerDutySandbox
from tests.conftest import ASM_TICKET

BACKENDS = ("sqlite", "postgresql")

CHECKOUT_KEY = "C" * 28 + "k3y1"
SEARCH_KEY = "S" * 28 + "k3y2"
FALLBACK_KEY = "F" * 28 + "k3y3"
TOKEN = "token-0123456789abcdef"
OLD_TOKEN = "token-old-0123456789ab"


def routes_document(catch_all: str | None = "fallback") -> dict:
    """A routes file with three routes: by id/GUID, by tag, and a catch-all."""
    return {
        "version": 1,
        "stack": "test",
        "catch_all": catch_all,
        "routes": {
            "checkout": {
                "service_name": "Checkout API",
                "service_id": "PCHECK1",
                "integration_name": "Apica-Checkout-API",
                "routing_key": CHECKOUT_KEY,
                "check_ids": [101, 102],
                "check_guids": ["6F9619FF-8B86-D011-B42D-00C04FC964FF"],
                "check_tags": ["Team: Checkout"],
                "links": [{"href": "https://runbooks.example.com/checkout", "text": "Runbook"}],
            },
            "search": {
                "service_name": "Search",
                "service_id": "PSEARCH",
                "integration_name": "Apica-Search",
                "routing_key": SEARCH_KEY,
                "check_ids": [201],
                "check_tags": ["Team: Search", "Search"],
                "severity_map": {"W": "error"},
            },
            "fallback": {
                "service_name": "Everything else",
                "service_id": "PFALL",
                "integration_name": "Apica-Everything-else",
                "routing_key": FALLBACK_KEY,
            },
        },
    }


@pytest.fixture(autouse=True)
def _restore_bridge_logging():
    """`serve` points the bridge loggers at stderr (no propagation): undo it after each test,
    or later tests' `caplog` would see nothing."""
    import logging

    loggers = [logging.getLogger(name) for name in ("bridge", "uvicorn.error")]
    saved = [(lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    yield
    for lg, (handlers, propagate, level) in zip(loggers, saved, strict=True):
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.setLevel(level)


@pytest.fixture
def routes_doc() -> dict:
    return routes_document()


@pytest.fixture
def routes(routes_doc: dict) -> RoutesFile:
    return parse_routes(json.dumps(routes_doc), "test-routes.json")


@pytest.fixture
def routes_file(tmp_path: Path, routes_doc: dict) -> Path:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(routes_doc), encoding="utf-8")
    return path


def make_alert(**overrides: object) -> AsmAlert:
    values: dict = {
        "action": "trigger",
        "severity": "E",
        "old_severity": "I",
        "check_id": 101,
        "check_guid": "6f9619ff-8b86-d011-b42d-00c04fc964ff",
        "check_name": "Checkout page",
        "check_type": "URL",
        "message": "HTTP 500 from https://shop.example.com/checkout",
        "timestamp": "2026-11-26T10:00:00Z",
        "location": "Stockholm, Sweden",
        "groups": ("Shop", "Production"),
        "tags": {"Team": ("Checkout",), "Tier": ("1",)},
        "result_guid": "0c2d2b1e-3d64-4d1e-9f7a-5b0a8a3e2f10",
    }
    values.update(overrides)
    return AsmAlert(**values)


@pytest.fixture
def alert() -> AsmAlert:
    return make_alert()


def plain_alert(severity: str = "W", action: str = "trigger", **fields: object) -> AsmAlert:
    """An alert of check 42 with nothing optional (no tags, groups or result)."""
    values: dict = dict(action=action, severity=severity, old_severity=None, check_id=42,
                        check_guid=None, check_name="Home page", check_type="URL",
                        message=f"severity {severity}", timestamp="2026-11-26T11:00:00",
                        location="Stockholm", groups=(), tags={}, result_guid=None)
    values.update(fields)
    return AsmAlert(**values)


@dataclass
class FakeClock:
    """A clock the test moves by hand (`clock.now += 5`)."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Stores:
    """Where a test's outbox lives on its backend, and how to open it (or hand it to a
    process: `arg` for a child, `env` for `python -m bridge`)."""

    backend: str
    location: StoreLocation

    def open(self, **options: object) -> Store:
        return open_store(self.location, **options)

    @property
    def arg(self) -> str:
        return self.location.url or str(self.location.path.parent)

    @property
    def env(self) -> dict[str, str]:
        return {"APICA_PD_STORE_URL": self.location.url} if self.location.url else {}

    @property
    def closed_error(self) -> type[BaseException]:
        if self.backend == "sqlite":
            import sqlite3

            return sqlite3.ProgrammingError
        from psycopg_pool import PoolClosed

        return PoolClosed


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def new_stores(backend: str, request: pytest.FixtureRequest, data_dir: Path) -> Stores:
    """A new, empty outbox location on `backend` (a fresh schema on PostgreSQL)."""
    if backend == "sqlite":
        return Stores(backend, StoreLocation(path=outbox_path(data_dir)))
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return Stores(backend, StoreLocation(url=cluster.new_schema(f"t_{uuid.uuid4().hex[:12]}")))


@pytest.fixture
def stores(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    return new_stores(backend, request, tmp_path / "data")


@pytest.fixture
def outbox(stores: Stores, clock: FakeClock):
    """The real store (each backend in turn) in a place of its own, on the fake clock."""
    with stores.open(clock=clock) as box:
        yield box


def new_event(action: str = "trigger", dedup: str = "d1") -> NewEvent:
    return NewEvent(action, dedup, {"event_action": action, "dedup_key": dedup})


def incoming(route: str = "web", check: str = "id:1", fingerprint: str | None = None,
             asm_time: str | None = None, action: str = "trigger",
             severity: str = "F") -> IncomingAlert:
    return IncomingAlert(route=route, check_key=check, action=action, severity=severity,
                         fingerprint=fingerprint, asm_time=asm_time)


def enqueue(box: Store, *events: NewEvent, route: str = "web", check: str = "id:1",
            fingerprint: str | None = None, open_after: frozenset[str] = frozenset(),
            asm_time: str | None = None) -> Enqueued:
    """Store these events for one check, as intake would; what `enqueue` returns."""
    return box.enqueue(incoming(route, check, fingerprint, asm_time),
                       lambda _open: (list(events), frozenset(open_after)))


def routes_with_keys(**keys: str) -> RoutesFile:
    """A routes file whose routes (lanes) are these names, each with its routing key."""
    return RoutesFile(version=1, stack="test", routes={
        name: Route(service_name=name, service_id=f"P{name.upper()}",
                    integration_name=f"Apica-{name}", routing_key=key)
        for name, key in keys.items()})


@pytest.fixture
def metrics() -> BridgeMetrics:
    return BridgeMetrics(CollectorRegistry())


@pytest.fixture(scope="module")
def pd_server() -> Iterator[PagerDutySandbox]:
    with PagerDutySandbox(events_per_minute=None) as server:
        yield server


@pytest.fixture
def pd(pd_server: PagerDutySandbox) -> Iterator[PagerDutySandbox]:
    """The PagerDuty sandbox (one per test module), with no faults, activity or limit."""
    pd_server.faults.clear()
    pd_server.state.reset_activity()
    pd_server.limiter.reset()
    pd_server.limiter.events_per_minute = None
    yield pd_server
    pd_server.faults.clear()


@pytest.fixture
def pd_route(pd: PagerDutySandbox) -> tuple[dict, Route]:
    """A new severity-based service in the sandbox and the bridge route pointing at it."""
    counter = len(pd.state.services())
    service = pd.state.create_service(name=f"Web {counter}", urgency="severity_based")
    name = f"Apica-Web-{counter}"
    key = pd.state.add_integration(service["id"], name=name)["integration_key"]
    return service, Route(service_name=service["name"], service_id=service["id"],
                          integration_name=name, routing_key=key)


@pytest.fixture
def pd_routes_file(tmp_path: Path, pd_route: tuple[dict, Route]) -> tuple[Path, str, dict]:
    """A routes file whose one route, `web`, is `pd_route`: (path, routing key, service)."""
    service, route = pd_route
    routes = RoutesFile(version=1, stack="test", routes={"web": route})
    path = write_routes_file(tmp_path / "routes.json", routes)
    return path, route.routing_key.get_secret_value(), service


@dataclass
class LoopbackServer:
    """A uvicorn server for `app` on 127.0.0.1:<free port>, in a thread; `options` go to
    `uvicorn.Config` (e.g. `bridge.http_limits.uvicorn_options`)."""

    app: object
    options: dict = field(default_factory=dict)
    server: uvicorn.Server = field(init=False)
    thread: threading.Thread = field(init=False)
    port: int = 0

    def __enter__(self) -> LoopbackServer:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_config=None, access_log=False,
            lifespan="on", **self.options,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the bridge did not start on loopback")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def loopback() -> Callable[[object], LoopbackServer]:
    """`with loopback(app) as server:` runs `app` on a free loopback port."""
    return LoopbackServer


@pytest.fixture
def wait_until() -> Callable[..., None]:
    def wait(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.01)

    return wait


@dataclass
class StoringBridge:
    """The real app with the real outbox and intake (no worker): events stay pending."""

    url: str
    outbox: object
    metrics: BridgeMetrics

    def post(self, path: str, body: bytes | str, content_type: str = "application/json"):
        import httpx

        return httpx.post(self.url + path, content=body, timeout=10,
                          headers={"Content-Type": content_type, "X-Apica-Token": TOKEN})


@pytest.fixture
def storing_bridge(tmp_path: Path, routes_file: Path, metrics: BridgeMetrics):
    """A bridge on loopback whose accepted alerts land in a real outbox in tmp_path."""
    import functools

    from bridge.app import create_app
    from bridge.intake.accept import accept_alert_async
    from bridge.intake.auth import Authenticator, Credentials
    from bridge.route_table import RouteTable

    table = RouteTable(routes_file, metrics)
    table.load()
    with SqliteStore(tmp_path / "outbox.db") as outbox:
        app = create_app(
            routes=table, metrics=metrics, store_ready=outbox.writable,
            accept=functools.partial(accept_alert_async, outbox,
                                     asm_base_url="https://asm.example"),
            auth=Authenticator(Credentials(tokens=(TOKEN,))),
        )
        with LoopbackServer(app) as server:
            yield StoringBridge(server.url, outbox, metrics)


# -- ASM's own state (reconciliation, enrichment) against the real bridge process ---------


@pytest.fixture
def live_asm() -> Iterator[AsmSandbox]:
    """An ASM sandbox on the real clock (the bridge process compares its times with the
    webhooks' own)."""
    with AsmSandbox(auth_ticket=ASM_TICKET) as sandbox:
        yield sandbox


@pytest.fixture
def pd_routes(tmp_path: Path, pd: PagerDutySandbox) -> tuple[Path, str]:
    """The checkout route of `routes_document` on a new sandbox service: (file, service id)."""
    doc = routes_document(catch_all=None)
    service = pd.state.create_service(name=f"Checkout {len(pd.state.services())}",
                                      urgency="severity_based")
    key = pd.state.add_integration(service["id"], name="Apica-Checkout")["integration_key"]
    doc["routes"] = {"checkout": {**doc["routes"]["checkout"], "routing_key": key}}
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(doc))
    return path, service["id"]


def incidents_by_check(pd: PagerDutySandbox, service: str) -> dict[int, list[tuple[str, str]]]:
    """The service's incidents as check id -> [(urgency, status)], oldest first."""
    found: dict[int, list[tuple[str, str]]] = {}
    for incident in pd.state.incidents(service):
        details = incident["alerts"][0]["custom_details"]
        found.setdefault(details["check_id"], []).append((incident["urgency"],
                                                          incident["status"]))
    return found


def webhook_time() -> str:
    """Now as ASM's %UTC-T% renders it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
