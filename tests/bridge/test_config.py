"""Settings: defaults, TOML file, APICA_PD_* env, flags; credentials policy."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from bridge.config import BridgeConfig, build_authenticator, load_config
from bridge.errors import ConfigError

TOKEN = "token-0123456789abcdef"
log = logging.getLogger("test.config")


def test_defaults():
    config = load_config(env={})
    assert config == BridgeConfig()
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 8080)
    assert config.events_url == "https://events.pagerduty.com/v2/enqueue"
    assert config.asm_base_url == "https://wpm.apicasystem.com"
    assert config.bridge_url == "http://127.0.0.1:8080"
    assert config.body_limit == 65536


def test_precedence_file_then_env_then_flags(tmp_path):
    path = tmp_path / "bridge.toml"
    path.write_text('[bridge]\nlisten_port = 9000\nbody_limit = 2048\ndata_dir = "/srv/pd"\n'
                    'public_url = "https://bridge.example.com/"\n')
    env = {"APICA_PD_CONFIG": str(path), "APICA_PD_LISTEN_PORT": "9100",
           "APICA_PD_ALLOW_UNAUTHENTICATED": "yes"}
    config = load_config(env=env, overrides={"listen_port": 0, "routes_file": "r.json",
                                             "listen_host": None})
    assert config.listen_port == 0
    assert config.body_limit == 2048
    assert config.data_dir == Path("/srv/pd")
    assert config.routes_file == Path("r.json")
    assert config.allow_unauthenticated is True
    assert config.bridge_url == "https://bridge.example.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APICA_PD_LISTEN_PORT": "http"}, "APICA_PD_LISTEN_PORT: 'http' is not a valid int"),
        ({"APICA_PD_LISTEN_PORT": "70000"}, "listen_port 70000 is not a TCP port"),
        ({"APICA_PD_BODY_LIMIT": "10"}, "body_limit 10 is too small"),
        ({"APICA_PD_EVENTS_URL": "events.pagerduty.com"}, "events_url 'events.pagerduty.com' "
         "must start with http:// or https://"),
        ({"APICA_PD_ALLOW_UNAUTHENTICATED": "maybe"}, "APICA_PD_ALLOW_UNAUTHENTICATED: 'maybe'"),
        ({"APICA_PD_LOG_LEVEL": "LOUD"}, "log_level 'LOUD'"),
        ({"APICA_PD_RELOAD_INTERVAL": "0"}, "reload_interval must be more than 0 seconds"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError) as caught:
        load_config(env=env)
    assert message in str(caught.value)


def test_config_file_errors(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("listen_port = 1\ntokens = 'x'\n")
    with pytest.raises(ConfigError, match=r"c.toml: unknown key\(s\) tokens; known: listen_host"):
        load_config(env={}, config_file=path)
    path.write_text("listen_port = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(env={}, config_file=path)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(env={}, config_file=tmp_path / "absent.toml")


def test_credentials_from_env_and_file(tmp_path):
    creds = tmp_path / "creds"
    creds.write_text("basic asm:pass-word-0123456789\n")
    config = load_config(env={"APICA_PD_CREDENTIALS_FILE": str(creds),
                              "APICA_PD_TOKEN_HEADER": "X-Key"})
    auth = build_authenticator(config, {"APICA_PD_TOKENS": TOKEN}, log)
    assert auth.credentials.tokens == (TOKEN,)
    assert auth.credentials.basic == (("asm", "pass-word-0123456789"),)
    assert auth.allows({"X-Key": TOKEN})


def test_no_credentials_on_loopback_disables_auth_loudly(caplog):
    with caplog.at_level("WARNING", logger="test.config"):
        auth = build_authenticator(load_config(env={}), {}, log)
    assert auth.disabled
    assert "authentication is off: no credentials configured" in caplog.text


def test_no_credentials_on_a_public_address_refuses_to_start():
    config = load_config(env={"APICA_PD_LISTEN_HOST": "0.0.0.0"})
    expected = "no credentials configured and the bridge listens on 0.0.0.0: set APICA_PD_TOKENS"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        build_authenticator(config, {}, log)
    allowed = load_config(env={"APICA_PD_LISTEN_HOST": "0.0.0.0",
                               "APICA_PD_ALLOW_UNAUTHENTICATED": "true"})
    assert build_authenticator(allowed, {}, log).disabled
