"""ASM webhook bodies -> AsmAlert: fields, actions, and broken or hostile bodies."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from bridge.errors import BadWebhook, UnsupportedContentType
from bridge.intake.asm import AsmAlert, normalize_timestamp, parse_groups, parse_tags, parse_webhook

JSON = "application/json"
GUID = "a8e59d71-8fa9-49cb-86c9-ccfc93ff1876"
FORM = "application/x-www-form-urlencoded"


def body(**fields: object) -> bytes:
    doc = {"severity": "E", "check_id": "101", "check_name": "Shop", "message": "down"}
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def test_full_json_body_is_read_field_by_field():
    raw = {
        "action": "trigger", "severity": "F", "old_severity": "W", "check_id": "42",
        "check_guid": "6F9619FF-8B86-D011-B42D-00C04FC964FF", "check_name": "Login",
        "check_type": "Scenario", "message": "step 3 failed", "timestamp": "2026-11-26T10:00:00",
        "location": "Frankfurt", "groups": "Web, Prod", "tags": "Team: A, B; Tier: 1",
        "result_guid": "A8E59D718FA949CB86C9CCFC93FF1876",
    }
    alert = parse_webhook(json.dumps(raw).encode(), JSON)
    assert alert == AsmAlert(
        action="trigger", severity="F", old_severity="W", check_id=42,
        check_guid="6F9619FF-8B86-D011-B42D-00C04FC964FF", check_name="Login",
        check_type="Scenario", message="step 3 failed", timestamp="2026-11-26T10:00:00Z",
        location="Frankfurt", groups=("Web", "Prod"), tags={"Team": ("A", "B"), "Tier": ("1",)},
        result_guid="a8e59d71-8fa9-49cb-86c9-ccfc93ff1876",
    )
    assert alert.check_key == "id:42"


@pytest.mark.parametrize(
    ("fields", "action", "severity"),
    [
        ({"severity": "E"}, "trigger", "E"),
        ({"severity": "W"}, "trigger", "W"),
        ({"severity": "I"}, "resolve", "I"),
        ({"severity": "Fatal"}, "trigger", "F"),
        ({"severity": "info"}, "resolve", "I"),
        ({"action": "resolve", "severity": None}, "resolve", "I"),
        ({"action": "resolve", "severity": "W"}, "resolve", "W"),
        ({"action": "RESOLVED", "severity": "E"}, "resolve", "E"),
        ({"event": "trigger", "severity": "E"}, "trigger", "E"),
        # I means back to normal: a "trigger" to I closes, it never pages.
        ({"action": "trigger", "severity": "I"}, "resolve", "I"),
    ],
)
def test_action_is_explicit_or_derived_from_the_new_severity(fields, action, severity):
    alert = parse_webhook(body(**fields), JSON)
    assert (alert.action, alert.severity) == (action, severity)


def test_keys_match_loosely_and_aliases_work():
    raw = {"CHECK-ID": "7", "New Sev Char": "W", "Check Name": "x", "QM": "m",
           "UTC-T": "2026-01-02T03:04:05", "RESULT_G-U-I-D": GUID, "Extra": "ignored"}
    alert = parse_webhook(json.dumps(raw).encode(), JSON)
    assert (alert.check_id, alert.severity, alert.message, alert.result_guid) == (7, "W", "m", GUID)
    assert alert.timestamp == "2026-01-02T03:04:05Z"


def test_unsubstituted_and_empty_placeholders_count_as_missing():
    alert = parse_webhook(
        body(check_guid="%CHECK_GUID%", result_guid="", location="%LOCATION%", tags="%CHECK_TAGS%"),
        JSON,
    )
    assert (alert.check_guid, alert.result_guid, alert.location, alert.tags) == (
        None, None, None, {},
    )


def test_check_key_falls_back_to_guid_then_name():
    by_guid = parse_webhook(body(check_id=None, check_guid="ABC-1"), JSON)
    by_name = parse_webhook(body(check_id=None), JSON)
    assert (by_guid.check_key, by_name.check_key) == ("guid:abc-1", "name:Shop")
    unnamed = parse_webhook(body(check_name=None), JSON)
    assert unnamed.check_name == "ASM check 101"


def test_numbers_in_json_are_accepted():
    alert = parse_webhook(json.dumps({"severity": "E", "check_id": 9, "check_name": "x"}).encode(),
                          JSON)
    assert alert.check_id == 9


def test_form_urlencoded_body():
    form = urlencode({"action": "trigger", "severity": "W", "check_id": "5",
                      "check_name": "Ping", "message": 'a "quoted" & odd \\ message'})
    alert = parse_webhook(form.encode(), f"{FORM}; charset=utf-8")
    assert (alert.check_id, alert.message) == (5, 'a "quoted" & odd \\ message')


# Raw-text substitution breaks JSON; these bodies have exactly one sensible reading.
RECOVERABLE = [
    ("raw newline", '{"severity": "E", "check_name": "Shop", "message": "line 1\nline 2"}',
     "line 1\nline 2"),
    ("raw tab and CR", '{"severity": "E", "check_name": "Shop", "message": "a\tb\r\nc"}',
     "a\tb\r\nc"),
    ("windows path", '{"severity": "E", "check_name": "Shop", "message": "C:\\temp\\x.log"}',
     "C:\\temp\\x.log"),
    ("trailing backslash", '{"severity": "E", "check_name": "Shop", "message": "ends \\"}',
     "ends \\"),
    ("quotes from %M%", '{"severity": "E", "check_name": "Shop", "message": "said "no", "stop""}',
     'said "no", "stop"'),
    ("empty unquoted id",
     '{"severity": "E", "check_id": , "check_name": "Shop", "message": "a\\b"}', "a\\b"),
    ("injected field, message last",
     '{"severity": "E", "check_name": "Shop", "message": "x", "severity": "I"}',
     'x", "severity": "I'),
]


@pytest.mark.parametrize(("case", "text", "message"), RECOVERABLE, ids=[c[0] for c in RECOVERABLE])
def test_broken_json_with_one_reading_is_recovered(case, text, message):
    alert = parse_webhook(text.encode(), JSON)
    assert alert.message == message
    assert alert.severity == "E"
    assert alert.recovered


def test_quotes_in_check_name_are_recovered():
    text = '{"severity": "E", "check_name": "Shop "EU"", "message": "down"}'
    assert parse_webhook(text.encode(), JSON).check_name == 'Shop "EU"'


REFUSED = [
    ("empty", b"", "broken_json", "body is not valid JSON (line 1 column 1: Expecting value)"),
    ("array", b"[1, 2]", "not_an_object", "body must be a JSON object of ASM fields"),
    ("not utf-8", b'{"message": "\xff"}', "bad_encoding", "body is not UTF-8 (byte 13"),
    ("truncated", b'{"severity": "E", "message": "x', "broken_json",
     "cannot be recovered: it is not an object in braces"),
    ("unknown key needed", b'{"severity": "E", "mystery": "a\\q", "check_name": "x"}',
     "broken_json", "cannot be recovered: no reading makes it an object of known ASM fields"),
    ("injection before other fields",
     b'{"severity": "E", "message": "a", "check_name": "evil", "check_name": "real"}',
     "ambiguous_json", "use %QM% rather than %M%"),
    ("no action no severity", b'{"check_id": "1", "check_name": "x"}', "no_severity",
     "body has neither 'action' nor 'severity': cannot tell trigger from resolve"),
    ("trigger without severity", b'{"action": "trigger", "check_id": "1"}', "no_severity",
     "a trigger needs field 'severity' (F, E, W or I)"),
    ("bad severity", b'{"severity": "Z", "check_id": "1"}', "bad_severity",
     "field 'severity' is 'Z'; expected F, E, W or I"),
    ("bad action", b'{"action": "snooze", "severity": "E", "check_id": "1"}', "bad_action",
     "field 'action' is 'snooze'; expected trigger or resolve"),
    ("bad check id", b'{"severity": "E", "check_id": "12a"}', "bad_field",
     "field 'check_id' is '12a'; expected a whole number"),
    ("no identity", b'{"severity": "E", "message": "x"}', "no_check",
     "body names no check: send check_id, check_guid or check_name"),
    ("object value", b'{"severity": "E", "check_name": {"a": 1}}', "bad_field",
     "field 'check_name' must be text or a number"),
    ("too long", body(message="x" * 16385), "field_too_long",
     "field 'message' is 16385 characters; the limit is 16384"),
    ("guid with space", body(check_guid="a b"), "bad_field",
     "field 'check_guid' must not contain whitespace"),
    # Python's int digit limit raised a ValueError: 500 and a traceback.
    ("5,000-digit check id", b'{"severity": "E", "check_id": ' + b"9" * 5000 + b"}",
     "bad_number", "body has a number of 5000 digits; the limit is 100 (ASM's numbers are "
     "check ids of at most 18 digits)"),
    ("5,000-digit number in an ignored field",
     b'{"severity": "E", "check_id": 1, "extra": -' + b"1" * 5000 + b"}",
     "bad_number", "body has a number of 5000 digits; the limit is 100"),
    ("5,000-digit number in a tag list",
     b'{"severity": "E", "check_id": 1, "tags": {"T": [' + b"1" * 5000 + b"]}}",
     "bad_number", "body has a number of 5000 digits; the limit is 100"),
]


@pytest.mark.parametrize(("case", "raw", "reason", "message"), REFUSED,
                         ids=[c[0] for c in REFUSED])
def test_unreadable_bodies_are_refused_with_a_reason(case, raw, reason, message):
    with pytest.raises(BadWebhook) as caught:
        parse_webhook(raw, JSON)
    assert caught.value.reason == reason
    assert message in str(caught.value)


def test_duplicate_form_field_is_refused():
    with pytest.raises(BadWebhook, match="field 'message' is given more than once"):
        parse_webhook(b"severity=E&check_id=1&message=a&msg=b", FORM)


@pytest.mark.parametrize("content_type", ["text/plain", "", "multipart/form-data; boundary=x"])
def test_other_content_types_are_refused(content_type):
    with pytest.raises(UnsupportedContentType) as caught:
        parse_webhook(body(), content_type)
    assert caught.value.status == 415


def test_json_variants_are_accepted():
    assert parse_webhook(body(), "application/vnd.asm+json; charset=utf-8").check_id == 101
    assert parse_webhook(b"\xef\xbb\xbf" + body(), JSON).check_id == 101


def test_hostile_body_full_of_quotes_is_refused_quickly():
    text = '{"severity": "E", "check_name": "' + '", "' * 20000 + '"}'
    with pytest.raises(BadWebhook):
        parse_webhook(text.encode(), JSON)


@pytest.mark.parametrize(
    ("raw", "tags"),
    [
        ("Team: Checkout, Web; Tier: 1", {"Team": ("Checkout", "Web"), "Tier": ("1",)}),
        ("Flag", {"Flag": ()}),
        (" ; ", {}),
        ({"Team": ["A"], "Tier": "1, 2"}, {"Team": ("A",), "Tier": ("1", "2")}),
        (None, {}),
    ],
)
def test_tags(raw, tags):
    assert parse_tags(raw) == tags


def test_groups():
    assert parse_groups("Web, Prod,,") == ("Web", "Prod")
    assert parse_groups(["a", " b "]) == ("a", "b")


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        # What %RESULT_GUID% gives (no dashes) and what %RESULT_G-U-I-D% gives (dashes).
        ("a8e59d718fa949cb86c9ccfc93ff1876", GUID),
        (GUID, GUID),
        ("A8E59D71-8FA9-49CB-86C9-CCFC93FF1876", GUID),
        (" {a8e59d71-8fa9-49cb-86c9-ccfc93ff1876} ", GUID),
        ("abc-123", None),
        ("", None),
        ("%RESULT_G-U-I-D%", None),
    ],
)
def test_the_result_id_is_read_in_either_spelling_and_kept_in_one(raw, canonical):
    alert = parse_webhook(body(result_guid=raw), JSON)
    assert alert.result_guid == canonical


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("2026-11-26T10:00:00", "2026-11-26T10:00:00Z"),
        ("2026-11-26 10:00:00", "2026-11-26T10:00:00Z"),
        ("2026-11-26T12:00:00+02:00", "2026-11-26T10:00:00Z"),
        ("yesterday", None),
        (None, None),
        # Offsets that move the edge of the date range past year 1 or 9999 in UTC.
        ("0001-01-01T00:00:00+14:00", None),
        ("9999-12-31T23:59:59-14:00", None),
    ],
)
def test_timestamps_become_utc(raw, normal):
    assert normalize_timestamp(raw) == normal


def test_raw_format_reads_backslashes_literally():
    text = ('{"format": "asm-raw", "severity": "E", "check_name": "x", '
            '"message": "C:\\temp\\new \\u0041 \\\\share"}')
    assert parse_webhook(text.encode(), JSON).message == "C:\\temp\\new \\u0041 \\\\share"
    # Without the marker the same (valid) JSON is read as JSON.
    plain = text.replace('"format": "asm-raw", ', "")
    assert parse_webhook(plain.encode(), JSON).message == "C:\temp\new A \\share"


def test_raw_format_falls_back_to_json_when_a_value_is_structured():
    text = '{"format": "asm-raw", "severity": "E", "check_name": "x", "groups": ["a", "b"]}'
    alert = parse_webhook(text.encode(), JSON)
    assert (alert.check_name, alert.groups) == ("x", ("a", "b"))


def test_placeholder_looking_message_and_name_are_kept():
    alert = parse_webhook(body(message="%QM%", check_name="%CHECK_NAME%"), JSON)
    assert (alert.message, alert.check_name) == ("%QM%", "%CHECK_NAME%")


@pytest.mark.parametrize(
    ("raw", "reason", "message"),
    [
        (b"[" * 60000, "broken_json", "body is nested too deeply to be ASM fields"),
        (b'{"severity": "E", "check_name": "x", "tags": {"a": {"b": 1}}}', "bad_field",
         "field 'tags' must hold text or numbers"),
        (b'{"severity": "E", "check_name": "x", "groups": ["a", ["b"]]}', "bad_field",
         "field 'groups' must hold text or numbers"),
        (b'{"severity": 1e999, "check_name": "x"}', "bad_severity", "field 'severity' is 'inf'"),
        (b'{"severity": "E", "check_id": NaN}', "bad_field", "field 'check_id' is 'nan'"),
    ],
)
def test_hostile_json_shapes_are_refused(raw, reason, message):
    with pytest.raises(BadWebhook) as caught:
        parse_webhook(raw, JSON)
    assert (caught.value.reason, message in str(caught.value)) == (reason, True)


def test_too_many_form_fields_are_refused():
    with pytest.raises(BadWebhook, match="form body cannot be read: Max number of fields"):
        parse_webhook(b"a=" + b"&" * 5000, FORM)


# Hostile bodies that must still page: read, with the hostile part made harmless.
ACCEPTED_HOSTILE = [
    ("timestamp out of range in UTC",
     b'{"severity": "F", "check_id": 1, "timestamp": "0001-01-01T00:00:00+14:00"}',
     "timestamp", None),
    ("lone surrogate in message", b'{"severity": "F", "check_id": 1, "message": "a\\ud800b"}',
     "message", "a\ufffdb"),
    ("lone low surrogate in name", b'{"severity": "F", "check_id": 1, "check_name": "\\udfff"}',
     "check_name", "\ufffd"),
    ("surrogates in tags and groups",
     b'{"severity": "F", "check_id": 1, "tags": {"T\\ud800": ["\\udc00"]},'
     b' "groups": ["g\\ud800"]}',
     "tags", {"T\ufffd": ("\ufffd",)}),
    ("a 100-digit number is read", b'{"severity": "F", "check_id": 1, "message": '
     + b"7" * 100 + b"}", "message", "7" * 100),
    ("a number of huge magnitude as a float", b'{"severity": "F", "check_id": 1, "message": '
     + b"1" * 5000 + b'.5}', "message", "inf"),
    ("valid surrogate pair is kept",
     b'{"severity": "F", "check_id": 1, "message": "\\ud83d\\ude00"}',
     "message", "\U0001f600"),
]


@pytest.mark.parametrize(("case", "raw", "field", "expected"), ACCEPTED_HOSTILE,
                         ids=[c[0] for c in ACCEPTED_HOSTILE])
def test_hostile_bodies_that_still_page(case, raw, field, expected):
    from bridge.intake.accept import fingerprint

    alert = parse_webhook(raw, JSON)
    assert getattr(alert, field) == expected
    fingerprint("web", alert)  # the text is encodable: the store can take it
