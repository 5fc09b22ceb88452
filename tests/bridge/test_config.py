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
    assert (config.header_limit, config.header_count_limit, config.connection_limit) == (
        16384, 100, 256)
    assert (config.idle_timeout, config.header_timeout, config.body_timeout) == (5, 10, 20)
    # PagerDuty's documented window: about 120 events per routing key per 60 s.
    assert (config.events_timeout, config.events_per_key) == (10.0, 120)


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


def test_asm_settings_are_off_unless_asked_for_and_severities_are_letters():
    config = load_config(env={})
    assert (config.asm_reconcile, config.asm_enrich, config.asm_reconcile_interval,
            config.asm_reconcile_severities, config.asm_enrich_deadline) == (
        False, False, 60.0, "FEW", 1.0)
    asked = load_config(env={"APICA_PD_ASM_RECONCILE": "true", "APICA_PD_ASM_ENRICH": "1",
                             "APICA_PD_ASM_RECONCILE_SEVERITIES": "fe"})
    assert (asked.asm_reconcile, asked.asm_enrich, asked.asm_reconcile_severities) == (
        True, True, "FE")
    for letters in ("", "FX", "FF", "I"):
        with pytest.raises(ConfigError) as caught:
            load_config(env={"APICA_PD_ASM_RECONCILE_SEVERITIES": letters or " "})
        assert str(caught.value) == (
            f"APICA_PD_ASM_RECONCILE_SEVERITIES: asm_reconcile_severities {letters or ' '!r}: "
            "use letters of F, E and W, each once (e.g. FE)")


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
    path.write_text("listen_port = " + "9" * 5000 + "\n")  # was a ValueError traceback
    with pytest.raises(ConfigError, match=r"c.toml: a number cannot be read \(Exceeds the "
                                          r"limit \(4300 digits\)"):
        load_config(env={}, config_file=path)


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


# -- numbers: every numeric setting refuses non-finite and out-of-range values ---------

NUMERIC = {"listen_port", "body_limit", "reload_interval", "header_limit", "header_count_limit",
           "header_timeout", "body_timeout", "idle_timeout", "connection_limit", "events_timeout",
           "events_per_key", "asm_reconcile_interval", "asm_enrich_deadline"}


def test_the_numeric_settings_are_the_ones_tested_below():
    numeric = {name for name, field in BridgeConfig.model_fields.items()
               if field.annotation in (int, float)}
    assert numeric == NUMERIC == {setting for setting, *_ in NUMBERS}


# (setting, value, the whole message for APICA_PD_<SETTING>=value)
NUMBERS = [
    ("listen_port", "inf", "'inf' is not a valid int"),
    ("listen_port", "nan", "'nan' is not a valid int"),
    ("listen_port", "-1", "listen_port -1 is not a TCP port (0-65535)"),
    ("listen_port", "65536", "listen_port 65536 is not a TCP port (0-65535)"),
    ("listen_port", "9" * 5000, "'" + "9" * 37 + "...' is not a valid int"),
    ("body_limit", "inf", "'inf' is not a valid int"),
    ("body_limit", "-inf", "'-inf' is not a valid int"),
    ("body_limit", "1023", "body_limit 1023 is too small (at least 1024 bytes)"),
    ("body_limit", "1048577", "body_limit 1048577 is too large (at most 1048576 bytes)"),
    ("reload_interval", "inf", "'inf' is not a finite number"),
    ("reload_interval", "-inf", "'-inf' is not a finite number"),
    ("reload_interval", "nan", "'nan' is not a finite number"),
    ("reload_interval", "0", "reload_interval must be more than 0 seconds (got 0)"),
    ("reload_interval", "-2", "reload_interval must be more than 0 seconds (got -2)"),
    ("reload_interval", "86401", "reload_interval 86401 is too large (at most 86400 seconds)"),
    ("reload_interval", "1e10", "reload_interval 1e10 is too large (at most 86400 seconds)"),
    ("header_limit", "inf", "'inf' is not a valid int"),
    ("header_limit", "1023", "header_limit 1023 is too small (at least 1024 bytes)"),
    ("header_limit", "65537", "header_limit 65537 is too large (at most 65536 bytes)"),
    ("header_count_limit", "nan", "'nan' is not a valid int"),
    ("header_count_limit", "7", "header_count_limit 7 is too small (at least 8)"),
    ("header_count_limit", "1001", "header_count_limit 1001 is too large (at most 1000)"),
    ("header_timeout", "inf", "'inf' is not a finite number"),
    ("header_timeout", "0", "header_timeout must be more than 0 seconds (got 0)"),
    ("header_timeout", "301", "header_timeout 301 is too large (at most 300 seconds)"),
    ("body_timeout", "nan", "'nan' is not a finite number"),
    ("body_timeout", "-1", "body_timeout must be more than 0 seconds (got -1)"),
    ("body_timeout", "1e9", "body_timeout 1e9 is too large (at most 300 seconds)"),
    ("idle_timeout", "-inf", "'-inf' is not a finite number"),
    ("idle_timeout", "0", "idle_timeout must be more than 0 seconds (got 0)"),
    ("idle_timeout", "300.5", "idle_timeout 300.5 is too large (at most 300 seconds)"),
    ("connection_limit", "inf", "'inf' is not a valid int"),
    ("connection_limit", "0", "connection_limit 0 is too small (at least 1)"),
    ("connection_limit", "10001", "connection_limit 10001 is too large (at most 10000)"),
    ("events_timeout", "nan", "'nan' is not a finite number"),
    ("events_timeout", "0", "events_timeout must be more than 0 seconds (got 0)"),
    ("events_timeout", "121", "events_timeout 121 is too large (at most 120 seconds)"),
    ("events_per_key", "inf", "'inf' is not a valid int"),
    ("events_per_key", "0", "events_per_key 0 is too small (at least 1)"),
    ("events_per_key", "10001", "events_per_key 10001 is too large (at most 10000)"),
    ("asm_reconcile_interval", "nan", "'nan' is not a finite number"),
    ("asm_reconcile_interval", "0.5",
     "asm_reconcile_interval 0.5 is too small (at least 1 seconds)"),
    ("asm_reconcile_interval", "86401",
     "asm_reconcile_interval 86401 is too large (at most 86400 seconds)"),
    ("asm_enrich_deadline", "inf", "'inf' is not a finite number"),
    ("asm_enrich_deadline", "0", "asm_enrich_deadline must be more than 0 seconds (got 0)"),
    ("asm_enrich_deadline", "1.5", "asm_enrich_deadline 1.5 is too large (at most 1 seconds)"),
]


