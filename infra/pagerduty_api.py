"""The infra lane's one reader of PagerDuty's REST API v2.

Used by `apica-pd import` (the account to adopt), `apica-pd routes verify` (does each
route's integration take Events API v2 events?) and the routes hand-off (is a previous
key's integration gone?). The Pulumi provider does everything else.

requests, not PagerDuty's own client: `pagerduty` (python-pagerduty) refuses plain-http
base URLs since v6, and the sandbox a test points this at is plain http on loopback.
What the client would do is done here, as PagerDuty documents it:

* offset pagination: `limit` (100, PagerDuty's maximum), `offset`, follow `more`;
  `offset + limit` may not pass 10,000 (PagerDuty answers 400), so a longer list is
  an error that says how to narrow the import;
* cursor pagination for `/alert_grouping_settings` (`after`, until it is null);
* 429: wait `ratelimit-reset` seconds (else an exponential backoff), a bounded
  number of tries; 5xx and network errors get the same bounded retries;
* every answer is read bounded (`MAX_ANSWER_BYTES`, within `DEADLINE_SECONDS`) with
  connect and read timeouts; redirects are not followed (they would carry the token).

Only GETs. Errors are `PagerDutyApiError`, one line naming the request and what to do;
the token is never part of one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
import urllib3

from contract.errors import UnreadableFile
from contract.files import read_bounded
from contract.vocabulary import PAGERDUTY_REST_URL, PAGERDUTY_TOKEN_ENV
from infra.errors import InfraError

ACCEPT = "application/vnd.pagerduty+json;version=2"
PAGE_LIMIT = 100
#: PagerDuty: "the sum of the offset and limit parameters cannot exceed 10000".
OFFSET_CAP = 10_000
MAX_TRIES = 5
#: Waits between tries: `ratelimit-reset` when given, else BACKOFF * 2**n, at most MAX_WAIT.
BACKOFF_SECONDS = 1.0
MAX_WAIT_SECONDS = 60.0
#: A page of 100 services with their integrations is well under 1 MiB.
MAX_ANSWER_BYTES = 16 << 20
#: The whole answer body within this long, however slowly it trickles in.
DEADLINE_SECONDS = 60.0
#: Cursor pages followed at most (a server that never ends its cursor must not hang us).
MAX_CURSOR_PAGES = 1000
TIMEOUT = (10.0, 30.0)  # connect, read (each socket read)
MAX_TOKEN_FILE_BYTES = 4096
_CHUNK = 64 << 10

Params = Mapping[str, str | int | list[str]]


class PagerDutyApiError(InfraError):
    """A request (or its token) that failed for good; `status` is the HTTP status (None:
    no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PagerDutyApi:
    """GETs against PagerDuty's REST API v2 at `base_url` (no trailing slash needed);
    `sleep` and `clock` are injectable."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_tries: int = MAX_TRIES,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> None:
        if not base_url.startswith(("https://", "http://")) or not base_url.isprintable():
            raise PagerDutyApiError(f"--api-url must be an http(s) URL, e.g. {PAGERDUTY_REST_URL}")
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._headers = {
            "Accept": ACCEPT,
            "Authorization": f"Token token={token}",
            "User-Agent": "apica-pd",
        }
        self._sleep = sleep
        self._clock = clock
        self._max_tries = max_tries
        self._timeout = timeout

    def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        """One GET; the decoded JSON object (a 404 is an error)."""
        found = self._get(path, params, absent_ok=False)
        assert found is not None  # only absent_ok answers None
        return found

    def get_or_none(self, path: str, params: Params | None = None) -> dict[str, Any] | None:
        """One GET; the decoded JSON object, or None for a 404 (the object does not exist)."""
        return self._get(path, params, absent_ok=True)

    def _get(self, path: str, params: Params | None, *, absent_ok: bool) -> dict[str, Any] | None:
        what = f"GET {path}"
        for attempt in range(1, self._max_tries + 1):
            last = attempt == self._max_tries
            try:
                response = self._session.get(
                    self.base_url + path,
                    params=dict(params or {}),
                    headers=self._headers,
                    timeout=self._timeout,
                    stream=True,
                    # PagerDuty does not redirect its API; following one would carry the token.
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                # The exception's text may name the URL, never the headers; say only its kind.
                if last:
                    raise PagerDutyApiError(
                        f"{what}: cannot reach {self.base_url} ({type(exc).__name__}) after "
                        f"{attempt} tries; check --api-url and the network"
                    ) from None
                self._sleep(_backoff(attempt))
                continue
            with response:
                status = response.status_code
                if status == 429 or status >= 500:
                    if last:
                        raise self._failed(what, response, f" after {attempt} tries")
                    self._sleep(_wait(response, attempt))
                    continue
                if status == 404 and absent_ok:
                    return None
                if status != 200:
                    raise self._failed(what, response)
                return self._json_object(what, response)
        raise AssertionError("unreachable: the last try returns or raises")

    def list_all(self, path: str, collection: str, params: Params | None = None) -> list[Any]:
        """Every item of a list endpoint with classic (offset) pagination."""
        items: list[Any] = []
        offset = 0
        while True:
            page = self.get(path, {**(params or {}), "limit": PAGE_LIMIT, "offset": offset})
            found = page.get(collection)
            if not isinstance(found, list):
                raise PagerDutyApiError(f"GET {path}: the answer has no {collection!r} list")
            items.extend(found)
            if not page.get("more") or not found:
                return items
            offset += len(found)
            if offset + PAGE_LIMIT > OFFSET_CAP:
                raise PagerDutyApiError(
                    f"GET {path}: more than {OFFSET_CAP - PAGE_LIMIT + len(found):,} "
                    f"{collection}, and PagerDuty lists no further than offset + limit = "
                    f"{OFFSET_CAP:,}: import fewer at a time (--service NAME or --team NAME)"
                )

    def list_cursor(self, path: str, collection: str, params: Params | None = None) -> list[Any]:
        """Every item of a list endpoint with `after` cursors (alert grouping settings)."""
        items: list[Any] = []
        after: str | None = None
        for _ in range(MAX_CURSOR_PAGES):
            query: dict[str, Any] = {**(params or {}), "limit": PAGE_LIMIT}
            if after is not None:
                query["after"] = after
            page = self.get(path, query)
            found = page.get(collection)
            if not isinstance(found, list):
                raise PagerDutyApiError(f"GET {path}: the answer has no {collection!r} list")
            items.extend(found)
            after = page.get("after")
            if not after or not found:
                return items
        raise PagerDutyApiError(
            f"GET {path}: still more after {MAX_CURSOR_PAGES} pages; the cursor never ends"
        )

    def _read(self, what: str, response: requests.Response) -> bytes:
        """The body, at most MAX_ANSWER_BYTES within DEADLINE_SECONDS."""
        deadline = self._clock() + DEADLINE_SECONDS
        chunks, size = [], 0
        # read1: at most one socket read per call, so the deadline holds for a trickle too.
        while chunk := response.raw.read1(_CHUNK, decode_content=True):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise PagerDutyApiError(
                    f"{what}: the answer is more than {MAX_ANSWER_BYTES >> 20} MiB; is "
                    "--api-url PagerDuty's REST API?",
                    response.status_code,
                )
            if self._clock() > deadline:
                raise PagerDutyApiError(
                    f"{what}: the answer took over {DEADLINE_SECONDS:.0f} s; try again later",
                    response.status_code,
                )
        return b"".join(chunks)

    def _json_object(self, what: str, response: requests.Response) -> dict[str, Any]:
        try:
            data = json.loads(self._read(what, response))
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise PagerDutyApiError(
                f"{what}: the answer broke off ({type(exc).__name__})"
            ) from None
        except (ValueError, UnicodeDecodeError):
            raise PagerDutyApiError(
                f"{what}: the answer is not JSON; is --api-url PagerDuty's REST API?", 200
            ) from None
        if not isinstance(data, dict):
            raise PagerDutyApiError(f"{what}: the answer is not a JSON object", 200)
        return data

    def _failed(
        self, what: str, response: requests.Response, tries: str = ""
    ) -> PagerDutyApiError:
        status = response.status_code
        try:
            detail = json.loads(self._read(what, response)).get("error", {}).get("message")
        except (
            PagerDutyApiError,
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            ValueError,
            AttributeError,
        ):
            detail = None
        said = f" ({str(detail)[:200]})" if detail else ""
        hint = _HINTS.get(
            status, "PagerDuty had a problem; try again later" if status >= 500 else ""
        )
        return PagerDutyApiError(
            f"{what}: answered {status}{said}{tries}" + (f": {hint}" if hint else ""), status
        )


def _backoff(attempt: int) -> float:
    return min(MAX_WAIT_SECONDS, BACKOFF_SECONDS * 2 ** (attempt - 1))


def _wait(response: requests.Response, attempt: int) -> float:
    """PagerDuty's `ratelimit-reset` (seconds) when it sends one, else the backoff."""
    reset = response.headers.get("ratelimit-reset")
    try:
        seconds = float(reset) if reset is not None else None
    except ValueError:
        seconds = None
    if seconds is None or seconds != seconds or seconds < 0:  # absent, unreadable or NaN
        return _backoff(attempt)
    return min(MAX_WAIT_SECONDS, max(seconds, 0.1))


_HINTS = {
    401: f"PagerDuty refused the token: check {PAGERDUTY_TOKEN_ENV} or --token-file (an EU "
    "account needs --api-url https://api.eu.pagerduty.com)",
    403: "the token may not read this: use a REST API key with read access",
    404: "not found (deleted meanwhile, or --api-url is not PagerDuty's REST API?)",
    429: "PagerDuty's rate limit; try again in a minute",
}


def read_token(token_file: str | None, environ: Mapping[str, str]) -> str:
    """The REST token: from `token_file` (bounded read) if given, else
    `$PAGERDUTY_TOKEN`. Errors never show it."""
    if token_file is not None:
        try:
            raw = read_bounded(token_file, MAX_TOKEN_FILE_BYTES, what="token file")
            text = raw.decode("utf-8").strip()
        except UnreadableFile as exc:
            raise PagerDutyApiError(f"cannot read {exc}") from None
        except UnicodeDecodeError:
            raise PagerDutyApiError(f"token file {token_file}: not UTF-8 text") from None
        where = f"token file {token_file}"
    else:
        text = environ.get(PAGERDUTY_TOKEN_ENV, "").strip()
        where = PAGERDUTY_TOKEN_ENV
    if not text:
        if token_file is None:
            raise PagerDutyApiError(
                f"no PagerDuty REST API token: set {PAGERDUTY_TOKEN_ENV} or pass "
                "--token-file FILE"
            )
        raise PagerDutyApiError(f"{where} is empty")
    if not text.isascii() or not text.isprintable() or any(c.isspace() for c in text):
        raise PagerDutyApiError(f"{where} must hold one token: one line, no spaces")
    return text
