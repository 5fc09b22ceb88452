"""Messages for the user, through the engine's Log service (what a provider's stderr is not:
the engine hides a provider's output unless it crashes)."""

from __future__ import annotations

import contextlib
import threading

import grpc
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc

from sandbox.pulumi_provider import labelled


class EngineLog:
    """Warnings and notes shown under a resource (or the stack), each labelled as the stand-in's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine: engine_pb2_grpc.EngineStub | None = None
        self._channel: grpc.Channel | None = None

    def connect(self, address: str) -> None:
        with self._lock:
            if self._engine is not None or not address:
                return
            self._channel = grpc.insecure_channel(address)
            self._engine = engine_pb2_grpc.EngineStub(self._channel)

    def warning(self, urn: str, message: str) -> None:
        self._log(engine_pb2.WARNING, urn, message)

    def info(self, urn: str, message: str) -> None:
        self._log(engine_pb2.INFO, urn, message)

    def _log(self, severity: int, urn: str, message: str) -> None:
        engine = self._engine
        if engine is None:
            return
        # An error here means the engine is shutting down: the message has no reader left.
        with contextlib.suppress(grpc.RpcError):
            engine.Log(engine_pb2.LogRequest(severity=severity, message=labelled(message), urn=urn))
