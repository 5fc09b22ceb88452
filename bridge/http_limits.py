"""What the bridge takes from a client before it has shown a credential.

uvicorn's httptools protocol keeps reading a request line and headers for as long
as a client sends them (4 connections sending 50 MB of header grew the bridge by
200 MB), has no header count limit, and arms no timer on a connection before its
first response (450 idle or slow connections stayed open indefinitely). `protocol_class`
is that protocol with the missing limits:

- request line and headers together: at most `header_bytes` (a longer URL: 414,
  more header bytes: 431) and at most `header_count` header fields (431);
- `idle_timeout`: a connection that sends nothing (before its first request, or
  between requests, which is uvicorn's own keep-alive timeout) is closed;
- `header_timeout`: from a request's first byte to the end of its headers (408),
  so a client trickling one byte a second is closed however long it keeps trickling;
- `body_timeout`: from the end of the headers to the end of the body (408);
- `connections`: open connections, counting this one; one more is answered 503.

Refusals are counted (`on_refused(reason)`) and logged through `RefusalLog`: values
taken from a request are cut short and repeated lines are rate-limited, so a client
cannot grow the log faster than the limits let it grow anything else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("bridge.http")

# A logged value taken from a request (a route name from the URL, a check name) is
# cut to this many characters.
MAX_LOGGED_CHARS = 100
# Refusal lines per reason per window; later ones in the window are counted, and
# the next line logged says how many were left out.
REFUSAL_LINES = 10
REFUSAL_WINDOW = 60.0
# The bytes a request line or header line costs beyond its text (": ", CRLF).
_LINE_OVERHEAD = 4


@dataclass(frozen=True)
class HttpLimits:
    header_bytes: int = 16384
    header_count: int = 100
    idle_timeout: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 20.0
    connections: int = 256


def shorten(value: object, limit: int = MAX_LOGGED_CHARS) -> object:
    """A string cut to `limit` characters (marked with "…"); anything else as it is."""
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


class RefusalLog:
    """Refusal log lines: request-derived values cut short, at most `lines` per reason
    per `window` seconds; the first line after a gap carries `suppressed` (lines left out).
    """

    def __init__(
        self,
        logger: logging.Logger = log,
        *,
        clock: Callable[[], float] = time.monotonic,
        lines: int = REFUSAL_LINES,
        window: float = REFUSAL_WINDOW,
    ) -> None:
        self._log = logger
        self._clock = clock
        self._lines = lines
        self._window = window
        # reason -> [window start, lines logged in it, lines left out since the last one]
        self._reasons: dict[str, list[float]] = {}

    def log(self, level: int, reason: str, message: str, *, exc_info: bool = False,
            **fields: object) -> None:
        if not self._log.isEnabledFor(level):
            return
        now = self._clock()
        state = self._reasons.setdefault(reason, [now, 0, 0])
        if now - state[0] >= self._window:
            state[0], state[1] = now, 0
        if state[1] >= self._lines:
            state[2] += 1
            return
        state[1] += 1
        extra = {key: shorten(value) for key, value in fields.items()}
        extra["reason"] = reason
        if state[2]:
            extra["suppressed"] = int(state[2])
            state[2] = 0
        self._log.log(level, "%s", shorten(message, 4 * MAX_LOGGED_CHARS), extra=extra,
                      exc_info=exc_info)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; `data_received` answers."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with `limits` enforced; make one with `protocol_class`."""

    limits: ClassVar[HttpLimits] = HttpLimits()
    refusals: ClassVar[RefusalLog] = RefusalLog()
    on_refused: ClassVar[Callable[[str], object]] = staticmethod(lambda reason: None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refusal: tuple[int, str, str] | None = None
        self._refused = False
        self._in_head = False
        self._head_bytes = 0  # counted in the parser's callbacks
        self._head_raw = 0  # whole chunks that arrived while the head was incomplete
        self._head_count = 0
        self._timer: asyncio.TimerHandle | None = None  # header or body timeout

    # -- connection --------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.connections:
            self._refuse(503, "too_many_connections",
                         f"the bridge has {self.limits.connections} connections open; "
                         "try again later")
            return
        # Nothing sent yet counts as idle, as between requests (uvicorn's keep-alive).
        self.timeout_keep_alive_task = self.loop.call_later(
            self.limits.idle_timeout, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        was_in_head = self._in_head
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(*self._refusal)
            else:
                self._refuse(400, "invalid_http", "invalid HTTP request")
            return
        if was_in_head and self._in_head:
            # The whole chunk belongs to a head the parser is still buffering (it keeps a
            # header line whole before it calls on_header): count it as it arrives.
            self._head_raw += len(data)
            if self._head_raw > self.limits.header_bytes:
                self._refuse(*self._too_large())

    # -- parser callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._head_raw = self._head_count = 0
        self._start_timer(self.limits.header_timeout, "header_timeout",
                          "request headers not received within "
                          f"{self.limits.header_timeout:g} seconds")

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_bytes += len(url)
        if len(self.url) > self.limits.header_bytes:
            self._stop(414, "uri_too_long",
                       f"request URL is longer than {self.limits.header_bytes} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + _LINE_OVERHEAD
        self._head_count += 1
        if self._head_count > self.limits.header_count:
            self._stop(431, "too_many_headers",
                       f"request has more than {self.limits.header_count} header fields")
        if self._head_bytes > self.limits.header_bytes:
            self._stop(*self._too_large())
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_timer()
        super().on_headers_complete()
        self._start_timer(self.limits.body_timeout, "body_timeout",
                          f"request body not received within {self.limits.body_timeout:g} "
                          "seconds")

    def on_message_complete(self) -> None:
        self._cancel_timer()
        super().on_message_complete()

    # -- refusing ------------------------------------------------------------------

    def _too_large(self) -> tuple[int, str, str]:
        return (431, "header_too_large",
                f"request headers are larger than {self.limits.header_bytes} bytes")

    def _stop(self, status: int, reason: str, message: str) -> None:
        self._refusal = (status, reason, message)
        raise _Refused(message)

    def _start_timer(self, seconds: float, reason: str, message: str) -> None:
        self._cancel_timer()
        self._timer = self.loop.call_later(seconds, self._timed_out, reason, message)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, reason: str, message: str) -> None:
        self._timer = None
        cycle = self.cycle  # for a header timeout: the previous request on this connection
        if cycle is not None and cycle.response_started and (
                reason == "body_timeout" or not cycle.response_complete):
            # An answer is out, or on its way: a 408 after it would be garbage.
            self._refuse(408, reason, message, answer=False)
            return
        if cycle is not None and not cycle.response_complete:
            # The app waits for the body: it gets a disconnect and sends nothing.
            cycle.disconnected = True
            cycle.message_event.set()
        self._refuse(408, reason, message)

    def _refuse(self, status: int, reason: str, message: str, *, answer: bool = True) -> None:
        """Answer `status` with the bridge's JSON error body (unless `answer` is false:
        the app answered already) and close the connection."""
        self._refused = True
        self._cancel_timer()
        self._unset_keepalive_if_required()
        self.on_refused(reason)
        self.refusals.log(logging.WARNING, reason, f"request refused: {message}",
                          event="request_refused", status=status if answer else None,
                          client=f"{self.client[0]}:{self.client[1]}" if self.client else None)
        if self.transport.is_closing():
            return
        if answer:
            body = json.dumps({"error": reason, "message": message},
                              separators=(",", ":")).encode()
            head = [f"HTTP/1.1 {status} {_PHRASES[status]}", "content-type: application/json",
                    f"content-length: {len(body)}", "connection: close"]
            self.transport.write("\r\n".join(head).encode() + b"\r\n\r\n" + body)
        self.transport.close()


_PHRASES = {400: "Bad Request", 408: "Request Timeout", 414: "URI Too Long",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def protocol_class(
    limits: HttpLimits,
    *,
    refusals: RefusalLog | None = None,
    on_refused: Callable[[str], object] | None = None,
) -> type[GuardedHttpToolsProtocol]:
    """The protocol for `uvicorn.Config(http=...)`, bound to these limits.

    uvicorn makes one instance per connection from the class, so the limits travel as
    class attributes of a subclass made here.
    """
    attributes: dict[str, object] = {"limits": limits,
                                     "refusals": refusals or RefusalLog()}
    if on_refused is not None:
        attributes["on_refused"] = staticmethod(on_refused)
    return type("BridgeHttpProtocol", (GuardedHttpToolsProtocol,), attributes)


def uvicorn_options(limits: HttpLimits, **protocol: Any) -> dict[str, Any]:
    """The `uvicorn.Config` keywords that enforce `limits`."""
    return {"http": protocol_class(limits, **protocol),
            "timeout_keep_alive": limits.idle_timeout}
