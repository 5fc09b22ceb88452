"""`PagerDutySandbox`: a fake PagerDuty on loopback, served by uvicorn on a background thread.

with PagerDutySandbox() as pd:
    svc = pd.state.create_service(name="Checkout API", urgency="severity_based")
    key = pd.state.add_integration(svc["id"], name="Apica-Checkout-API")["integration_key"]
    requests.post(pd.events_url, json={...})
    pd.state.incidents()
"""

from __future__ import annotations

from starlette.applications import Starlette

from sandbox.app import build_app
from sandbox.clock import Clock, system_clock
from sandbox.faults import Faults
from sandbox.ids import new_token
from sandbox.loopback import LoopbackServer
from sandbox.ratelimit import RateLimiter
from sandbox.rest_api import REST_REQUESTS_PER_MINUTE
from sandbox.state import SandboxState


class PagerDutySandbox(LoopbackServer):
    """A real HTTP server emulating PagerDuty's Events API v2 and a REST API v2 subset."""

    title = "the PagerDuty sandbox"

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
        super().__init__(host, port)
        self.token = token or new_token()
        self.clock = clock
        self.state = SandboxState(clock)
        self.faults = Faults(clock)
        self.limiter = RateLimiter(events_per_minute, clock)
        self.rest_limiter = RateLimiter(rest_requests_per_minute, clock)

    @property
    def events_url(self) -> str:
        return self.url + "/v2/enqueue"

    @property
    def api_url(self) -> str:
        """Base URL of the REST API subset (PagerDuty's `https://api.pagerduty.com`)."""
        return self.url

    def on_bound(self, url: str) -> None:
        self.state.directory.rebase(url)

    def build_app(self) -> Starlette:
        return build_app(
            self.state, self.faults, self.limiter, token=self.token, rest_limiter=self.rest_limiter
        )
