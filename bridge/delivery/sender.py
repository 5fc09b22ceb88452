"""The only code that talks to the PagerDuty Events API.

`Sender.send(event)` makes one POST and classifies the answer with the retry
policy table (`bridge.delivery.retry`) into `Delivered`, `RetryLater` or `Dead`. It never
sleeps or retries itself: the worker owns time, so waits are scheduled and survive
restarts.

The HTTP client is urllib3's connection pool, shared by the worker's sender threads
(thread-safe, keep-alive). requests on top of it (a session per thread) cost half again
as much CPU per send and 4 MB of memory for features one POST to one URL does not use;
what of them matters is kept: the proxy from the environment (`HTTPS_PROXY`,
`NO_PROXY`, ...) and the CA bundle (`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`, else
certifi's), both read once.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import urllib3
from urllib3.exceptions import (
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    TimeoutError,
)

from bridge.delivery.retry import (
    CONNECTION_RULE,
    TIMEOUT_RULE,
    Behaviour,
    Rule,
    parse_retry_after,
    rule_for,
)

# (connect, read): connecting is quick or broken; PagerDuty answers well within 10 s.
DEFAULT_TIMEOUT = (3.05, 10.0)
MAX_MESSAGE = 2000
# PagerDuty's answers are a few hundred bytes; more than this is not read.
MAX_ANSWER_BYTES = 64 << 10
USER_AGENT = "apica-pagerduty-bridge/0.1"
# Keep-alive connections kept open: one per send in flight (the worker's pool).
CONNECTIONS = 8
_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class Delivered:
    status: int
    message: str = ""


@dataclass(frozen=True)
class RetryLater:
    """Not taken this time. `after`: seconds PagerDuty asked for, None = use backoff."""

    after: float | None
    reason: str
    status: int | None = None
    message: str = ""


@dataclass(frozen=True)
class Dead:
    """PagerDuty will never take this event as it is. `loud`: the setup is wrong."""

    reason: str
    message: str
    status: int | None = None
    loud: bool = False


Outcome = Delivered | RetryLater | Dead


class Sender:
    """POST events to one Events API URL over a pool of keep-alive connections."""

    def __init__(
        self,
        events_url: str,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        connections: int = CONNECTIONS,
        clock: Callable[[], float] = time.time,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.events_url = events_url
        self._timeout = timeout
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self._urllib3_timeout = urllib3.Timeout(connect=connect, read=read)
        self._clock = clock
        self._connections, self._unusable = _connections_for(
            events_url, connections, os.environ if env is None else env)

    @property
    def longest_request(self) -> float:
        """Seconds one `send` may take at most (connect + read timeout): how long a
        request may still be in flight after its sender died (the lease on it)."""
        timeout = self._timeout
        return float(sum(timeout)) if isinstance(timeout, tuple) else 2 * float(timeout)

    def close(self) -> None:
        if self._connections is not None:
            self._connections.manager.clear()

    def send(self, event: dict[str, Any]) -> Outcome:
        """One attempt; never raises for network or HTTP trouble."""
        if self._connections is None:
            return RetryLater(None, "request_error", None, self._unusable)
        opener, target = self._connections.opener, self._connections.target
        data = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            response = opener.urlopen(
                "POST", target, body=data,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
                timeout=self._urllib3_timeout,
                redirect=False,  # a redirected POST could become a GET
                retries=False,  # the worker retries, with its backoff and pacing
                preload_content=False,
            )
            try:
                answer = response.read(MAX_ANSWER_BYTES)
                if response.read(1):
                    # A longer answer is cut: its rest, in the socket or already in a
                    # buffer, must not be read as the next answer on this connection.
                    response.close()
            finally:
                response.release_conn()
        except (NewConnectionError, ProxyError, ProtocolError, OSError) as exc:
            # Before TimeoutError: urllib3 makes NewConnectionError (refused, no such
            # host) a subclass of its connect timeout.
            return _from_rule(CONNECTION_RULE, None, _short(str(exc)), None)
        except TimeoutError as exc:
            return _from_rule(TIMEOUT_RULE, None, _short(str(exc)), None)
        except HTTPError as exc:
            # Anything else (bad URL, TLS setup): keep the event and keep trying.
            return RetryLater(None, "request_error", None, _short(f"{type(exc).__name__}: {exc}"))
        after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        message, errors = _message(answer)
        return _from_rule(rule_for(response.status, errors), response.status, message, after)


class _Connections(NamedTuple):
    """The pool manager (cleared on close), what a send calls `urlopen` on, and for what.

    Without a proxy: the URL's own pool and the URL's path, found once (the manager would
    parse the URL and look the pool up on every send: a fifth of a send's time here).
    Through a proxy: the proxy manager and the whole URL (it adds what the proxy needs).
    """

    manager: urllib3.PoolManager
    opener: urllib3.PoolManager | urllib3.HTTPConnectionPool
    target: str


def _connections_for(
    url: str, connections: int, env: Mapping[str, str]
) -> tuple[_Connections | None, str]:
    """The connections for `url` (through the environment's proxy for it, if any), or
    None and why the URL cannot be used."""
    parsed = urllib3.util.parse_url(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None, f"not an http(s) URL: {_short(url)}"
    ca_certs = next((env[name] for name in _CA_VARIABLES if env.get(name)), None)
    if ca_certs is None and parsed.scheme == "https":
        import certifi  # requests' default bundle; only needed for https

        ca_certs = certifi.where()
    options: dict[str, Any] = {"num_pools": 2, "maxsize": connections, "ca_certs": ca_certs}
    proxy = _proxy_for(parsed.scheme, parsed.host, env)
    if proxy is not None:
        manager = urllib3.ProxyManager(proxy, **options)
        return _Connections(manager, manager, url), ""
    manager = urllib3.PoolManager(**options)
    return _Connections(manager, manager.connection_from_url(url), parsed.request_uri), ""


def _proxy_for(scheme: str, host: str, env: Mapping[str, str]) -> str | None:
    """The proxy the environment names for `scheme`, unless `NO_PROXY` exempts `host`
    (the same variables as curl, requests and urllib: lower case wins)."""
    proxies: dict[str, str] = {}
    for name in sorted(env, key=str.islower):  # upper case first, lower case overrides
        if name.lower().endswith("_proxy") and env[name]:
            proxies[name[:-len("_proxy")].lower()] = env[name]
    proxy = proxies.get(scheme) or proxies.get("all")
    if proxy is None or urllib.request.proxy_bypass_environment(host, proxies):
        return None
    return proxy


def classify(status: int, message: str = "", retry_after: float | None = None,
             errors: tuple[str, ...] = ()) -> Outcome:
    """The outcome for an HTTP status (exposed for tests and `test-route`)."""
    return _from_rule(rule_for(status, errors), status, message, retry_after)


def _from_rule(rule: Rule, status: int | None, message: str, after: float | None) -> Outcome:
    behaviour = rule.behaviour
    if behaviour is Behaviour.DONE:
        return Delivered(status or 0, message)
    if behaviour is Behaviour.RETRY_AFTER:
        return RetryLater(after, rule.reason, status, message)
    if behaviour is Behaviour.BACKOFF:
        return RetryLater(None, rule.reason, status, message)
    return Dead(rule.reason, message, status, loud=behaviour is Behaviour.DEAD_LOUD)


def _message(answer: bytes) -> tuple[str, tuple[str, ...]]:
    """PagerDuty's own words: `message` plus `errors` from its JSON, else the raw text;
    and the `errors` alone."""
    try:
        body = json.loads(answer)
    except ValueError:
        return _short(answer.decode("utf-8", errors="replace").strip()), ()
    if not isinstance(body, dict):
        return _short(json.dumps(body)), ()
    message = str(body.get("message") or body.get("status") or "")
    found = body.get("errors")
    errors = tuple(str(e) for e in found) if isinstance(found, list) else ()
    if errors:
        message = f"{message}: " + "; ".join(errors)
    return _short(message), errors


def _short(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."
