"""The bridge's settings: defaults < config file (TOML) < `APICA_PD_*` env < flags.

Every setting, its variable and its default (docs/bridge.md lists them too):

    listen_host        APICA_PD_LISTEN_HOST        127.0.0.1
    listen_port        APICA_PD_LISTEN_PORT        8080         (0-65535; 0: any free port)
    data_dir           APICA_PD_DATA_DIR           var/bridge   (the SQLite outbox)
    store_url          APICA_PD_STORE_URL          (none: SQLite in data_dir; postgresql://...)
    routes_file        APICA_PD_ROUTES_FILE        routes.json
    events_url         APICA_PD_EVENTS_URL         https://events.pagerduty.com/v2/enqueue
    events_timeout     APICA_PD_EVENTS_TIMEOUT     10.0 seconds (read timeout per send; > 0, <= 120)
    events_per_key     APICA_PD_EVENTS_PER_KEY     120          (sends per routing key per 60 s)
    asm_base_url       APICA_PD_ASM_BASE_URL       https://wpm.apicasystem.com
    public_url         APICA_PD_PUBLIC_URL         http://<listen_host>:<listen_port>
    body_limit         APICA_PD_BODY_LIMIT         65536 bytes  (1024 to 1048576)
    header_limit       APICA_PD_HEADER_LIMIT       16384 bytes  (request line, headers; 1024-65536)
    header_count_limit APICA_PD_HEADER_COUNT_LIMIT 100          (header fields; 8 to 1000)
    header_timeout     APICA_PD_HEADER_TIMEOUT     10 seconds   (first byte to end of headers)
    body_timeout       APICA_PD_BODY_TIMEOUT       20 seconds   (end of headers to end of body)
    idle_timeout       APICA_PD_IDLE_TIMEOUT       5 seconds    (a connection sending nothing)
    connection_limit   APICA_PD_CONNECTION_LIMIT   256          (open connections; 1 to 10000)
    credentials_file   APICA_PD_CREDENTIALS_FILE   (none)
    token_header       APICA_PD_TOKEN_HEADER       X-Apica-Token
    reload_interval    APICA_PD_RELOAD_INTERVAL    2.0 seconds  (routes file poll; > 0, <= 86400)
    asm_reconcile      APICA_PD_ASM_RECONCILE      false        (repair lost webhooks from ASM)
    asm_reconcile_interval APICA_PD_ASM_RECONCILE_INTERVAL 60 seconds (1 to 86400)
    asm_reconcile_severities APICA_PD_ASM_RECONCILE_SEVERITIES FEW (letters of F, E, W)
    asm_enrich         APICA_PD_ASM_ENRICH         false        (ASM's latest result on triggers)
    asm_enrich_deadline APICA_PD_ASM_ENRICH_DEADLINE 1.0 seconds (> 0, <= 1)

The three timeouts are more than 0 and at most 300 seconds.
    allow_unauthenticated APICA_PD_ALLOW_UNAUTHENTICATED false
    log_level          APICA_PD_LOG_LEVEL          INFO

The config file is named by `--config` or APICA_PD_CONFIG. Credentials never live in
it nor on the command line: APICA_PD_TOKENS, APICA_PD_BASIC_AUTH or the credentials
file (see `bridge.intake.auth`). Reconciliation and enrichment call ASM's API with the
read-only ASM credential and API settings of `bridge.asm_config` (APICA_PD_ASM_*,
environment only; docs/asm.md).

pydantic-settings reads the variables (`EnvSettingsSource`, over the mapping it is
given) and pydantic types and checks every value. The three layers stay apart until
they are merged, so that a bad value's error names the flag, variable or file key it
came from, in one line.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import tomllib
from collections import ChainMap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bridge.asm_config import (
    ENRICH_DEADLINE,
    MAX_ENRICH_DEADLINE,
    MAX_RECONCILE_INTERVAL,
    MIN_RECONCILE_INTERVAL,
    RECONCILE_INTERVAL,
    RECONCILE_SEVERITIES,
)
from bridge.errors import ConfigError
from bridge.intake.auth import (
    DEFAULT_TOKEN_HEADER,
    Authenticator,
    Credentials,
    credentials_from_env,
    load_credentials_file,
)
from contract.errors import UnreadableFile
from contract.files import read_bounded

ENV_PREFIX = "APICA_PD_"
CONFIG_ENV = "APICA_PD_CONFIG"
DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_ASM_BASE_URL = "https://wpm.apicasystem.com"
MAX_CONFIG_FILE_BYTES = 1 << 20
# A webhook body is a few KB; a larger limit only lets a client hold more memory.
MAX_BODY_LIMIT = 1 << 20
# Request line and headers: ASM sends a handful of short headers.
MAX_HEADER_LIMIT = 1 << 16
# Longest a client may take over a request's parts, or stay silent.
MAX_CLIENT_TIMEOUT = 300.0
# A day; far below what a thread can wait (`threading.TIMEOUT_MAX`, an OverflowError).
MAX_RELOAD_INTERVAL = 86_400.0
# A lease on a send lasts its longest request: a longer timeout holds a lane longer after
# a crash.
MAX_EVENTS_TIMEOUT = 120.0
# The flags `bridge.cli` gives a setting, where they are not `--<setting-with-dashes>`.
FLAG_NAMES = {"listen_host": "--host", "listen_port": "--port", "routes_file": "--routes"}


def _not_a_bool(kind: str) -> BeforeValidator:
    # pydantic reads True as 1: in a TOML file `listen_port = true` is a mistake.
    def check(value: object) -> object:
        if isinstance(value, bool):
            raise PydanticCustomError(f"{kind}_type", "not a {kind}", {"kind": kind})
        return value

    return BeforeValidator(check)


def _flag_text(value: object) -> object:
    # An empty variable (`APICA_PD_ALLOW_UNAUTHENTICATED=`) is false, as it always was.
    return (value.strip() or False) if isinstance(value, str) else value


def _empty_is_none(value: object) -> object:
    return None if value == "" else value


def _no_empty_path(value: object) -> object:
    if value == "":
        raise PydanticCustomError("path_type", "not a path")
    return value


WholeNumber = Annotated[int, _not_a_bool("int")]
# allow_inf_nan=False: `inf` overflowed the routes watcher's wait and `nan` busy-polled.
Seconds = Annotated[float, Field(allow_inf_nan=False), _not_a_bool("float")]
Flag = Annotated[bool, BeforeValidator(_flag_text)]
FilePath = Annotated[Path, BeforeValidator(_no_empty_path), AfterValidator(Path.expanduser)]
OptionalPath = Annotated[Path | None, BeforeValidator(_empty_is_none),
                         AfterValidator(lambda p: p.expanduser() if p else p)]
OptionalText = Annotated[str | None, BeforeValidator(_empty_is_none)]
# A secret: never in a repr, a log line or an error (`bridge.store.location.redact_url`).
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_empty_is_none)]


class BridgeConfig(BaseSettings):
    """The settings in force. `BridgeConfig(**values)` reads nothing else; `load_config` does."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, coerce_numbers_to_str=True,
    )

    listen_host: str = "127.0.0.1"
    listen_port: WholeNumber = Field(8080, ge=0, le=65535)
    data_dir: FilePath = Path("var/bridge")
    store_url: OptionalSecret = None
    routes_file: FilePath = Path("routes.json")
    events_url: str = DEFAULT_EVENTS_URL
    events_timeout: Seconds = Field(10.0, gt=0, le=MAX_EVENTS_TIMEOUT)
    events_per_key: WholeNumber = Field(120, ge=1, le=10_000)
    asm_base_url: str = DEFAULT_ASM_BASE_URL
    public_url: OptionalText = None
    body_limit: WholeNumber = Field(65536, ge=1024, le=MAX_BODY_LIMIT)
    header_limit: WholeNumber = Field(16384, ge=1024, le=MAX_HEADER_LIMIT)
    header_count_limit: WholeNumber = Field(100, ge=8, le=1000)
    header_timeout: Seconds = Field(10.0, gt=0, le=MAX_CLIENT_TIMEOUT)
    body_timeout: Seconds = Field(20.0, gt=0, le=MAX_CLIENT_TIMEOUT)
    idle_timeout: Seconds = Field(5.0, gt=0, le=MAX_CLIENT_TIMEOUT)
    connection_limit: WholeNumber = Field(256, ge=1, le=10_000)
    credentials_file: OptionalPath = None
    token_header: str = DEFAULT_TOKEN_HEADER
    reload_interval: Seconds = Field(2.0, gt=0, le=MAX_RELOAD_INTERVAL)
    allow_unauthenticated: Flag = False
    log_level: str = "INFO"
    asm_reconcile: Flag = False
    asm_reconcile_interval: Seconds = Field(RECONCILE_INTERVAL, ge=MIN_RECONCILE_INTERVAL,
                                            le=MAX_RECONCILE_INTERVAL)
    asm_reconcile_severities: str = RECONCILE_SEVERITIES
    asm_enrich: Flag = False
    asm_enrich_deadline: Seconds = Field(ENRICH_DEADLINE, gt=0, le=MAX_ENRICH_DEADLINE)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the values given: the layers are read by `load_config`, never behind its back.
        return (init_settings,)

    @field_validator("events_url", "asm_base_url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value

    @field_validator("asm_reconcile_severities")
    @classmethod
    def _reconcile_severities(cls, value: str) -> str:
        letters = value.strip().upper()
        if not letters or set(letters) - set("FEW") or len(set(letters)) != len(letters):
            raise ValueError(f"{value!r}: use letters of F, E and W, each once (e.g. FE)")
        return letters

    @field_validator("store_url")
    @classmethod
    def _store_url(cls, value: SecretStr | None) -> SecretStr | None:
        from bridge.store.location import url_problem

        problem = value and url_problem(value.get_secret_value())
        if problem:
            raise ValueError(problem)
        return value

    @property
    def store(self):  # -> bridge.store.location.StoreLocation
        """Where the outbox is: PostgreSQL when `store_url` is set, else SQLite in data_dir."""
        from bridge.store.location import locate

        return locate(self.store_url.get_secret_value() if self.store_url else None,
                      self.data_dir)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if logging.getLevelName(value.upper()) not in (10, 20, 30, 40, 50):
            raise ValueError(f"{value!r}: use DEBUG, INFO, WARNING or ERROR")
        return value

    @property
    def bridge_url(self) -> str:
        """The URL ASM calls: `public_url`, else the listen address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.listen_host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.listen_port}"


SETTINGS = tuple(BridgeConfig.model_fields)
# What a range error says, per setting: {value} is what was given.
_UNITS = {"body_limit": " bytes", "header_limit": " bytes", "reload_interval": " seconds",
          "header_timeout": " seconds", "body_timeout": " seconds", "idle_timeout": " seconds",
          "events_timeout": " seconds", "asm_reconcile_interval": " seconds",
          "asm_enrich_deadline": " seconds"}
_RANGE_WORDS = {"listen_port": "{value} is not a TCP port (0-65535)"}


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of `os.environ`."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(BridgeConfig)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # The hook pydantic-settings' own sources override (dotenv, CLI).
        return {(k if self.case_sensitive else k.lower()): v for k, v in self._environ.items()}


class _Layer(NamedTuple):
    """One source's raw values, and what to call the place a setting came from."""

    values: Mapping[str, Any]
    where: Callable[[str], str]


def load_config(
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> BridgeConfig:
    """Merge the sources; every error names the variable, key or flag to fix."""
    env = os.environ if env is None else env
    file_name = config_file or env.get(CONFIG_ENV)
    layers = (  # highest precedence first
        _Layer({k: v for k, v in (overrides or {}).items() if v is not None},
               lambda setting: FLAG_NAMES.get(setting, "--" + setting.replace("_", "-"))),
        _Layer(_Environment(env)(), lambda setting: _variable(env, setting)),
        _Layer(_read_toml(Path(file_name)) if file_name else {},
               lambda setting: f"{file_name}: {setting}"),
    )
    try:
        return BridgeConfig(**ChainMap(*(layer.values for layer in layers)))
    except ValidationError as exc:
        raise ConfigError("; ".join(_problem(error, layers) for error in exc.errors())) from None


def build_authenticator(
    config: BridgeConfig, env: Mapping[str, str], log: logging.Logger
) -> Authenticator:
    """Credentials from env and file. None at all is only allowed on loopback (or by choice)."""
    credentials = credentials_from_env(env)
    if config.credentials_file is not None:
        credentials = credentials.merged(load_credentials_file(config.credentials_file))
    if credentials:
        return Authenticator(credentials, token_header=config.token_header)
    if not (config.allow_unauthenticated or _is_loopback(config.listen_host)):
        raise ConfigError(
            f"no credentials configured and the bridge listens on {config.listen_host}: set "
            "APICA_PD_TOKENS, APICA_PD_BASIC_AUTH or APICA_PD_CREDENTIALS_FILE (or "
            "APICA_PD_ALLOW_UNAUTHENTICATED=true if a proxy in front authenticates)"
        )
    log.warning(
        "authentication is off: no credentials configured",
        extra={"event": "auth_disabled", "listen_host": config.listen_host},
    )
    return Authenticator(Credentials(), token_header=config.token_header, disabled=True)


def _variable(env: Mapping[str, str], setting: str) -> str:
    """The variable that set `setting` (as spelt in `env`: the match ignores case)."""
    wanted = (ENV_PREFIX + setting).lower()
    return next((name for name in env if name.lower() == wanted), wanted.upper())


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(read_bounded(path, MAX_CONFIG_FILE_BYTES, what="config file")
                             .decode("utf-8"))
    except UnreadableFile as exc:
        raise ConfigError(f"config file {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML ({exc})") from None
    except ValueError as exc:  # an integer over Python's 4,300 digits, not a TOML error
        raise ConfigError(f"config file {path}: a number cannot be read ({exc})") from None
    # A [bridge] table is allowed so the file can grow other sections later.
    data = data.get("bridge", data)
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(SETTINGS)}"
        )
    return data


