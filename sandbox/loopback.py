"""`LoopbackServer`: an ASGI app served by uvicorn on a background thread, for fakes.

Subclasses say what they serve (`build_app`) and may learn their URL once the port
is bound (`on_bound`); `start()`/`stop()` or `with`, `port=0` picks a free port.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Any, Self

import uvicorn

START_TIMEOUT = 10.0


class LoopbackServer:
    """A real HTTP server on a background thread; `url` once started."""

    #: How messages name the server ("the PagerDuty sandbox").
    title = "the sandbox"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def build_app(self) -> Any:
        """The ASGI application to serve; called by `start()` after the port is bound."""
        raise NotImplementedError

    def on_bound(self, url: str) -> None:
        """Called with the server's URL before the app is built."""

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.title} is not running: call start() or use `with`")
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        if self._server is not None:
            return self
        # IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (no 40 ms
        # Nagle/delayed-ACK stalls in the latencies the benchmarks measure).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self.on_bound(f"http://{self.host}:{self.port}")
        # No access log: request lines are noise in test output and the demo's.
        config = uvicorn.Config(
            self.build_app(), log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=type(self).__name__, daemon=True
        )
        thread.start()
        self._server, self._thread, self._socket = server, thread, sock
        self._wait_started()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = threading.Event()
        for _ in range(int(START_TIMEOUT / 0.01)):
            if self._server.started:
                return
            if not self._thread.is_alive():
                break
            deadline.wait(0.01)
        self.stop()
        raise RuntimeError(f"{self.title} did not start on {self.host}:{self.port}")
