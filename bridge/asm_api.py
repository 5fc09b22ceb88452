"""The one module of the bridge that talks to the ASM REST API v3 (read-only calls).

    settings = load_asm_settings(os.environ)        # bridge.asm_config
    credential = load_asm_credential(os.environ)
    with AsmClient(settings, credential) as asm:
        checks = asm.list_checks(enabled=True)
        latest = asm.most_recent_result(101)

Every request has a time limit from connecting to its last byte, reads at most
`max_body_bytes`, and 429, 5xx and network errors are retried with backoff
(`RetryPolicy`; what each answer means is the table `STATUS_VERDICTS`). Calls raise
only `AsmApiError` and its subclasses, with one-line messages that never hold the
credential. `AsmDeadlineClient` is for callers that must not wait (enrichment): a
total deadline per call, no retries.

Authentication is HTTP Basic (`user:password`) or ASM's `auth_ticket` query
parameter. The ticket is part of the URL, so no URL is ever logged or put in an
error (`bridge.asm_config.redact_ticket` for ASM's own words, a filter on urllib3's
request lines), and redirects are not followed (the ticket would go along).
"""

from __future__ import annotations

import enum
import json
import logging
import math
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from bridge.asm_config import (
    API_URL_ENV,
    MAX_TIMEOUT,
    AsmApiSettings,
    AsmCredential,
    BasicCredential,
    guard_urllib3_logs,
    redact_ticket,
)
from bridge.asm_model import AsmCheck, AsmResult, parse_check, parse_checks, parse_results
from bridge.delivery.retry import Backoff, parse_retry_after
from bridge.errors import (
    AsmApiError,
    AsmAuthError,
    AsmNotFound,
    AsmUnavailable,
)
from contract.files import describe_size
from contract.redact import last4

log = logging.getLogger("bridge.asm_api")

#: A check list is about 1 KB per check: this is room for some 30,000 checks.
DEFAULT_MAX_BODY_BYTES = 32 << 20
MAX_ERROR_TEXT = 200
USER_AGENT = "apica-pagerduty/0.1 (asm-api)"
_CHUNK = 64 << 10


# -- what each answer means ---------------------------------------------------------------


class Verdict(enum.Enum):
    OK = "ok"
    RETRY = "retry"  # honour Retry-After if it comes, else back off
    AUTH = "auth"  # the credential is wrong: never retried
    NOT_FOUND = "not_found"
    REFUSED = "refused"  # this request will never work as it is


STATUS_VERDICTS: Mapping[int, Verdict] = {
    401: Verdict.AUTH,
    403: Verdict.AUTH,
    404: Verdict.NOT_FOUND,
    408: Verdict.RETRY,
    429: Verdict.RETRY,
}
CLASS_VERDICTS: Mapping[int, Verdict] = {2: Verdict.OK, 4: Verdict.REFUSED, 5: Verdict.RETRY}
# 1xx and 3xx: redirects are not followed (the ticket would travel with them).
DEFAULT_VERDICT = Verdict.REFUSED