def _problem(error: Mapping[str, Any], layers: tuple[_Layer, ...]) -> str:
    """One pydantic error as a sentence naming where the value came from."""
    setting = str(error["loc"][0]) if error["loc"] else ""
    layer = next((layer for layer in layers if setting in layer.values), layers[0])
    where = layer.where(setting)
    # A file's key already names the setting; a flag or a variable does not.
    subject = f"{where}:" if where.endswith(setting) else f"{where}: {setting}"
    value = _shown(error["input"])
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"{where}: unknown setting"
    if kind == "finite_number":
        return f"{where}: {value!r} is not a finite number"
    if kind.startswith(("int_", "float_", "bool_", "path_", "string_")):
        return f"{where}: {value!r} is not a valid {_TYPE_WORDS[kind.split('_')[0]]}"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal"):
        return f"{subject} {_out_of_range(setting, value, kind, ctx)}"
    if kind == "value_error":
        return f"{subject} {ctx['error']}"
    return f"{where}: {error['msg']}"


_TYPE_WORDS = {"int": "int", "float": "float", "bool": "bool", "path": "path", "string": "str"}


def _shown(value: object) -> object:
    """A value as given, cut short: a message is one readable line."""
    if isinstance(value, str) and len(value) > 40:
        return value[:37] + "..."
    return value


def _out_of_range(setting: str, value: object, kind: str, ctx: Mapping[str, Any]) -> str:
    if setting in _RANGE_WORDS:
        return _RANGE_WORDS[setting].format(value=value)
    unit = _UNITS.get(setting, "")
    (bound,) = ctx.values()
    bound = int(bound) if float(bound).is_integer() else bound
    if kind == "greater_than":
        return f"must be more than {bound}{unit} (got {value})"
    if kind == "greater_than_equal":
        return f"{value} is too small (at least {bound}{unit})"
    return f"{value} is too large (at most {bound}{unit})"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