@pytest.mark.parametrize(("setting", "value", "message"), NUMBERS)
def test_a_bad_number_in_the_environment_is_refused(setting, value, message):
    variable = "APICA_PD_" + setting.upper()
    with pytest.raises(ConfigError) as caught:
        load_config(env={variable: value})
    assert str(caught.value) == f"{variable}: {message}"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("listen_port = inf", "listen_port: inf is not a finite number"),
        ("listen_port = true", "listen_port: True is not a valid int"),
        ("body_limit = nan", "body_limit: nan is not a finite number"),
        ("body_limit = 2048.5", "body_limit: 2048.5 is not a valid int"),
        ("reload_interval = inf", "reload_interval: inf is not a finite number"),
        ("reload_interval = -inf", "reload_interval: -inf is not a finite number"),
        ("reload_interval = nan", "reload_interval: nan is not a finite number"),
        ("reload_interval = 0.0", "reload_interval: must be more than 0 seconds (got 0.0)"),
    ],
)
def test_a_bad_number_in_the_config_file_names_file_and_key(tmp_path, line, message):
    path = tmp_path / "bridge.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, config_file=path)
    assert str(caught.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"listen_port": 70000}, "--port: listen_port 70000 is not a TCP port (0-65535)"),
        ({"reload_interval": float("nan")}, "--reload-interval: nan is not a finite number"),
    ],
)
def test_a_bad_number_from_a_flag_names_the_flag(overrides, message):
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, overrides=overrides)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [("listen_port", "0", 0), ("listen_port", "65535", 65535), ("body_limit", "1024", 1024),
     ("body_limit", "1048576", 1048576), ("reload_interval", "0.05", 0.05),
     ("reload_interval", "86400", 86400.0), ("header_limit", "65536", 65536),
     ("header_count_limit", "8", 8), ("idle_timeout", "300", 300.0),
     ("connection_limit", "10000", 10000)],
)
def test_the_bounds_themselves_are_accepted(setting, value, expected):
    config = load_config(env={"APICA_PD_" + setting.upper(): value})
    assert getattr(config, setting) == expected


def test_several_bad_values_are_one_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(env={"APICA_PD_LISTEN_PORT": "x", "APICA_PD_RELOAD_INTERVAL": "inf"})
    assert str(caught.value) == ("APICA_PD_LISTEN_PORT: 'x' is not a valid int; "
                                 "APICA_PD_RELOAD_INTERVAL: 'inf' is not a finite number")


@pytest.mark.parametrize(
    ("variable", "setting", "expected"),
    [("APICA_PD_PUBLIC_URL", "public_url", None),
     ("APICA_PD_CREDENTIALS_FILE", "credentials_file", None),
     ("APICA_PD_ALLOW_UNAUTHENTICATED", "allow_unauthenticated", False)],
)
def test_an_empty_optional_value_is_none(variable, setting, expected):
    assert getattr(load_config(env={variable: ""}), setting) is expected


def test_an_empty_path_is_refused():
    with pytest.raises(ConfigError, match=r"^APICA_PD_DATA_DIR: '' is not a valid path$"):
        load_config(env={"APICA_PD_DATA_DIR": ""})


def test_paths_expand_the_home_directory():
    config = load_config(env={"APICA_PD_DATA_DIR": "~/pd", "APICA_PD_CREDENTIALS_FILE": "~/c"})
    assert (config.data_dir, config.credentials_file) == (Path.home() / "pd", Path.home() / "c")


def test_other_apica_pd_variables_are_not_settings():
    """Credentials and the config file's name share the prefix; they are read elsewhere."""
    config = load_config(env={"APICA_PD_TOKENS": TOKEN, "APICA_PD_BASIC_AUTH": "a:b",
                              "APICA_PD_SOMETHING": "x"})
    assert config == BridgeConfig()
