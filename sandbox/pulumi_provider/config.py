"""The provider's configuration (`pagerduty:*` stack config) and its credential check.

Keys the stand-in reads: `token` (or env `PAGERDUTY_TOKEN`; `userToken` /
`PAGERDUTY_USER_TOKEN` as a fallback), `apiUrlOverride` (replaces the base URL whole:
no trailing slash), `serviceRegion` (or env `PAGERDUTY_SERVICE_REGION`; `us` or empty
is `api.pagerduty.com`, else `api.<region>.pagerduty.com`) and
`skipCredentialsValidation` (default false). Config values arrive as strings or
JSON-typed values; both are taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.pulumi_provider.properties import reveal
from sandbox.pulumi_provider.schema import Failure

NO_CREDENTIALS = (
    "No valid credentials found for PagerDuty provider. Please see "
    "https://www.terraform.io/docs/providers/pagerduty/index.html for more information on "
    "providing credentials for this provider."
)
BOOLEAN_KEYS = ("skipCredentialsValidation", "insecureTls")
STRING_KEYS = ("token", "userToken", "apiUrlOverride", "serviceRegion")
# Configured OAuth apps need a token exchange the stand-in does not make.
UNSUPPORTED_KEYS = ("useAppOauthScopedToken",)


class ConfigError(ValueError):
    """Configuration the provider cannot start with."""


@dataclass(frozen=True)
class ProviderConfig:
    token: str
    api_url: str
    skip_credentials_validation: bool


def config_failures(args: Mapping[str, Any]) -> list[Failure]:
    """CheckConfig: the types of the keys the stand-in knows."""
    failures = []
    for key in BOOLEAN_KEYS:
        value = reveal(args.get(key))
        if value is not None and _boolean(value) is None:
            failures.append(Failure(key, f"{key} must be true or false, not {value!r}"))
    for key in STRING_KEYS:
        value = reveal(args.get(key))
        if value is not None and not isinstance(value, str):
            failures.append(Failure(key, f"{key} must be a string"))
    for key in UNSUPPORTED_KEYS:
        if args.get(key) is not None:
            failures.append(Failure(key, f"{key} is not supported by the stand-in"))
    return failures


def checked_config(args: Mapping[str, Any]) -> dict[str, Any]:
    """CheckConfig's inputs: booleans typed, the default for skipCredentialsValidation."""
    checked = dict(args)
    for key in BOOLEAN_KEYS:
        value = reveal(checked.get(key))
        if value is not None and _boolean(value) is not None:
            checked[key] = _boolean(value)
    checked.setdefault("skipCredentialsValidation", False)
    return checked


def provider_config(args: Mapping[str, Any], env: Mapping[str, str]) -> ProviderConfig:
    """Configure: where to call and with which token."""
    values = {key: reveal(value) for key, value in args.items()}
    token = values.get("token") or env.get("PAGERDUTY_TOKEN") or ""
    token = token or values.get("userToken") or env.get("PAGERDUTY_USER_TOKEN") or ""
    if not token:
        raise ConfigError(NO_CREDENTIALS)
    region = str(values.get("serviceRegion") or env.get("PAGERDUTY_SERVICE_REGION") or "")
    region = region.lower()
    api_url = "https://api." + ("" if region in ("", "us") else f"{region}.") + "pagerduty.com"
    override = values.get("apiUrlOverride") or ""
    skip = _boolean(values.get("skipCredentialsValidation", False))
    return ProviderConfig(
        token=str(token), api_url=str(override or api_url), skip_credentials_validation=bool(skip)
    )


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None
