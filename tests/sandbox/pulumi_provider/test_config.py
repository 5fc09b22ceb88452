"""Provider configuration: token and URL sources, booleans from config strings, CheckConfig."""

from __future__ import annotations

import pytest

from sandbox.pulumi_provider.config import (
    NO_CREDENTIALS,
    ConfigError,
    ProviderConfig,
    checked_config,
    config_failures,
    provider_config,
)
from sandbox.pulumi_provider.properties import Secret
from sandbox.pulumi_provider.schema import Failure


def test_the_override_replaces_the_base_url_whole():
    config = provider_config(
        {
            "token": Secret("tok"),
            "apiUrlOverride": "http://127.0.0.1:4000",
            "skipCredentialsValidation": "true",
        },
        {},
    )
    assert config == ProviderConfig("tok", "http://127.0.0.1:4000", True)


def test_regions_and_environment_fallbacks():
    assert provider_config({"serviceRegion": "EU"}, {"PAGERDUTY_TOKEN": "t"}).api_url == (
        "https://api.eu.pagerduty.com"
    )
    assert provider_config({}, {"PAGERDUTY_TOKEN": "t", "PAGERDUTY_SERVICE_REGION": "us"}) == (
        ProviderConfig("t", "https://api.pagerduty.com", False)
    )
    assert provider_config({}, {"PAGERDUTY_USER_TOKEN": "u"}).token == "u"
    with pytest.raises(ConfigError, match=r"^No valid credentials found for PagerDuty provider"):
        provider_config({"token": ""}, {})
    assert "terraform.io/docs/providers/pagerduty" in NO_CREDENTIALS


def test_check_config_types_booleans_and_refuses_what_it_cannot_do():
    assert checked_config({"token": Secret("t"), "insecureTls": "False"}) == {
        "token": Secret("t"),
        "insecureTls": False,
        "skipCredentialsValidation": False,
    }
    assert config_failures(
        {
            "skipCredentialsValidation": "yes",
            "apiUrlOverride": 5,
            "useAppOauthScopedToken": {"pdClientId": "x"},
        }
    ) == [
        Failure(
            "skipCredentialsValidation",
            "skipCredentialsValidation must be true or false, not 'yes'",
        ),
        Failure("apiUrlOverride", "apiUrlOverride must be a string"),
        Failure(
            "useAppOauthScopedToken", "useAppOauthScopedToken is not supported by the stand-in"
        ),
    ]
