"""ASM API settings and the credential: from the environment or a file, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.asm_config import (
    DEFAULT_ASM_API_URL,
    AsmApiSettings,
    BasicCredential,
    TicketCredential,
    load_asm_credential,
    load_asm_settings,
    redact_ticket,
)
from bridge.errors import ConfigError
from tests.conftest import ASM_TICKET

# -- settings ------------------------------------------------------------------------------


def test_settings_default_to_apicas_us_host():
    settings = load_asm_settings({})
    assert settings == AsmApiSettings(api_url=DEFAULT_ASM_API_URL, timeout=10.0,
                                      customer_context=False)
    assert settings.host == "api-asm1.apica.io"


def test_settings_from_the_environment_and_the_flag():
    env = {"APICA_PD_ASM_API_URL": "https://api-asm-eu1.apica.io/v3/",
           "APICA_PD_ASM_TIMEOUT": "2.5", "APICA_PD_ASM_CUSTOMER_CONTEXT": "true"}
    assert load_asm_settings(env) == AsmApiSettings(
        api_url="https://api-asm-eu1.apica.io/v3", timeout=2.5, customer_context=True)
    flagged = load_asm_settings(env, api_url="http://127.0.0.1:9/v3")
    assert flagged.api_url == "http://127.0.0.1:9/v3"


def test_empty_variables_are_unset():
    # A workflow passes `${{ vars.ASM_API_URL }}` even when the variable does not exist.
    assert load_asm_settings({"APICA_PD_ASM_API_URL": "", "APICA_PD_ASM_TIMEOUT": " "}) == (
        AsmApiSettings())


@pytest.mark.parametrize(
    ("env", "flag", "message"),
    [
        ({"APICA_PD_ASM_API_URL": "api-asm1.apica.io/v3"}, None,
         "APICA_PD_ASM_API_URL: 'api-asm1.apica.io/v3' is not an http(s) URL like "
         "https://api-asm1.apica.io/v3"),
        ({}, "ftp://x/v3", "--api-url: 'ftp://x/v3' is not an http(s) URL like "
                           "https://api-asm1.apica.io/v3"),
        ({"APICA_PD_ASM_API_URL": "https://u:pw@api-asm1.apica.io/v3"}, None,
         "APICA_PD_ASM_API_URL: the URL holds a credential: give it as "
         "APICA_PD_ASM_AUTH_TICKET, APICA_PD_ASM_BASIC_AUTH or APICA_PD_ASM_CREDENTIALS_FILE "
         "instead"),
        ({"APICA_PD_ASM_API_URL": "https://api-asm1.apica.io/v3?auth_ticket=x"}, None,
         "APICA_PD_ASM_API_URL: the URL may not have a query or fragment"),
        ({"APICA_PD_ASM_TIMEOUT": "0"}, None,
         "APICA_PD_ASM_TIMEOUT: Input should be greater than 0"),
        ({"APICA_PD_ASM_TIMEOUT": "nan"}, None,
         "APICA_PD_ASM_TIMEOUT: Input should be a finite number"),
        ({"APICA_PD_ASM_CUSTOMER_CONTEXT": "maybe"}, None,
         "APICA_PD_ASM_CUSTOMER_CONTEXT: Input should be a valid boolean, unable to interpret "
         "input"),
    ],
)
def test_bad_settings_name_the_variable(env, flag, message):
    with pytest.raises(ConfigError) as caught:
        load_asm_settings(env, api_url=flag)
    assert str(caught.value) == message


# -- credentials -----------------------------------------------------------------------------


def test_a_ticket_or_a_user_from_the_environment():
    assert load_asm_credential({"APICA_PD_ASM_AUTH_TICKET": f" {ASM_TICKET}\n"}) == (
        TicketCredential(ASM_TICKET))
    assert load_asm_credential({"APICA_PD_ASM_BASIC_AUTH": "reader:pa:ss"}) == (
        BasicCredential("reader", "pa:ss"))


def test_a_credential_from_a_file(tmp_path: Path):
    path = tmp_path / "asm-credentials"
    path.write_text(f"# read-only ASM user\n\nticket {ASM_TICKET}\n")
    assert load_asm_credential({"APICA_PD_ASM_CREDENTIALS_FILE": str(path)}) == (
        TicketCredential(ASM_TICKET))
    path.write_text("basic reader:secret-password\n")
    assert load_asm_credential({"APICA_PD_ASM_CREDENTIALS_FILE": str(path)}) == (
        BasicCredential("reader", "secret-password"))


@pytest.mark.parametrize(
    ("env", "file_text", "message"),
    [
        ({}, None, "no ASM credential: set APICA_PD_ASM_AUTH_TICKET, APICA_PD_ASM_BASIC_AUTH "
                   "(user:password) or APICA_PD_ASM_CREDENTIALS_FILE (see docs/asm.md)"),
        ({"APICA_PD_ASM_AUTH_TICKET": ASM_TICKET, "APICA_PD_ASM_BASIC_AUTH": "a:b"}, None,
         "APICA_PD_ASM_AUTH_TICKET and APICA_PD_ASM_BASIC_AUTH are all set: give the ASM "
         "credential one way"),
        ({"APICA_PD_ASM_AUTH_TICKET": "9C94CBC4 C64E"}, None,
         "APICA_PD_ASM_AUTH_TICKET: not an auth_ticket (a GUID like "
         "9C94CBC4-C64E-4AEA-BBB2-8241445B06CC from ASM's Tools > API Settings)"),
        ({"APICA_PD_ASM_BASIC_AUTH": "reader"}, None,
         "APICA_PD_ASM_BASIC_AUTH: expected user:password"),
        ({}, "token abc\n", "{path}:1: expected 'ticket <auth_ticket>' or "
                            "'basic <user>:<password>'"),
        ({}, f"ticket {ASM_TICKET}\nbasic a:b\n",
         "ASM credentials file {path}: holds 2 credentials; give exactly one"),
        ({}, "# nothing\n", "ASM credentials file {path}: holds 0 credentials; give exactly one"),
    ],
)
def test_bad_credentials_are_one_line_without_the_secret(tmp_path, env, file_text, message):
    path = tmp_path / "asm-credentials"
    if file_text is not None:
        path.write_text(file_text)
        env = {**env, "APICA_PD_ASM_CREDENTIALS_FILE": str(path)}
    with pytest.raises(ConfigError) as caught:
        load_asm_credential(env)
    assert str(caught.value) == message.format(path=path)
    assert "C64E" not in str(caught.value).replace("9C94CBC4-C64E-4AEA", "")


def test_a_missing_credentials_file(tmp_path):
    path = tmp_path / "nope"
    with pytest.raises(ConfigError, match=rf"^ASM credentials file {path}: no such file$"):
        load_asm_credential({"APICA_PD_ASM_CREDENTIALS_FILE": str(path)})


def test_credentials_never_show_their_secret():
    assert repr(TicketCredential(ASM_TICKET)) == "TicketCredential(...06CC)"
    assert repr(BasicCredential("reader", "s3cret-pw")) == (
        "BasicCredential(user='reader', password=****)")


def test_redact_ticket():
    text = f"GET /v3/checks?enabled=true&auth_ticket={ASM_TICKET}&x=1 and AUTH_TICKET=abc"
    assert redact_ticket(text) == (
        "GET /v3/checks?enabled=true&auth_ticket=...06CC&x=1 and AUTH_TICKET=****")
