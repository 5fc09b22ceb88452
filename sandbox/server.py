"""`PagerDutySandbox`: a fake PagerDuty on loopback, served by uvicorn on a background thread.

with PagerDutySandbox() as pd:
    svc = pd.state.create_service(name="Checkout API", urgency="severity_based")
    key = pd.state.add_integration(svc["id"], name="Apica-Checkout-API")["integration_key"]
    requests.post(pd.events_url, json={...})
    pd.state.incidents()
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

import uvicorn

from sandbox.app import build_app
from sandbox.clock import Clock, system_clock
from sandbox.faults import Faults
from sandbox.ids import new_token
from sandbox.ratelimit import RateLimiter
from sandbox.rest_api import REST_REQUESTS_PER_MINUTE
from sandbox.state import SandboxState

START_TIMEOUT = 10.0


class PagerDutySandbox:
    """A real HTTP server emulating PagerDuty's Events API v2 and a REST API v2 subset."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        events_per_minute: int | None = 120,
        rest_requests_per_minute: int | None = REST_REQUESTS_PER_MINUTE,
        clock: Clock = system_clock,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token or new_token()
        self.clock = clock
        self.state = SandboxState(clock)
        self.faults = Faults(clock)
        self.limiter = RateLimiter(events_per_minute, clock)
        self.rest_limiter = RateLimiter(rest_requests_per_minute, clock)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() or use `with`")
        return f"http://{self.host}:{self.port}"

    @property
    def events_url(self) -> str:
        return self.url + "/v2/enqueue"

    @property
    def api_url(self) -> str:
        """Base URL of the REST API subset (PagerDuty's `https://api.pagerduty.com`)."""
        return self.url

    def start(self) -> PagerDutySandbox:
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
        self.state.directory.rebase(f"http://{self.host}:{self.port}")
        app = build_app(
            self.state, self.faults, self.limiter, token=self.token, rest_limiter=self.rest_limiter
        )
        # No access log: request lines are noise in test output and the demo's.
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="pagerduty-sandbox", daemon=True
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

    def __enter__(self) -> PagerDutySandbox:
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
        raise RuntimeError(f"the PagerDuty sandbox did not start on {self.host}:{self.port}")
