"""The printed ASM target set-up: rendered as ASM would, it must parse with parse_webhook."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.asm_setup import (
    SAMPLE_VALUES,
    body_template,
    render,
    render_json,
    render_text,
    target_setups,
)
from bridge.errors import BadWebhook
from bridge.intake.asm import parse_webhook
from bridge.intake.auth import Credentials
from tests.bridge.conftest import TOKEN

URL = "https://bridge.example.com/"
TOKEN_ONLY = Credentials(tokens=(TOKEN,))


def setups(routes, credentials=TOKEN_ONLY, reveal=False):
    return target_setups(routes, URL, credentials, "X-Apica-Token", reveal=reveal)


def test_one_target_per_route_with_url_headers_and_bodies(routes):
    checkout = setups(routes)[0]
    assert checkout.route_name == "checkout"
    assert checkout.trigger.url == "https://bridge.example.com/v1/asm/checkout"
    assert (checkout.trigger.method, checkout.trigger.content_type) == ("POST", "application/json")
    assert checkout.trigger.headers == {"X-Apica-Token": "<token ...cdef>"}
    assert checkout.routing_key_last4 == "...k3y1"
    assert '"action": "trigger"' in checkout.trigger.body
    assert '"action": "resolve"' in checkout.resolve.body
    assert '"message": "%QM%"\n}' in checkout.trigger.body  # the message is last
    assert "%M%" not in checkout.trigger.body


def test_secrets_are_shown_only_on_request(routes):
    assert TOKEN not in render_text(setups(routes))
    assert TOKEN not in render_json(setups(routes))
    assert setups(routes, reveal=True)[0].trigger.headers == {"X-Apica-Token": TOKEN}


def test_basic_auth_is_described_for_asms_authentication_section(routes):
    creds = Credentials(basic=(("asm", "pass-word-0123456789"),))
    target = setups(routes, creds)[0]
    assert target.trigger.headers == {}
    assert target.authentication == "Basic: user asm, password <password ...6789>"


def test_text_output_names_every_part(routes):
    text = render_text(setups(routes))
    for expected in (
        "== Route search: PagerDuty service 'Search' (PSEARCH), integration 'Apica-Search' "
        "(key ...k3y2)",
        "URL:          https://bridge.example.com/v1/asm/fallback",
        "Header:       X-Apica-Token: <token ...cdef>",
        "-- Resolve sequence",
        "Keep %QM% (not %M%) in the body.",
    ):
        assert expected in text


def test_json_output_is_machine_readable(routes):
    data = json.loads(render_json(setups(routes)))
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
