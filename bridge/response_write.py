"""One write for a response's head and body.

uvicorn writes a response's status line and headers when the app sends
`http.response.start` and the body when it sends `http.response.body`: two writes to
the socket, two system calls for every answer, each costing about as much as the
rest of writing the 202 here (a tenth of a millisecond on these VMs). `HeadWithBody`
wraps the connection's transport and keeps a head back until the body comes, then
writes both at once. A body that does not come soon (a streamed response) lets the
head go after `HOLD_SECONDS`; closing the connection lets it go at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

HOLD_SECONDS = 0.05


class HeadWithBody:
    """An `asyncio.Transport` stand-in: every attribute but `write` and `close` is the
    wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._timer: asyncio.TimerHandle | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._head is not None:
            data = self._head + bytes(data)
            self._release_timer()
        elif _is_head(data):
            self._head = bytes(data)
            self._timer = self._loop.call_later(HOLD_SECONDS, self._flush)
            return
        self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def _flush(self) -> None:
        if self._head is not None:
            head = self._head
            self._release_timer()
            self._transport.write(head)

    def _release_timer(self) -> None:
        self._head = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _is_head(data: bytes | bytearray | memoryview) -> bool:
    """A final response's status line and headers, nothing after them (a "100 Continue"
    goes at once: the client waits for it before it sends the body)."""
    return (bytes(data[:5]) == b"HTTP/" and bytes(data[-4:]) == b"\r\n\r\n"
            and bytes(data[9:10]) != b"1")
