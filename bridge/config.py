"""The bridge's settings: defaults < config file (TOML) < `APICA_PD_*` env < flags.

Every setting, its variable and its default (docs/bridge.md lists them too):

    listen_host        APICA_PD_LISTEN_HOST        127.0.0.1
    listen_port        APICA_PD_LISTEN_PORT        8080
    data_dir           APICA_PD_DATA_DIR           var/bridge   (outbox database)
    routes_file        APICA_PD_ROUTES_FILE        routes.json
    events_url         APICA_PD_EVENTS_URL         https://events.pagerduty.com/v2/enqueue
    asm_base_url       APICA_PD_ASM_BASE_URL       https://wpm.apicasystem.com
    public_url         APICA_PD_PUBLIC_URL         http://<listen_host>:<listen_port>
    body_limit         APICA_PD_BODY_LIMIT         65536 bytes
    credentials_file   APICA_PD_CREDENTIALS_FILE   (none)
    token_header       APICA_PD_TOKEN_HEADER       X-Apica-Token
    reload_interval    APICA_PD_RELOAD_INTERVAL    2.0 seconds (routes file mtime poll)
    allow_unauthenticated APICA_PD_ALLOW_UNAUTHENTICATED false
    log_level          APICA_PD_LOG_LEVEL          INFO

The config file is named by `--config` or APICA_PD_CONFIG. Credentials never live in
it nor on the command line: APICA_PD_TOKENS, APICA_PD_BASIC_AUTH or the credentials
file (see `bridge.intake.auth`).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class BridgeConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    data_dir: Path = Path("var/bridge")
    routes_file: Path = Path("routes.json")
    events_url: str = DEFAULT_EVENTS_URL
    asm_base_url: str = DEFAULT_ASM_BASE_URL
    public_url: str | None = None
    body_limit: int = 65536
    credentials_file: Path | None = None
    token_header: str = DEFAULT_TOKEN_HEADER
    reload_interval: float = 2.0
    allow_unauthenticated: bool = False
    log_level: str = "INFO"

    @property
    def bridge_url(self) -> str:
        """The URL ASM calls: `public_url`, else the listen address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.listen_host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.listen_port}"


_FIELDS = {f.name: f for f in fields(BridgeConfig)}


def load_config(
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> BridgeConfig:
    """Merge the sources; every error names the variable, key or flag to fix."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    file_name = config_file or env.get(CONFIG_ENV)
    if file_name:
        for key, raw in _read_toml(Path(file_name)).items():
            values[key] = _convert(key, raw, f"{file_name}: {key}")
    for name in _FIELDS:
        var = ENV_PREFIX + name.upper()
        if var in env:
            values[name] = _convert(name, env[var], var)
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = _convert(name, raw, f"--{name.replace('_', '-')}")
    config = replace(BridgeConfig(), **values)
    _validate(config)
    return config


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
    # A [bridge] table is allowed so the file can grow other sections later.
    data = data.get("bridge", data)
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(_FIELDS)}"
        )
    return data


def _convert(name: str, raw: object, where: str) -> Any:
    if name not in _FIELDS:
        raise ConfigError(f"{where}: unknown setting")
    kind = _FIELDS[name].type
    try:
        if kind == "int":
            return _int(raw)
        if kind == "float":
            return float(raw)  # type: ignore[arg-type]
        if kind == "bool":
            return _bool(raw)
        if kind in ("Path", "Path | None"):
            return Path(os.fspath(raw)).expanduser() if raw != "" else None  # type: ignore[arg-type]
        if kind == "str | None":
            return str(raw) or None
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {raw!r} is not a valid {kind}") from None


def _int(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError("bool is not an int")
    return int(raw)  # type: ignore[arg-type]


def _bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)


def _validate(config: BridgeConfig) -> None:
    if not 0 <= config.listen_port <= 65535:
        raise ConfigError(f"listen_port {config.listen_port} is not a TCP port (0-65535)")
    if config.body_limit < 1024:
        raise ConfigError(f"body_limit {config.body_limit} is too small (at least 1024 bytes)")
    if config.reload_interval <= 0:
        raise ConfigError("reload_interval must be more than 0 seconds")
    for name in ("events_url", "asm_base_url", "public_url"):
        value = getattr(config, name)
        if value is not None and not value.startswith(("http://", "https://")):
            raise ConfigError(f"{name} {value!r} must start with http:// or https://")
    if logging.getLevelName(config.log_level.upper()) not in (10, 20, 30, 40, 50):
        raise ConfigError(f"log_level {config.log_level!r}: use DEBUG, INFO, WARNING or ERROR")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
