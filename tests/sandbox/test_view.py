"""The plain-table rendering of incidents."""

from __future__ import annotations

import re

from sandbox.view import render_change_events, render_incidents, short_key


def incident(**overrides):
    base = {
        "incident_number": 1,
        "service_name": "Checkout API",
        "urgency": "high",
        "status": "triggered",
        "incident_key": "asm-101",
        "title": "Checkout login failed",
        "alerts": [
            {
                "summary": "Checkout login failed",
                "links": [{"href": "https://asm.example.com/c/101", "text": "Check 101"}],
            }
        ],
    }
    return {**base, **overrides}


def test_table_has_a_header_and_one_line_per_incident():
    second = incident(
        incident_number=2,
        service_name="Search",
        urgency="low",
        status="resolved",
        incident_key="asm-7",
        alerts=[{"summary": "slow\nsearch", "links": []}],
    )
    assert render_incidents([incident(), second]).splitlines() == [
        "#  SERVICE       URGENCY  STATUS     DEDUP KEY  SUMMARY                LINKS",
        "1  Checkout API  high     triggered  asm-101    Checkout login failed  "
        "Check 101 <https://asm.example.com/c/101>",
        "2  Search        low      resolved   asm-7      slow search            -",
    ]


def test_long_summaries_are_cut_to_one_cell():
    line = render_incidents([incident(alerts=[{"summary": "x" * 200}])]).splitlines()[1]
    assert "x" * 59 + "…" in line
    assert "x" * 61 not in line


def test_no_incidents_says_so():
    assert render_incidents([]) == "no incidents\n"


def test_keys_are_shown_by_last_four():
    assert short_key("a" * 28 + "wxyz") == "...wxyz"


def test_change_events_table():
    assert render_change_events([]) == "no change events\n"
    header, row = render_change_events([{
        "service_name": "Checkout API",
        "timestamp": "2026-01-05T11:58:00Z",
        "summary": "escalation policy: 30m -> 10m",
        "links": [{"href": "https://github.com/org/stacks/commit/abc123", "text": "commit"}],
    }]).splitlines()
    assert re.split(r"  +", header) == ["SERVICE", "TIMESTAMP", "SUMMARY", "LINKS"]
    assert re.split(r"  +", row) == [
        "Checkout API", "2026-01-05T11:58:00Z", "escalation policy: 30m -> 10m",
        "commit <https://github.com/org/stacks/commit/abc123>",
    ]
    assert header.index("SUMMARY") == row.index("escalation")
