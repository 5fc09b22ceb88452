"""The only code that talks to the PagerDuty Events API.

`Sender.send(event)` makes one POST and classifies the answer with the retry
policy table (`bridge.delivery.retry`) into `Delivered`, `RetryLater` or `Dead`. It never
sleeps or retries itself: the worker owns time, so waits are scheduled and survive
restarts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

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
USER_AGENT = "apica-pagerduty-bridge/0.1"


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
    """POST events to one Events API URL; one `requests.Session` per thread (keep-alive)."""

    def __init__(
        self,
        events_url: str,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        session_factory: Callable[[], requests.Session] = requests.Session,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.events_url = events_url
        self._timeout = timeout
        self._session_factory = session_factory
        self._clock = clock
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def _session(self) -> requests.Session:
        # Sessions are not documented thread-safe; the worker sends from a pool.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._session_factory()
            session.headers["User-Agent"] = USER_AGENT
            # With trust_env, requests re-reads the proxy and CA-bundle variables (a
            # scan of the whole environment) and ~/.netrc on every request: that was
            # a third of a send's CPU. We only ever post to one URL, so take the
            # environment's proxies and CA bundle for it once. (No .netrc: PagerDuty
            # is authenticated by the routing key in the body.)
            settings = session.merge_environment_settings(self.events_url, {}, None, None, None)
            session.trust_env = False
            session.proxies.update(settings["proxies"])
            session.verify = settings["verify"]
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    @property
    def longest_request(self) -> float:
        """Seconds one `send` may take at most (connect + read timeout): how long a
        request may still be in flight after its sender died (the lease on it)."""
        timeout = self._timeout
        return float(sum(timeout)) if isinstance(timeout, tuple) else 2 * float(timeout)

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def send(self, event: dict[str, Any]) -> Outcome:
        """One attempt; never raises for network or HTTP trouble."""
        data = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            response = self._session().post(
                self.events_url,
                data=data,
                headers={"Content-Type": "application/json"},
                timeout=self._timeout,
                allow_redirects=False,  # a redirected POST could become a GET
            )
        except requests.Timeout as exc:
            return _from_rule(TIMEOUT_RULE, None, _short(str(exc)), None)
        except requests.ConnectionError as exc:
            return _from_rule(CONNECTION_RULE, None, _short(str(exc)), None)
        except requests.RequestException as exc:
            # Anything else (bad URL, TLS setup): keep the event and keep trying.
            return RetryLater(None, "request_error", None, _short(f"{type(exc).__name__}: {exc}"))
        after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        message, errors = _message(response)
        return _from_rule(rule_for(response.status_code, errors), response.status_code,
                          message, after)


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


def _message(response: requests.Response) -> tuple[str, tuple[str, ...]]:
    """PagerDuty's own words: `message` plus `errors` from its JSON, else the raw text;
    and the `errors` alone."""
    try:
        body = response.json()
    except ValueError:
        return _short(response.text.strip()), ()
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
