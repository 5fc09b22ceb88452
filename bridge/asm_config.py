"""Where ASM's REST API is, and the one credential to call it with: from env or a file.

    settings = load_asm_settings(os.environ)      # APICA_PD_ASM_API_URL, _TIMEOUT, ...
    credential = load_asm_credential(os.environ)  # _AUTH_TICKET, _BASIC_AUTH or _CREDENTIALS_FILE

Errors are `ConfigError`s naming the variable or file line, in one line, and never
hold the secret. A credential shows itself only by its last four characters (a
ticket) or its user name; `redact_ticket` masks tickets in any text, and
`guard_urllib3_logs` in urllib3's request lines (the ticket travels in the query).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridge.errors import ConfigError
from contract.errors import UnreadableFile
from contract.files import read_bounded
from contract.redact import last4

#: Apica's US host; the EU, second and legacy hosts are in docs/asm.md.
DEFAULT_ASM_API_URL = "https://api-asm1.apica.io/v3"

API_URL_ENV = "APICA_PD_ASM_API_URL"
TIMEOUT_ENV = "APICA_PD_ASM_TIMEOUT"
CUSTOMER_CONTEXT_ENV = "APICA_PD_ASM_CUSTOMER_CONTEXT"
TICKET_ENV = "APICA_PD_ASM_AUTH_TICKET"
BASIC_ENV = "APICA_PD_ASM_BASIC_AUTH"
CREDENTIALS_FILE_ENV = "APICA_PD_ASM_CREDENTIALS_FILE"

DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 300.0
MAX_ASM_CREDENTIALS_BYTES = 64 << 10

# The bridge's own ASM settings (`bridge.config`): reconciliation's interval (seconds) and
# the failing severities it repairs; enrichment's deadline (no event waits longer than
# the 1 s). Here, not in those modules, so that reading the config imports
# neither of them.
RECONCILE_INTERVAL = 60.0
MIN_RECONCILE_INTERVAL = 1.0
MAX_RECONCILE_INTERVAL = 86_400.0
RECONCILE_SEVERITIES = "FEW"
ENRICH_DEADLINE = 1.0
MAX_ENRICH_DEADLINE = 1.0


# -- settings ---------------------------------------------------------------------------


class AsmApiSettings(BaseModel):
    """Where ASM's API is and how long to wait for it; nothing secret (see `AsmCredential`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_url: str = DEFAULT_ASM_API_URL
    #: Seconds one request may take, from connecting to its last byte.
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)
    #: Send `customer_context=1`: see the account's checks, not only the user's.
    customer_context: bool = False

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL like {DEFAULT_ASM_API_URL}")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                f"the URL holds a credential: give it as {TICKET_ENV}, {BASIC_ENV} or "
                f"{CREDENTIALS_FILE_ENV} instead"
            )
        if parts.query or parts.fragment:
            raise ValueError("the URL may not have a query or fragment")
        return value.strip().rstrip("/")

    @property
    def host(self) -> str:
        """The API's host (and port), as messages name it."""
        return urlsplit(self.api_url).netloc


_SETTING_VARIABLES = {
    "api_url": API_URL_ENV,
    "timeout": TIMEOUT_ENV,
    "customer_context": CUSTOMER_CONTEXT_ENV,
}


