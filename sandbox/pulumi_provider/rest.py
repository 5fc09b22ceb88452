"""PagerDuty's REST API as the real provider's two Go clients call it.

SDKv2 resources (policies, services, integrations, `get_team`) use heimweh/go-pagerduty;
the plugin-framework parts (alert grouping settings, the other look-ups) use
PagerDuty/go-pagerduty. Both send `Token token=...`, PagerDuty's v2 Accept header and
`Content-Type: application/json` on every request, encode query arrays as `key[]=v`
with sorted keys, and join the base URL and the path as strings (so an override
with a trailing slash gives `//services`, as with the real provider). They differ in
retries, User-Agent and error wording:

- heimweh: a 429 is retried without limit after `ratelimit-reset` + 0.5 s x (1..1.3)
  (5 s x (1..1.3) without the header); nothing else is retried.
- go-pagerduty: one retry, after `ratelimit-reset` seconds on a 429, after 1 s on a
  5xx or a network error.

Each call is logged at debug level (integration keys by their last four) to the
file named by `APICA_PD_STAND_IN_LOG`.
"""

from __future__ import annotations

import json
import logging
import platform
import random
import threading
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import requests

from contract.redact import mask_keys
from sandbox.pulumi_provider import STAND_IN, labelled
from sandbox.pulumi_provider.retry import Timing

ClientName = Literal["heimweh", "go-pagerduty"]
ACCEPT = "application/vnd.pagerduty+json;version=2"
# http.DefaultClient.Timeout in both clients.
TIMEOUT_SECONDS = 30.0
JITTER = 0.3
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
# The real values (seen under the bridge), with the stand-in named after them.
USER_AGENTS: dict[ClientName, str] = {
    "heimweh": f"({platform.system().lower()} {_ARCH}) Terraform/0.11+compatible ({STAND_IN})",
    "go-pagerduty": (
        f"({platform.system().lower()} {_ARCH}) Terraform/pulumi-terraform-bridge ({STAND_IN})"
    ),
}

# Every REST call and every RPC, at debug level (to the file APICA_PD_STAND_IN_LOG names).
CALL_LOG = logging.getLogger("apica_pd.pulumi_stand_in.calls")


class RestError(Exception):
    """A failed call, worded as the Go client words it; `status` None for network errors."""

    def __init__(self, message: str, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def bad_request(self) -> bool:
        return self.status == 400


@dataclass(frozen=True)
class Connection:
    """Where and as whom to call: the configured base URL and token."""

    base_url: str
    token: str


class RestClient:
    """One Go client's way of calling PagerDuty; thread-safe (a session per thread)."""

    def __init__(
        self,
        connection: Connection,
        client: ClientName,
        timing: Timing | None = None,
        jitter: random.Random | None = None,
    ) -> None:
        self.connection = connection
        self.client = client
        self.timing = timing or Timing()
        self._jitter = jitter or random.Random()
        self._local = threading.local()

    def get(self, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        return self.call("GET", path, params=params)

    def call(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]] | None = None,
        body: Any = None,
    ) -> Any:
        """The decoded JSON answer (None for an empty one); RestError for anything >= 400."""
        query = urlencode(sorted(params or [], key=lambda pair: pair[0]))
        url = self.connection.base_url + path + (f"?{query}" if query else "")
        retried = False
        while True:
            try:
                response = self._send(method, url, body)
            except requests.RequestException as exc:
                self._log(method, path, query, body, None)
                if self.client == "go-pagerduty" and not retried:
                    retried = True
                    self.timing.sleep(1.0)
                    continue
                raise RestError(
                    f"{method} {url} failed: {type(exc).__name__} (no answer from the API)"
                ) from None
            self._log(method, path, query, body, response.status_code)
            wait = self._retry_wait(response, retried)
            if wait is None:
                return self._answer(method, url, response)
            retried = True
            self.timing.sleep(wait)

    def _send(self, method: str, url: str, body: Any) -> requests.Response:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        headers = {
            "Authorization": f"Token token={self.connection.token}",
            "Accept": ACCEPT,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENTS[self.client],
        }
        data = None if body is None else json.dumps(body)
        return session.request(method, url, data=data, headers=headers, timeout=TIMEOUT_SECONDS)

    def _retry_wait(self, response: requests.Response, retried: bool) -> float | None:
        reset = response.headers.get("ratelimit-reset", "")
        if self.client == "heimweh":
            if response.status_code != 429:
                return None
            if reset.isdigit():
                return int(reset) + 0.5 * (1 + JITTER * self._jitter.random())
            return 5.0 * (1 + JITTER * self._jitter.random())
        if retried:
            return None
        if response.status_code == 429:
            return float(int(reset)) if reset.isdigit() else 1.0
        return 1.0 if response.status_code >= 500 else None

    def _answer(self, method: str, url: str, response: requests.Response) -> Any:
        status = response.status_code
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = None
            if status < 400:
                raise RestError(f"{method} {url}: the answer is not JSON", status) from None
        if status < 400:
            return data
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            error = None
        message, code = (error or {}).get("message", ""), (error or {}).get("code")
        errors = (error or {}).get("errors")
        if self.client == "heimweh":
            if data is None:
                text = f"{method} API call to {url} failed: {status} {response.reason}"
            else:
                text = (
                    f"{method} API call to {url} failed {status} {response.reason}. "
                    f"Code: {code or 0}, Errors: {_go_list(errors)}, Message: {message}"
                )
        elif not response.headers.get("content-type", "").startswith("application/json"):
            text = (
                f"HTTP response with status code {status} does not contain "
                "Content-Type: application/json"
            )
        elif error is None:
            text = (
                f"HTTP response failed with status code {status} and no JSON error object "
                "was present"
            )
        else:
            text = (
                f"HTTP response failed with status code {status}, message: {message} (code: {code})"
            )
            if isinstance(errors, list) and errors:
                more = len(errors) - 1
                detail = str(errors[0])
                if more:
                    detail += f" (and {more} more error{'s' if more > 1 else ''}...)"
                text += f": {detail}"
        raise RestError(text, status, code)

    def _log(self, method: str, path: str, query: str, body: Any, status: int | None) -> None:
        if not CALL_LOG.isEnabledFor(logging.DEBUG):
            return
        record = {
            "client": self.client,
            "method": method,
            "path": path,
            "query": query,
            "body": body,
            "status": status,
        }
        CALL_LOG.debug(labelled("rest " + mask_keys(json.dumps(record, sort_keys=True))))


def _go_list(errors: Any) -> str:
    """Go's `%v` of the decoded `errors` field."""
    if errors is None:
        return "<nil>"
    if isinstance(errors, list):
        return "[" + " ".join(str(e) for e in errors) + "]"
    return str(errors)


def log_calls_to(path: str | None) -> None:
    """Send the call log (REST calls and RPCs) to `path`; None leaves it off."""
    if not path:
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    CALL_LOG.addHandler(handler)
    CALL_LOG.setLevel(logging.DEBUG)
    CALL_LOG.propagate = False
