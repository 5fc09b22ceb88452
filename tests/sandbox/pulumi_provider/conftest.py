"""Fixtures of the stand-in provider's tests: an `Api` on the sandbox, waits that take no time,
a fake engine that keeps what the provider logs."""

from __future__ import annotations

import select
import subprocess
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, provider_pb2_grpc

from sandbox.pulumi_provider.resource_type import Api
from sandbox.pulumi_provider.rest import Connection, RestClient
from sandbox.pulumi_provider.retry import Timing
from sandbox.server import PagerDutySandbox


@dataclass
class FakeTime:
    """A monotonic clock that moves only by the provider's own sleeps, which it records."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    @property
    def timing(self) -> Timing:
        return Timing(sleep=self.sleep, monotonic=self.monotonic)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def warnings() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def api(pd: PagerDutySandbox, fake_time: FakeTime, warnings: list[tuple[str, str]]) -> Api:
    connection = Connection(pd.url, pd.token)
    return Api(
        sdkv2=RestClient(connection, "heimweh", fake_time.timing),
        framework=RestClient(connection, "go-pagerduty", fake_time.timing),
        timing=fake_time.timing,
        warn=lambda urn, message: warnings.append((urn, message)),
    )


@pytest.fixture
def user(pd: PagerDutySandbox) -> dict[str, Any]:
    return pd.state.add_user("alice@example.com", "Alice")


def vendor_id(pd: PagerDutySandbox, name: str) -> str:
    return next(v["id"] for v in pd.state.directory.list("vendors") if v["name"] == name)


class FakeEngine(engine_pb2_grpc.EngineServicer):
    """The engine's Log service on loopback, keeping what providers tell the user."""

    def __init__(self) -> None:
        self.logs: list[engine_pb2.LogRequest] = []

    def Log(self, request: engine_pb2.LogRequest, context: Any) -> empty_pb2.Empty:
        self.logs.append(request)
        return empty_pb2.Empty()

    def messages(self, severity: int | None = None) -> list[tuple[str, str]]:
        return [(r.urn, r.message) for r in self.logs if severity in (None, r.severity)]


@pytest.fixture
def engine() -> Iterator[tuple[FakeEngine, str]]:
    fake = FakeEngine()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield fake, f"127.0.0.1:{port}"
    server.stop(None)


def plugin_port(process: subprocess.Popen[str]) -> int:
    """The port a started plugin prints first (the engine's way to find it), read bounded."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 20)
    assert ready, "the plugin printed no port within 20 s"
    return int(process.stdout.readline())


def plugin_version(port: int) -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = provider_pb2_grpc.ResourceProviderStub(channel)
        return stub.GetPluginInfo(empty_pb2.Empty(), timeout=10).version
