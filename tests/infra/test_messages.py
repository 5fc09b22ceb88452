"""infra.messages: values from files shown escaped, quoted and described."""

from __future__ import annotations

from typing import Any

import pytest

from infra.messages import describe, escape, escape_lines, quoted


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Checkout API", "Checkout API"),
        ("Café 😀 ünïcode", "Café 😀 ünïcode"),
        ("a\x1b[2Kb", "a\\x1b[2Kb"),
        ("cr\rlf\nnul\x00tab\t", "cr\\x0dlf\\x0anul\\x00tab\\x09"),
        ("del\x7f c1\x9b nel\x85", "del\\x7f c1\\x9b nel\\x85"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("bidi\u202eisolate\u2066mark\u200f", "bidi\\u202eisolate\\u2066mark\\u200f"),
        ("tag\U000e0041", "tag\\U000e0041"),
    ],
)
def test_escape_shows_every_non_printable_character(text: str, shown: str) -> None:
    assert escape(text) == shown


def test_escape_lines_keeps_our_line_breaks_only() -> None:
    assert escape_lines("first\x1b\nsecond\r") == "first\\x1b\nsecond\\x0d"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("web", "'web'"),
        ("x" * 50, "'" + "x" * 35 + "...'"),
        ("\x1b[2K", "'\\x1b[2K'"),
        (12, "12"),
    ],
)
def test_quoted(value: Any, shown: str) -> None:
    assert quoted(value) == shown


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "an empty value"),
        (True, "a boolean (true)"),
        (5, "a number (5)"),
        (1.5, "a number (1.5)"),
        ("yes", "a string ('yes')"),
        ("y" * 41, "a string"),
        ({"a": 1}, "a mapping"),
        ([1], "a list"),
    ],
)
def test_describe(value: Any, words: str) -> None:
    assert describe(value) == words
