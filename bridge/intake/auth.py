"""Who may post webhooks: HTTP Basic users and shared tokens, several at once.

Several credentials are valid together so they can be rotated: add the new one,
switch ASM's target, remove the old one. Every configured credential is compared
with `hmac.compare_digest` and all of them are always compared, so the answer time
does not tell which one came close. Credentials come from the environment or a
file (never the command line, where `ps` shows them).

Credentials file: one per line, `#` comments and blank lines ignored::

    token <shared token>
    basic <user>:<password>
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bridge.errors import ConfigError
from contract.errors import UnreadableFile
from contract.files import read_bounded
from contract.redact import last4

DEFAULT_TOKEN_HEADER = "X-Apica-Token"
MIN_SECRET_LENGTH = 16
MAX_WEBHOOK_CREDENTIALS_BYTES = 1 << 20


@dataclass(frozen=True)
class Credentials:
    tokens: tuple[str, ...] = ()
    basic: tuple[tuple[str, str], ...] = ()  # (user, password)

    def __bool__(self) -> bool:
        return bool(self.tokens or self.basic)

    def __repr__(self) -> str:  # never show the secrets themselves
        return (
            f"Credentials(tokens=[{', '.join(last4(t) for t in self.tokens)}], "
            f"basic=[{', '.join(user for user, _ in self.basic)}])"
        )

    def merged(self, other: Credentials) -> Credentials:
        return Credentials(self.tokens + other.tokens, self.basic + other.basic)


@dataclass(frozen=True)
class Authenticator:
    credentials: Credentials
    token_header: str = DEFAULT_TOKEN_HEADER
    # Only an explicit choice turns authentication off (see `bridge.config`).
    disabled: bool = False
    _basic_lines: tuple[bytes, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        lines = tuple(
            f"{user}:{password}".encode() for user, password in self.credentials.basic
        )
        object.__setattr__(self, "_basic_lines", lines)

    def allows(self, headers: Mapping[str, str]) -> bool:
        """Does this request carry one of the configured credentials?"""
        if self.disabled:
            return True
        offered_token = _offered_token(headers, self.token_header)
        offered_basic = _offered_basic(headers)
        ok = False
        # No early exit: compare against every credential on every request.
        for token in self.credentials.tokens:
            ok |= offered_token is not None and hmac.compare_digest(
                offered_token, token.encode()
            )
        for line in self._basic_lines:
            ok |= offered_basic is not None and hmac.compare_digest(offered_basic, line)
        return ok


def parse_credentials_text(text: str, source: str) -> Credentials:
    tokens: list[str] = []
    basic: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, value = line.partition(" ")
        value = value.strip()
        if kind == "token" and value:
            tokens.append(_strong(value, f"{source}:{number}"))
        elif kind == "basic" and ":" in value:
            user, _, password = value.partition(":")
            basic.append((user, _strong(password, f"{source}:{number}")))
        else:
            # Never echo the line: it may hold a secret typed the wrong way.
            raise ConfigError(
                f"{source}:{number}: expected 'token <value>' or 'basic <user>:<password>'"
            )
    return Credentials(tuple(tokens), tuple(basic))


def load_credentials_file(path: str | os.PathLike[str]) -> Credentials:
    try:
        text = read_bounded(path, MAX_WEBHOOK_CREDENTIALS_BYTES, what="credentials file").decode()
    except UnreadableFile as exc:
        raise ConfigError(f"credentials file {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"credentials file {path}: is not UTF-8 text") from None
    return parse_credentials_text(text, str(path))


def credentials_from_env(env: Mapping[str, str]) -> Credentials:
    """APICA_PD_TOKENS="t1,t2" and APICA_PD_BASIC_AUTH="user:pass,user2:pass2"."""
    tokens = tuple(
        _strong(t.strip(), "APICA_PD_TOKENS")
        for t in env.get("APICA_PD_TOKENS", "").split(",") if t.strip()
    )
    basic = []
    for pair in env.get("APICA_PD_BASIC_AUTH", "").split(","):
        if not pair.strip():
            continue
        user, sep, password = pair.strip().partition(":")
        if not sep or not user:
            raise ConfigError("APICA_PD_BASIC_AUTH: expected user:password[,user:password]")
        basic.append((user, _strong(password, "APICA_PD_BASIC_AUTH")))
    return Credentials(tokens, tuple(basic))


def _strong(secret: str, where: str) -> str:
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{where}: a credential of {len(secret)} characters is too easy to guess; "
            f"use at least {MIN_SECRET_LENGTH}"
        )
    return secret


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def _offered_token(headers: Mapping[str, str], token_header: str) -> bytes | None:
    value = _header(headers, token_header)
    if value is None:
        scheme, _, rest = (_header(headers, "Authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            value = rest
    return value.strip().encode() if value else None


def _offered_basic(headers: Mapping[str, str]) -> bytes | None:
    scheme, _, rest = (_header(headers, "Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(rest.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
