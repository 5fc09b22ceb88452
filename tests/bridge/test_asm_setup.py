"""The printed ASM target set-up: rendered as ASM would, it must parse with parse_webhook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.asm_setup import (
    HEADER_FLAGS,
    NAVIGATION,
    SAMPLE_VALUES,
    SetupNotes,
    body_template,
    render,
    render_json,
    render_text,
    setup_notes,
    target_setups,
)
from bridge.errors import BadWebhook
from bridge.intake.asm import parse_webhook
from bridge.intake.auth import Credentials
from tests.bridge.conftest import TOKEN

URL = "https://bridge.example.com/"
TOKEN_ONLY = Credentials(tokens=(TOKEN,))
NOTES = SetupNotes("The token is the first one in APICA_PD_TOKENS.")


def setups(routes, credentials=TOKEN_ONLY, reveal=False):
    return target_setups(routes, URL, credentials, "X-Apica-Token", reveal=reveal)


def test_one_target_per_route_with_url_headers_and_bodies(routes):
    checkout = setups(routes)[0]
    assert checkout.route_name == "checkout"
    assert checkout.trigger.url == "https://bridge.example.com/v1/asm/checkout"
    assert (checkout.trigger.method, checkout.trigger.content_type) == ("POST", "application/json")
    assert checkout.trigger.headers == {"X-Apica-Token": "<token ...cdef>",
                                        "Content-Type": "application/json"}
    assert checkout.routing_key_last4 == "...k3y1"
    assert '"action": "trigger"' in checkout.trigger.body
    assert '"action": "resolve"' in checkout.resolve.body
    assert '"message": "%QM%"\n}' in checkout.trigger.body  # the message is last
    assert "%M%" not in checkout.trigger.body


def test_secrets_are_shown_only_on_request(routes):
    assert TOKEN not in render_text(setups(routes), NOTES)
    assert TOKEN not in render_json(setups(routes), NOTES)
    assert setups(routes, reveal=True)[0].trigger.headers["X-Apica-Token"] == TOKEN


def test_basic_auth_is_described_for_asms_authentication_section(routes):
    creds = Credentials(basic=(("asm", "pass-word-0123456789"),))
    target = setups(routes, creds)[0]
    assert target.trigger.headers == {"Content-Type": "application/json"}
    assert target.authentication == "Basic: user asm, password <password ...6789>"


def test_text_output_names_every_part_in_asms_words(routes):
    text = render_text(setups(routes), NOTES)
    lines = text.splitlines()
    start = lines.index("== Route search: PagerDuty service 'Search' (PSEARCH), integration "
                        "'Apica-Search' (key ...k3y2)")
    assert lines[start + 1:start + 10] == [
        "In ASM: Manage Alerts > Recipients > Webhook (the webhook symbol next to a recipient),"
        " Service: Custom; fill in the parts below, then Add Custom WebHook Target.",
        "Service Name:          Apica-Search",
        "Global Authentication: none (leave it unset: the token header authenticates)",
        "Request Headers: add each, and tick both T (Trigger) and R (Resolve) on each (A and F "
        "off). Without R, every resolve is refused (401 without the credential, 415 without the"
        " Content-Type) and incidents never close.",
        "  X-Apica-Token: <token ...cdef>",
        "  Content-Type: application/json",
        "The token is the first one in APICA_PD_TOKENS.",
        "-- Trigger Sequence (Severity: F, E and W; one body for all three)",
        "URL:          https://bridge.example.com/v1/asm/search",
    ]
    assert (lines.count(NAVIGATION), lines.count(HEADER_FLAGS)) == (3, 3)
    assert "-- Resolve Sequence" in lines
    assert lines[-1] == ("Each check: add an alert to the target above for severities F, E "
                         "and W. Keep %QM% (not %M%) in the body.")


def test_warnings_come_first_in_the_text_and_in_the_json(routes):
    notes = SetupNotes("c", ("WARNING: one", "WARNING: two"))
    assert render_text(setups(routes), notes).startswith("WARNING: one\nWARNING: two\n\n== ")
    data = json.loads(render_json(setups(routes), notes))
    assert (data["warnings"], data["credential"]) == (["WARNING: one", "WARNING: two"], "c")


NO_PUBLIC_URL = ("WARNING: no --public-url (or APICA_PD_PUBLIC_URL): the URLs below are the "
                 "bridge's listen address http://127.0.0.1:8080, which ASM cannot reach. Give "
                 "the https:// URL ASM reaches (the proxy in front of the bridge).")
NO_CREDENTIALS = ("WARNING: the bridge has no credentials configured (APICA_PD_TOKENS, "
                  "APICA_PD_BASIC_AUTH or APICA_PD_CREDENTIALS_FILE): anyone who reaches it "
                  "can page.")
HOW_TO_PRINT = ("It is never printed in full unless asked (nor ever logged): run asm-setup "
                "again with --reveal to print it for pasting into ASM.")
BASIC = Credentials(basic=(("asm", "pass-word-0123456789"),))


# (case, credentials from env, credentials file, bridge URL, public URL given, reveal,
#  credential note, warnings)
NOTES_CASES = [
    ("token from the environment", TOKEN_ONLY, None, URL, True, False,
     f"The token is the first one in APICA_PD_TOKENS. {HOW_TO_PRINT}", ()),
    ("basic from the environment", BASIC, None, URL, True, False,
     f"The password is the first user's in APICA_PD_BASIC_AUTH. {HOW_TO_PRINT}", ()),
    ("from the credentials file", Credentials(), Path("/etc/apica-pd/credentials"), URL, True,
     False, "The credential is the first `token` (else `basic`) line of the credentials file "
     f"/etc/apica-pd/credentials (APICA_PD_CREDENTIALS_FILE). {HOW_TO_PRINT}", ()),
    ("revealed", TOKEN_ONLY, None, URL, True, True,
     "The token is the first one in APICA_PD_TOKENS. It is printed in full above (--reveal): "
     "paste it into ASM, do not keep this output.", ()),
    ("no public URL", TOKEN_ONLY, None, "http://127.0.0.1:8080", False, False,
     f"The token is the first one in APICA_PD_TOKENS. {HOW_TO_PRINT}", (NO_PUBLIC_URL,)),
    ("a loopback public URL", TOKEN_ONLY, None, "http://localhost:8080", True, False,
     f"The token is the first one in APICA_PD_TOKENS. {HOW_TO_PRINT}",
     ("WARNING: the public URL http://localhost:8080 is a loopback or unspecified address, "
      "which ASM cannot reach. Give the https:// URL ASM reaches.",)),
    ("an unspecified public URL", TOKEN_ONLY, None, "http://0.0.0.0:8080", True, False,
     f"The token is the first one in APICA_PD_TOKENS. {HOW_TO_PRINT}",
     ("WARNING: the public URL http://0.0.0.0:8080 is a loopback or unspecified address, "
      "which ASM cannot reach. Give the https:// URL ASM reaches.",)),
    ("no credentials", Credentials(), None, URL, True, False,
     "There is no credential to set.", (NO_CREDENTIALS,)),
]


@pytest.mark.parametrize(("from_env", "file", "url", "given", "reveal", "credential", "warnings"),
                         [case[1:] for case in NOTES_CASES], ids=[c[0] for c in NOTES_CASES])
def test_what_a_first_time_reader_is_told(from_env, file, url, given, reveal, credential,
                                          warnings):
    assert setup_notes(from_env, file, url, public_url_given=given, reveal=reveal) == (
        SetupNotes(credential, warnings))


def test_json_output_is_machine_readable(routes):
    data = json.loads(render_json(setups(routes), NOTES))
    assert [t["route_name"] for t in data["targets"]] == ["checkout", "search", "fallback"]
    assert data["targets"][0]["resolve"]["body"] == body_template("resolve")


def test_sample_rendering_parses_to_the_expected_alert():
    alert = parse_webhook(render(body_template("trigger"), SAMPLE_VALUES).encode(),
                          "application/json")
    assert (alert.action, alert.severity, alert.old_severity, alert.check_id) == (
        "trigger", "E", "W", 101)
    assert alert.tags == {"Team": ("Checkout",), "Tier": ("1",)}
    assert alert.timestamp == "2026-11-26T10:00:00Z"
    assert alert.message == SAMPLE_VALUES["QM"]
    assert not alert.recovered


def test_resolve_rendering_resolves():
    values = dict(SAMPLE_VALUES, S="I", **{"RESULT_G-U-I-D": ""})
    alert = parse_webhook(render(body_template("resolve"), values).encode(), "application/json")
    assert (alert.action, alert.severity, alert.result_guid) == ("resolve", "I", None)


# What ASM substitutes for one result (Apica's placeholder list): the same id twice.
ASM_RESULT_PLACEHOLDERS = {"RESULT_GUID": "a8e59d718fa949cb86c9ccfc93ff1876",
                           "RESULT_G-U-I-D": "a8e59d71-8fa9-49cb-86c9-ccfc93ff1876"}


def test_the_printed_body_carries_the_result_id_to_pagerduty_dashed(routes):
    """%RESULT_GUID% is the id without dashes; the link and details use the dashed form."""
    from bridge.intake.events import build_event

    values = {**SAMPLE_VALUES, **ASM_RESULT_PLACEHOLDERS}
    assert '"result_guid": "%RESULT_G-U-I-D%"' in body_template("trigger")
    alert = parse_webhook(render(body_template("trigger"), values).encode(), "application/json")
    event = build_event(alert, "checkout", routes.routes["checkout"], action="trigger",
                        dedup_key="k", asm_base_url="https://asm.example")
    assert event["payload"]["custom_details"]["result_guid"] == (
        "a8e59d71-8fa9-49cb-86c9-ccfc93ff1876")
    assert event["links"][1] == {
        "href": "https://asm.example/Check/Details/101"
                "?resultGuid=a8e59d71-8fa9-49cb-86c9-ccfc93ff1876",
        "text": "ASM result"}


def test_a_body_written_with_the_undashed_placeholder_gives_the_same_id():
    old = body_template("trigger").replace("%RESULT_G-U-I-D%", "%RESULT_GUID%")
    values = {**SAMPLE_VALUES, **ASM_RESULT_PLACEHOLDERS}
    alert = parse_webhook(render(old, values).encode(), "application/json")
    assert alert.result_guid == "a8e59d71-8fa9-49cb-86c9-ccfc93ff1876"


NASTY = [
    "C:\\temp\\new\\bin",
    "ends with a backslash \\",
    "line 1\nline 2\r\n\ttabbed",
    "json-looking ', 'severity': 'I",
    'the page said "error"',  # %QM% makes this single-quoted before it reaches us
    "%CHECK_ID% is not substituted twice",
    "\\u0041 \\\" \\\\",
    "{}[],:",
    "",
]


@pytest.mark.parametrize("message", NASTY)
def test_nasty_messages_survive_the_round_trip(message):
    qm = message.replace('"', "'")
    body = render(body_template("trigger"), dict(SAMPLE_VALUES, QM=qm))
    assert parse_webhook(body.encode(), "application/json").message == qm.strip()


@pytest.mark.parametrize("name", ['Shop "EU"', "Shop \\ EU", "Shop\tEU"])
def test_nasty_check_names_survive(name):
    body = render(body_template("trigger"), dict(SAMPLE_VALUES, CHECK_NAME=name))
    assert parse_webhook(body.encode(), "application/json").check_name == name


def test_message_cannot_smuggle_a_field():
    qm = "x', 'severity': 'I"  # after %QM%; and with raw double quotes, see below
    body = render(body_template("trigger"), dict(SAMPLE_VALUES, QM=qm))
    assert parse_webhook(body.encode(), "application/json").severity == "E"
    raw = render(body_template("trigger"), dict(SAMPLE_VALUES, QM='x", "severity": "I'))
    alert = parse_webhook(raw.encode(), "application/json")
    assert (alert.severity, alert.message) == ("E", 'x", "severity": "I')


@given(st.text(max_size=300))
def test_any_message_round_trips(message):
    qm = message.replace('"', "'")
    body = render(body_template("trigger"), dict(SAMPLE_VALUES, QM=qm))
    alert = parse_webhook(body.encode(), "application/json")
    assert alert.message == qm.strip()
    assert (alert.severity, alert.check_id) == ("E", 101)


@given(st.text(alphabet=st.sampled_from('ab"\\\n, :{}%'), max_size=60),
       st.text(alphabet=st.sampled_from('xy"\\, :'), max_size=20))
def test_raw_quotes_never_change_another_field(message, name):
    """Even with %M% (raw double quotes), a body is read right or refused, never misread."""
    body = render(body_template("trigger"), dict(SAMPLE_VALUES, QM=message, CHECK_NAME=name))
    try:
        alert = parse_webhook(body.encode(), "application/json")
    except BadWebhook as exc:
        assert exc.reason in ("ambiguous_json", "broken_json")
        return
    assert (alert.severity, alert.check_id, alert.action) == ("E", 101, "trigger")
    assert alert.message == message.strip()
    assert alert.check_name == (name.strip() or "ASM check 101")