def verdict_for(status: int) -> Verdict:
    return STATUS_VERDICTS.get(status) or CLASS_VERDICTS.get(status // 100, DEFAULT_VERDICT)


#: Waits of a second or two: ASM is read, not written, and callers have their own schedule.
ASM_BACKOFF = Backoff(base=0.5, factor=2.0, cap=8.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a call is tried, and how long it waits in between."""

    attempts: int = 4
    backoff: Backoff = ASM_BACKOFF
    #: A Retry-After longer than this is not waited for: the call gives up at once.
    max_wait: float = 30.0


DEFAULT_POLICY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=1)


class _Transient(Exception):
    """One attempt failed in a way worth retrying; `reason` is safe to show."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


# -- the client ---------------------------------------------------------------------------


def _no_netrc(request: requests.PreparedRequest) -> requests.PreparedRequest:
    # A truthy `auth` keeps requests from sending ~/.netrc's credentials along
    # with the ticket; the ticket itself travels in the query.
    return request


class AsmClient:
    """Read-only calls to one ASM account. Use from one thread at a time (one Session).

    `budget` (seconds) bounds each public call as a whole, retries and waits
    included; None leaves it to the policy (attempts x timeout + waits).
    """

    def __init__(
        self,
        settings: AsmApiSettings,
        credential: AsmCredential,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        budget: float | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        logger: logging.Logger = log,
    ) -> None:
        guard_urllib3_logs()
        self.settings = settings
        self._credential = credential
        self._policy = policy
        self._max_body = max_body_bytes
        self._budget = budget
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._log = logger
        self._session = session_factory()
        self._session.headers["User-Agent"] = USER_AGENT
        self._session.headers["Accept"] = "application/json"
        if isinstance(credential, BasicCredential):
            self._auth: Any = (credential.user, credential.password)
            self._auth_params: list[tuple[str, str]] = []
        else:
            self._auth = _no_netrc
            self._auth_params = [("auth_ticket", credential.ticket)]

    def __enter__(self) -> AsmClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # -- calls --------------------------------------------------------------------------

    def list_checks(
        self,
        *,
        enabled: bool | None = None,
        severities: str | None = None,
        include_tags: Iterable[str] = (),
        exclude_tags: Iterable[str] = (),
        include_tag_op: str | None = None,
    ) -> tuple[AsmCheck, ...]:
        """`GET /checks`: every check this credential sees, filtered as asked.

        `severities`: letters of I, W, E, F ("EF"). Tag filters are ASM's syntax
        (`tag_filter` writes them); `include_tag_op` is "or" (ASM's default) or "and".
        """
        params: list[tuple[str, str]] = []
        if enabled is not None:
            params.append(("enabled", "true" if enabled else "false"))
        if severities is not None:
            if not severities or set(severities) - set("IWEF"):
                raise ValueError(f"severities must be letters of I, W, E, F (got {severities!r})")
            params.append(("severity", severities))
        params += [("include_tag", _tag_text(tag)) for tag in include_tags]
        params += [("exclude_tag", _tag_text(tag)) for tag in exclude_tags]
        if include_tag_op is not None:
            if include_tag_op not in ("or", "and"):
                raise ValueError(f"include_tag_op must be 'or' or 'and' (got {include_tag_op!r})")
            params.append(("include_tag_op", include_tag_op))
        what = "GET /checks"
        return parse_checks(self._get("/checks", params, what), self._about(what))

    def get_check(self, check_id: int) -> AsmCheck:
        """`GET /checks/{id}`; `AsmNotFound` if ASM has no such check (for this user)."""
        path = f"/checks/{_check_id(check_id)}"
        what = f"GET {path}"
        return parse_check(self._get(path, [], what), self._about(what))

    def most_recent_results(self, check_id: int, count: int = 1) -> tuple[AsmResult, ...]:
        """The `count` newest results (`mostrecent=count&detail_level=1`), newest first."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer (got {count!r})")
        path = f"/checks/{_check_id(check_id)}/results"
        params = [("mostrecent", str(count)), ("detail_level", "1")]
        results = self._results(path, params)
        return tuple(sorted(results, key=lambda r: r.timestamp, reverse=True))

    def most_recent_result(self, check_id: int) -> AsmResult | None:
        """The newest result, or None for a check that has none yet."""
        found = self.most_recent_results(check_id, 1)
        return found[0] if found else None

    def results_between(
        self, check_id: int, start: datetime, end: datetime
    ) -> tuple[AsmResult, ...]:
        """Results from `start` to `end` (aware datetimes; detail level 1), oldest first."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        if start > end:
            raise ValueError("start must not be after end")
        path = f"/checks/{_check_id(check_id)}/results"
        params = [
            ("fromMillisecondsUtc", str(_epoch_ms(start))),
            ("toMillisecondsUtc", str(_epoch_ms(end))),
            ("detail_level", "1"),
        ]
        return tuple(sorted(self._results(path, params), key=lambda r: r.timestamp))

    def _results(self, path: str, params: list[tuple[str, str]]) -> tuple[AsmResult, ...]:
        what = f"GET {path}"
        return parse_results(self._get(path, params, what), self._about(what))

    # -- one GET, retried ------------------------------------------------------------

    def _about(self, what: str) -> str:
        return f"ASM API {self.settings.host}: {what}"

    def _get(self, path: str, params: list[tuple[str, str]], what: str) -> Any:
        query = list(params)
        if self.settings.customer_context:
            query.append(("customer_context", "1"))
        query += self._auth_params
        deadline = None if self._budget is None else self._clock() + self._budget
        policy = self._policy
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(path, query, what, deadline)
            except _Transient as failure:
                reason, wait = failure.reason, failure.retry_after
            tries = f"{attempt} attempt{'s' * (attempt != 1)}"
            if attempt >= policy.attempts:
                raise AsmUnavailable(f"{self._about(what)}: {reason} ({tries})") from None
            if wait is None:
                wait = policy.backoff.delay(attempt, self._rng)
            elif wait > policy.max_wait:
                raise AsmUnavailable(
                    f"{self._about(what)}: {reason}, and ASM asks to wait {wait:.0f} s "
                    f"(more than {policy.max_wait:.0f} s) ({tries})"
                ) from None
            if deadline is not None and self._clock() + wait >= deadline:
                raise AsmUnavailable(
                    f"{self._about(what)}: {reason}; no time left to retry ({tries})"
                ) from None
            self._log.warning(
                "ASM API call failed; retrying",
                extra={"event": "asm_api_retry", "call": what, "attempt": attempt,
                       "reason": reason, "wait": round(wait, 3)},
            )
            self._sleep(wait)

    def _attempt(
        self, path: str, query: list[tuple[str, str]], what: str, call_deadline: float | None
    ) -> Any:
        started = self._clock()
        deadline = started + self.settings.timeout
        if call_deadline is not None:
            deadline = min(deadline, call_deadline)
        limit = max(deadline - started, 0.001)
        try:
            response = self._session.get(
                self.settings.api_url + path,
                params=query,
                auth=self._auth,
                timeout=(limit, limit),
                stream=True,
                allow_redirects=False,
            )
            try:
                status = response.status_code
                body = self._read(response, what, deadline)
            finally:
                response.close()
        except requests.Timeout:
            raise _Transient(f"no answer within {limit:.3g} s") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Transient(_connection_failure(exc)) from None
        except requests.RequestException as exc:
            raise AsmApiError(
                f"{self._about(what)}: the request failed ({type(exc).__name__})"
            ) from None
        verdict = verdict_for(status)
        if verdict is Verdict.OK:
            return self._json(body, what)
        if verdict is Verdict.RETRY:
            after = parse_retry_after(response.headers.get("Retry-After"), time.time())
            raise _Transient(f"ASM answered {status}{_asm_words(body)}", after)
        raise self._refusal(verdict, status, response.headers, body, what)

    def _read(self, response: requests.Response, what: str, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise self._too_large(f"{int(declared):,} bytes", what)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > self._max_body:
                raise self._too_large(f"over {self._max_body:,} bytes", what)
            if self._clock() > deadline:
                raise _Transient("the answer did not arrive in time")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, size: str, what: str) -> AsmApiError:
        return AsmApiError(
            f"{self._about(what)}: the answer is {size}; at most {self._max_body:,} bytes "
            f"({describe_size(self._max_body)}) are read"
        )

    def _json(self, body: bytes, what: str) -> Any:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise AsmApiError(f"{self._about(what)}: the answer is not JSON") from None

    def _refusal(
        self, verdict: Verdict, status: int, headers: Mapping[str, str], body: bytes, what: str
    ) -> AsmApiError:
        about = self._about(what)
        if verdict is Verdict.AUTH:
            return AsmAuthError(
                f"{about}: ASM refused the credential ({status}); check {self._credential_name} "
                "(see docs/asm.md)", status=status,
            )
        if verdict is Verdict.NOT_FOUND:
            return AsmNotFound(
                f"{about}: not found (404): no such check, or this ASM user cannot see it",
                status=status,
            )
        if 300 <= status < 400:
            target = urlsplit(headers.get("Location", ""))
            where = f"{target.scheme}://{target.netloc}" if target.netloc else "elsewhere"
            return AsmApiError(
                f"{about}: ASM redirects to {where} ({status}); set {API_URL_ENV} to the "
                "API's own URL", status=status,
            )
        return AsmApiError(f"{about}: ASM refused the request ({status}){_asm_words(body)}",
                           status=status)

    @property
    def _credential_name(self) -> str:
        if isinstance(self._credential, BasicCredential):
            return f"the ASM user {self._credential.user!r} and its password"
        return f"the auth_ticket {last4(self._credential.ticket)}"


# -- for callers that must not wait -----------------------------------------------------

T = TypeVar("T")


class AsmDeadlineClient:
    """ASM calls that return within `deadline` seconds whatever ASM does (enrichment).

    Each call runs in its own daemon thread with one attempt and a budget of
    `deadline`; the caller waits at most `deadline` and then gets `AsmUnavailable`
    while the thread runs out on its own time limits. At most `max_in_flight`
    calls run at once: beyond that a call fails at once instead of piling up
    threads while ASM hangs.
    """

    def __init__(
        self,
        settings: AsmApiSettings,
        credential: AsmCredential,
        *,
        deadline: float = 1.0,
        max_in_flight: int = 4,
        session_factory: Callable[[], requests.Session] = requests.Session,
        max_body_bytes: int = 1 << 20,
    ) -> None:
        if not 0 < deadline <= MAX_TIMEOUT:  # also refuses NaN
            raise ValueError(f"deadline must be in (0, {MAX_TIMEOUT}] seconds")
        self.settings = settings
        self.deadline = deadline
        self._credential = credential
        self._session_factory = session_factory
        self._max_body = max_body_bytes
        self._max_in_flight = max_in_flight
        self._slots = threading.BoundedSemaphore(max_in_flight)

    def most_recent_result(self, check_id: int) -> AsmResult | None:
        return self._within(lambda asm: asm.most_recent_result(check_id),
                            f"GET /checks/{_check_id(check_id)}/results")

    def get_check(self, check_id: int) -> AsmCheck:
        return self._within(lambda asm: asm.get_check(check_id),
                            f"GET /checks/{_check_id(check_id)}")

    def _within(self, call: Callable[[AsmClient], T], what: str) -> T:
        about = f"ASM API {self.settings.host}: {what}"
        if not self._slots.acquire(blocking=False):
            raise AsmUnavailable(f"{about}: {self._max_in_flight} earlier calls are still "
                                 "waiting for ASM; not adding another")
        outcome: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

        def work() -> None:
            try:
                with AsmClient(self.settings, self._credential, policy=NO_RETRY,
                               budget=self.deadline, max_body_bytes=self._max_body,
                               session_factory=self._session_factory) as asm:
                    outcome.put((True, call(asm)))
            except BaseException as exc:  # handed to the caller, never lost in a thread
                outcome.put((False, exc))
            finally:
                self._slots.release()

        threading.Thread(target=work, name="asm-deadline", daemon=True).start()
        try:
            ok, value = outcome.get(timeout=self.deadline)
        except queue.Empty:
            raise AsmUnavailable(f"{about}: no answer within {self.deadline:g} s") from None
        if ok:
            return value
        if isinstance(value, AsmApiError):
            raise value
        raise AsmApiError(f"{about}: failed ({type(value).__name__})")


# -- small pure helpers ------------------------------------------------------------------


def tag_filter(key: str | None = None, values: Iterable[str] = ()) -> str:
    """ASM's tag filter text: "Key" (has the key), "Key~V1;V2" (one of the values under
    the key) or "~V" (the value under any key)."""
    values = tuple(values)
    if key is None and not values:
        raise ValueError("a tag filter needs a key, values or both")
    for part in (key or "", *values):
        if any(mark in part for mark in "~;") or part != part.strip():
            raise ValueError(f"tag filter part {part!r} may not hold '~' or ';' or edge spaces")
    if key is not None and (not key or key.startswith(".")):
        raise ValueError(f"tag key {key!r} must be a name (a leading '.' means an id to ASM)")
    if any(not value for value in values):
        raise ValueError("tag values may not be empty")
    return (key or "") + ("~" + ";".join(values) if values else "")


def _tag_text(tag: str) -> str:
    if not isinstance(tag, str) or not tag.strip():
        raise ValueError(f"a tag filter must be non-empty text (got {tag!r})")
    return tag


def _check_id(check_id: int) -> int:
    if isinstance(check_id, bool) or not isinstance(check_id, int) or check_id < 0:
        raise ValueError(f"a check id is a non-negative integer (got {check_id!r})")
    return check_id


def _epoch_ms(when: datetime) -> int:
    return math.floor(when.timestamp() * 1000)


def _asm_words(body: bytes) -> str:
    """ASM's own explanation from an error body, as ': <text>' (one line, redacted), or ''."""
    text = body[: MAX_ERROR_TEXT * 4].decode("utf-8", "replace")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        text = data["Message"]
    elif data is not None or text.lstrip().startswith("<"):
        return ""  # a JSON shape we do not know, or an HTML error page: the status says it
    text = redact_ticket(" ".join(text.split()))
    if not text:
        return ""
    if len(text) > MAX_ERROR_TEXT:
        text = text[: MAX_ERROR_TEXT - 3] + "..."
    return f": {text}"


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _connection_failure(exc: Exception) -> str:
    # str(exc) names the URL, ticket and all: take only the operating system's words.
    text = str(exc)
    found = _ERRNO.search(text)
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed"
    if "timed out" in text:  # a read timeout while streaming comes as a ConnectionError
        return "the answer stopped arriving (read timed out)"
    if found:
        return f"cannot connect ({found.group(1).strip().rstrip(',')})"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke during the answer"
    return "cannot connect"
