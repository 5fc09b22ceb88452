"""Recovering flat JSON objects broken by raw-text substitution."""

from __future__ import annotations

import pytest

from bridge.intake.json_recovery import Ambiguous, Unrecoverable, recover_flat_object

KNOWN = {"a", "b", "c"}


def known(key: str) -> str | None:
    return key if key in KNOWN else None


def test_literal_contents_and_bare_values():
    text = '{"a": "x\\ny "q"", "b": 12, "c": }'
    assert recover_flat_object(text, known) == [("a", 'x\\ny "q"'), ("b", 12), ("c", None)]


def test_empty_object():
    assert recover_flat_object(" { } ", known) == []


def test_the_reading_with_most_fields_wins():
    # "a" could swallow the rest; splitting into three fields is the reading we take.
    assert recover_flat_object('{"a": "1", "b": "2\\", "c": "3"}', known) == [
        ("a", "1"), ("b", "2\\"), ("c", "3"),
    ]


def test_a_tie_is_ambiguous():
    with pytest.raises(Ambiguous, match="can be read in more than one way"):
        recover_flat_object('{"a": "1", "b": "2", "b": "3\\"}', known)


def test_accept_can_veto_a_reading():
    text = '{"a": "1", "b": "2", "b": "3\\"}'
    pairs = recover_flat_object(text, known, lambda field, value: '"' not in str(value)
                                or field == "b")
    assert pairs == [("a", "1"), ("b", '2", "b": "3\\')]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('["a"]', "it is not an object in braces"),
        ('{"zz": "1\\"}', "no reading makes it an object of known ASM fields"),
        ('{"a": nope}', "no reading makes it an object"),
        ('{"a": 1, "a": 2}', "no reading makes it an object"),
    ],
)
def test_unrecoverable(text, message):
    with pytest.raises(Unrecoverable, match=message):
        recover_flat_object(text, known)


def test_budget_stops_hostile_input():
    with pytest.raises(Unrecoverable, match="too many quotes to recover it safely"):
        recover_flat_object('{"a": "' + '"' * 5000 + '"}', known, budget=1000)
