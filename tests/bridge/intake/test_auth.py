"""Who may post: tokens, Basic users, rotation, sources of credentials."""

from __future__ import annotations

import base64

import pytest

from bridge.errors import ConfigError
from bridge.intake.auth import (
    Authenticator,
    Credentials,
    credentials_from_env,
    load_credentials_file,
    parse_credentials_text,
)

NEW = "new-token-0123456789"
OLD = "old-token-0123456789"
PASSWORD = "pass-word-0123456789"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def auth() -> Authenticator:
    return Authenticator(Credentials(tokens=(NEW, OLD), basic=(("asm", PASSWORD),)))


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"X-Apica-Token": NEW}, True),
        ({"x-apica-token": OLD}, True),  # both valid while rotating
        ({"Authorization": f"Bearer {NEW}"}, True),
        ({"Authorization": basic("asm", PASSWORD)}, True),
        ({"Authorization": basic("asm", PASSWORD + "x")}, False),
        ({"Authorization": basic("other", PASSWORD)}, False),
        ({"Authorization": "Basic !!!not-base64"}, False),
        ({"X-Apica-Token": NEW[:-1]}, False),
        ({"X-Apica-Token": ""}, False),
        ({}, False),
    ],
)
def test_allows(auth, headers, allowed):
    assert auth.allows(headers) is allowed


def test_custom_header_name():
    auth = Authenticator(Credentials(tokens=(NEW,)), token_header="X-Bridge-Key")
    assert auth.allows({"x-bridge-key": NEW})
    assert not auth.allows({"X-Apica-Token": NEW})


def test_disabled_allows_anyone():
    assert Authenticator(Credentials(), disabled=True).allows({})


def test_no_credentials_allows_no_one():
    assert not Authenticator(Credentials()).allows({"X-Apica-Token": NEW})


def test_repr_shows_only_last_four():
    text = repr(Credentials(tokens=(NEW,), basic=(("asm", PASSWORD),)))
    assert text == "Credentials(tokens=[...6789], basic=[asm])"
    assert PASSWORD not in text


def test_credentials_file(tmp_path):
    path = tmp_path / "creds"
    path.write_text(f"# rotate monthly\ntoken {NEW}\n\nbasic asm:{PASSWORD}\n")
    assert load_credentials_file(path) == Credentials((NEW,), (("asm", PASSWORD),))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tokn abcdefghijklmnopqrstuvwxyz", "creds:1: expected 'token <value>' or 'basic"),
        ("token short", "creds:1: a credential of 5 characters is too easy to guess"),
        ("basic nopassword", "creds:1: expected 'token <value>'"),
    ],
)
def test_bad_credentials_lines_never_echo_the_secret(text, message):
    with pytest.raises(ConfigError) as caught:
        parse_credentials_text(text, "creds")
    assert message in str(caught.value)
    assert "abcdefghijklmnop" not in str(caught.value)


def test_missing_credentials_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_credentials_file(tmp_path / "nope")


def test_credentials_from_env():
    env = {"APICA_PD_TOKENS": f"{NEW}, {OLD}", "APICA_PD_BASIC_AUTH": f"asm:{PASSWORD}"}
    assert credentials_from_env(env) == Credentials((NEW, OLD), (("asm", PASSWORD),))
    assert not credentials_from_env({})
    with pytest.raises(ConfigError, match="APICA_PD_BASIC_AUTH: expected user:password"):
        credentials_from_env({"APICA_PD_BASIC_AUTH": "nocolon"})
