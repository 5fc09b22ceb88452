"""Read PagerDuty's REST API v2: GET only, token auth, bounded answers, 429s waited out.

The one place infra talks to PagerDuty itself (the Pulumi provider does everything
else). Answers are read up to `MAX_ANSWER_BYTES` within `DEADLINE_SECONDS`; a 429 is
retried after PagerDuty's `ratelimit-reset` seconds (capped), a few times. Errors are
`RestReadError` with one line that never contains the token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from contract.errors import UnreadableFile
from contract.files import read_bounded
from infra.errors import InfraError

DEFAULT_API_URL = "https://api.pagerduty.com"
MAX_ANSWER_BYTES = 4 << 20
DEADLINE_SECONDS = 30.0
CONNECT_TIMEOUT, READ_TIMEOUT = 5.0, 10.0
RATE_LIMIT_RETRIES = 3
MAX_RATE_LIMIT_WAIT = 60.0
_CHUNK = 64 << 10


class RestReadError(InfraError):
    """A GET that gave no usable answer; `str()` says which and what to do."""


class RestReader:
    """GET `<api_url><path>` with PagerDuty's headers; `sleep` and `clock` are injectable."""

    def __init__(
        self,
        api_url: str,
        token: str,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The JSON object answered, or None for 404 (PagerDuty's "Not Found")."""
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            response = self._send(path, params)
            try:
                if response.status_code != 429 or attempt == RATE_LIMIT_RETRIES:
                    return self._answer(path, response)
                wait = _reset_seconds(response.headers.get("ratelimit-reset"))
            finally:
                response.close()
            self._sleep(wait)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _send(self, path: str, params: Mapping[str, Any] | None) -> requests.Response:
        headers = {
            "Authorization": f"Token token={self._token}",
            "Accept": "application/vnd.pagerduty+json;version=2",
        }
        try:
            return self._session.get(
                self.api_url + path,
                params=params,
                headers=headers,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                stream=True,
                # PagerDuty does not redirect its API; following one would carry the token.
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            # The exception's text may name the URL, never the headers; say only its kind.
            raise RestReadError(
                f"GET {path}: cannot reach {self.api_url} ({type(exc).__name__})"
            ) from None

    def _answer(self, path: str, response: requests.Response) -> dict[str, Any] | None:
        status = response.status_code
        if status == 404:
            return None
        if status == 401:
            raise RestReadError(f"GET {path}: PagerDuty refused the token (401): check the token")
        if status == 403:
            raise RestReadError(f"GET {path}: the token may not read this (403)")
        if status == 429:
            raise RestReadError(f"GET {path}: still rate limited (429) after retries; try later")
        if status != 200:
            raise RestReadError(f"GET {path}: PagerDuty answered {status}")
        body = self._read(path, response)
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RestReadError(f"GET {path}: the answer is not JSON") from None
        if not isinstance(data, dict):
            raise RestReadError(f"GET {path}: the answer is not a JSON object")
        return data

    def _read(self, path: str, response: requests.Response) -> bytes:
        deadline = self._clock() + DEADLINE_SECONDS
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(_CHUNK):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise RestReadError(
                        f"GET {path}: the answer is over {MAX_ANSWER_BYTES:,} bytes"
                    )
                if self._clock() > deadline:
                    raise RestReadError(
                        f"GET {path}: the answer took over {DEADLINE_SECONDS:.0f} s"
                    )
        except requests.RequestException as exc:
            raise RestReadError(
                f"GET {path}: the answer broke off ({type(exc).__name__})"
            ) from None
        return b"".join(chunks)


def _reset_seconds(header: str | None) -> float:
    # PagerDuty: seconds until the limit resets; the Go clients wait that long.
    try:
        seconds = float(header) if header is not None else 1.0
    except ValueError:
        seconds = 1.0
    if seconds != seconds:  # NaN
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RATE_LIMIT_WAIT)


#: Where `apica-pd` reads a PagerDuty REST token from, unless a token file is given.
TOKEN_VARIABLE = "PAGERDUTY_TOKEN"
MAX_TOKEN_FILE_BYTES = 4096


def load_token(token_file: str | None, environ: Mapping[str, str]) -> str:
    """The REST token: from `token_file` if given, else `$PAGERDUTY_TOKEN`. Errors never
    show it."""
    if token_file is not None:
        try:
            raw = read_bounded(token_file, MAX_TOKEN_FILE_BYTES, what="token file")
            text = raw.decode("utf-8").strip()
        except UnreadableFile as exc:
            raise RestReadError(f"cannot read {exc}") from None
        except UnicodeDecodeError:
            raise RestReadError(f"token file {token_file}: not UTF-8 text") from None
        where = f"token file {token_file}"
    else:
        text = environ.get(TOKEN_VARIABLE, "").strip()
        where = TOKEN_VARIABLE
    if not text:
        if token_file is None:
            raise RestReadError(
                f"no PagerDuty REST token: set {TOKEN_VARIABLE} or pass --token-file FILE"
            )
        raise RestReadError(f"{where} is empty")
    if not text.isascii() or not text.isprintable() or any(c.isspace() for c in text):
        raise RestReadError(f"{where} must hold one token: one line, no spaces")
    return text


def check_api_url(url: str) -> str:
    """`url` without a trailing slash (the API's paths start with one); http(s) only."""
    if not url.startswith(("https://", "http://")) or not url.isprintable():
        raise RestReadError(f"--api-url must be an http(s) URL, e.g. {DEFAULT_API_URL}")
    return url.rstrip("/")