def load_asm_settings(
    env: Mapping[str, str], *, api_url: str | None = None
) -> AsmApiSettings:
    """Settings from `APICA_PD_ASM_*` variables (empty ones are unset); `api_url`, if given,
    wins over the variable. Errors name the variable, in one line."""
    values: dict[str, Any] = {
        setting: env[name].strip()
        for setting, name in _SETTING_VARIABLES.items()
        if env.get(name, "").strip()
    }
    if api_url is not None:
        values["api_url"] = api_url
    try:
        return AsmApiSettings(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        setting = str(error["loc"][0])
        where = "--api-url" if setting == "api_url" and api_url is not None else (
            _SETTING_VARIABLES[setting]
        )
        reason = error["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: {reason}") from None


# -- credentials ------------------------------------------------------------------------


@dataclass(frozen=True)
class BasicCredential:
    """An ASM user and password, sent as HTTP Basic."""

    user: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"BasicCredential(user={self.user!r}, password=****)"


@dataclass(frozen=True)
class TicketCredential:
    """An ASM `auth_ticket` (Tools > API Settings), sent as a query parameter."""

    ticket: str = field(repr=False)

    def __repr__(self) -> str:
        return f"TicketCredential({last4(self.ticket)})"


AsmCredential = BasicCredential | TicketCredential

# A GUID in ASM's examples; anything URL-safe of a sane length is let through.
_TICKET = re.compile(r"[A-Za-z0-9-]{8,128}")


def parse_ticket(value: str, where: str) -> TicketCredential:
    ticket = value.strip()
    if not _TICKET.fullmatch(ticket):
        # Never echo the value: it may be a real ticket with a stray character.
        raise ConfigError(
            f"{where}: not an auth_ticket (a GUID like 9C94CBC4-C64E-4AEA-BBB2-8241445B06CC "
            "from ASM's Tools > API Settings)"
        )
    return TicketCredential(ticket)


def parse_basic(value: str, where: str) -> BasicCredential:
    user, sep, password = value.strip().partition(":")
    if not sep or not user or not password:
        raise ConfigError(f"{where}: expected user:password")
    return BasicCredential(user, password)


def load_asm_credential(env: Mapping[str, str]) -> AsmCredential:
    """The one ASM credential, from exactly one of the variables or the file they name."""
    given = [name for name in (TICKET_ENV, BASIC_ENV, CREDENTIALS_FILE_ENV)
             if env.get(name, "").strip()]
    if not given:
        raise ConfigError(
            f"no ASM credential: set {TICKET_ENV}, {BASIC_ENV} (user:password) or "
            f"{CREDENTIALS_FILE_ENV} (see docs/asm.md)"
        )
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)} are all set: give the ASM credential one way")
    (name,) = given
    if name == TICKET_ENV:
        return parse_ticket(env[name], name)
    if name == BASIC_ENV:
        return parse_basic(env[name], name)
    return load_credentials_file(env[name].strip())


def load_credentials_file(path: str) -> AsmCredential:
    """A file with one line `ticket <auth_ticket>` or `basic <user>:<password>`
    (blank lines and `#` comments aside)."""
    try:
        text = read_bounded(path, MAX_ASM_CREDENTIALS_BYTES, what="credentials file").decode()
    except UnreadableFile as exc:
        raise ConfigError(f"ASM credentials file {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"ASM credentials file {path}: is not UTF-8 text") from None
    found: list[AsmCredential] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, value = line.partition(" ")
        where = f"{path}:{number}"
        if kind == "ticket":
            found.append(parse_ticket(value, where))
        elif kind == "basic":
            found.append(parse_basic(value, where))
        else:
            raise ConfigError(
                f"{where}: expected 'ticket <auth_ticket>' or 'basic <user>:<password>'"
            )
    if len(found) != 1:
        raise ConfigError(f"ASM credentials file {path}: holds {len(found)} credentials; "
                          "give exactly one")
    return found[0]


# -- keeping the ticket out of logs and errors -------------------------------------------

_TICKET_IN_TEXT = re.compile(r"(auth_ticket=)([^&\s#'\"<>)]*)", re.IGNORECASE)


def redact_ticket(text: str) -> str:
    """`text` with every `auth_ticket=<value>` shown by the value's last four characters."""
    return _TICKET_IN_TEXT.sub(lambda m: m.group(1) + last4(unquote(m.group(2))), text)


class _RedactTickets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "auth_ticket" in message.lower():
            record.msg, record.args = redact_ticket(message), None
        return True


_URLLIB3_FILTER = _RedactTickets()


def guard_urllib3_logs() -> None:
    """urllib3 logs every request line, query and all, at DEBUG: mask tickets there."""
    logger = logging.getLogger("urllib3.connectionpool")
    if _URLLIB3_FILTER not in logger.filters:
        logger.addFilter(_URLLIB3_FILTER)
