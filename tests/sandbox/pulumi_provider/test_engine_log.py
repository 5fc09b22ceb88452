"""Messages for the user go to the engine's Log service, labelled as the stand-in's."""

from __future__ import annotations

from pulumi.runtime.proto import engine_pb2

from sandbox.pulumi_provider import STAND_IN
from sandbox.pulumi_provider.engine_log import EngineLog
from tests.sandbox.pulumi_provider.conftest import FakeEngine


def test_warnings_and_notes_reach_the_engine_labelled(engine: tuple[FakeEngine, str]):
    fake, address = engine
    log = EngineLog()
    log.warning("urn:a", "before connecting: dropped")
    log.connect(address)
    log.connect("127.0.0.1:1")  # the first engine stays
    log.warning("urn:a", "deprecated")
    log.info("", "a note")
    assert fake.messages(engine_pb2.WARNING) == [("urn:a", f"{STAND_IN}: deprecated")]
    assert fake.messages(engine_pb2.INFO) == [("", f"{STAND_IN}: a note")]


def test_an_engine_that_went_away_is_not_an_error():
    log = EngineLog()
    log.connect("127.0.0.1:1")
    log.warning("urn:a", "nobody listens")
