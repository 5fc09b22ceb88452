"""One write for a response's head and body; a head alone still goes out."""

from __future__ import annotations

import asyncio

import pytest

from bridge.response_write import HOLD_SECONDS, HeadWithBody

HEAD = b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n"


class RecordingTransport:
    """What a transport was asked to write and whether it was closed."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


@pytest.fixture
def wrapped():
    loop = asyncio.new_event_loop()
    transport = RecordingTransport()
    yield HeadWithBody(transport, loop), transport, loop  # type: ignore[arg-type]
    loop.close()


def test_the_head_waits_for_the_body_and_both_go_in_one_write(wrapped):
    writer, transport, _ = wrapped
    writer.write(HEAD)
    assert transport.writes == []
    writer.write(b"{}")
    assert transport.writes == [HEAD + b"{}"]


def test_a_head_without_a_body_goes_after_the_hold(wrapped):
    writer, transport, loop = wrapped
    writer.write(HEAD)
    loop.run_until_complete(asyncio.sleep(HOLD_SECONDS * 2))
    assert transport.writes == [HEAD]
    writer.write(b"later")
    assert transport.writes == [HEAD, b"later"]


def test_closing_lets_a_held_head_go_first(wrapped):
    writer, transport, _ = wrapped
    writer.write(HEAD)
    writer.close()
    assert (transport.writes, transport.closed) == ([HEAD], True)


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 100 Continue\r\n\r\n",  # the client waits for it before sending the body
    HEAD + b"{}",  # a whole response already
    b"5\r\nhello\r\n",  # a chunk of a body
])
def test_anything_but_a_final_head_alone_is_written_at_once(wrapped, data):
    writer, transport, _ = wrapped
    writer.write(data)
    assert transport.writes == [data]


def test_other_attributes_are_the_transports(wrapped):
    writer, _, _ = wrapped
    assert writer.get_extra_info("peername") == "extra peername"
