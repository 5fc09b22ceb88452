"""infra.yaml_writer: what it writes, and that the stack-file loader reads back the same."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.yaml_source import parse_yaml
from infra.yaml_writer import Block, Comment, Flow, Seq, dump, scalar


def read_back(text: str) -> object:
    return parse_yaml(text, "written.yaml").data


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("Checkout API", "Checkout API"),
        ("alice@example.com", "alice@example.com"),
        ("30m", "30m"),
        ("", '""'),
        ("09:00", '"09:00"'),
        ("true", '"true"'),
        ("null", '"null"'),
        ("1234", '"1234"'),
        ("1e3", '"1e3"'),
        ("a: b", '"a: b"'),
        ("R&D #1", '"R&D #1"'),
        ("- item", '"- item"'),
        ("trailing ", '"trailing "'),
        ('say "hi" \\o/', '"say \\"hi\\" \\\\o/"'),
        ("Ops\x1b[2K\u202e", '"Ops\\x1b[2K\\u202e"'),
        ("Zürich", "Zürich"),
        (True, "true"),
        (7, "7"),
    ],
)
def test_scalars(value: str | int | bool, written: str) -> None:
    assert scalar(value) == written
    assert read_back(f"k: {written}\n") == {"k": value}


@given(st.text(max_size=40))
def test_every_string_reads_back_as_itself(text: str) -> None:
    assert read_back(f"k: {scalar(text)}\n") == {"k": text}


def test_a_document_with_comments_sequences_and_flows() -> None:
    rules = Seq([
        Block().add("delay", "30m").add("targets", Seq([Block().add("user", "a@example.com")])),
        Comment("the second rule"),
        Block().comment("before the first key").add("delay", "1h").add("targets", Seq(["x"])),
    ])
    document = Block(spaced=True)
    document.add("apica", Block().add("vendor_id", "PAPICA1"))
    document.comment("policies follow")
    document.add("policy", Block().add("rules", rules).add("pause", Flow({"enabled": False})))
    document.add("days", Flow(["mon", "tue"]))
    text = dump(document, ["yaml-language-server: $schema=./schema.json", "", "line\nbreak"])
    assert text == (
        "# yaml-language-server: $schema=./schema.json\n"
        "#\n"
        "# line\\x0abreak\n"
        "\n"
        "apica:\n"
        "  vendor_id: PAPICA1\n"
        "\n"
        "# policies follow\n"
        "policy:\n"
        "  rules:\n"
        "    - delay: 30m\n"
        "      targets:\n"
        "        - user: a@example.com\n"
        "    # the second rule\n"
        "    # before the first key\n"
        "    - delay: 1h\n"
        "      targets:\n"
        "        - x\n"
        "  pause: {enabled: false}\n"
        "\n"
        "days: [mon, tue]\n"
    )
    assert read_back(text) == {
        "apica": {"vendor_id": "PAPICA1"},
        "policy": {
            "rules": [
                {"delay": "30m", "targets": [{"user": "a@example.com"}]},
                {"delay": "1h", "targets": ["x"]},
            ],
            "pause": {"enabled": False},
        },
        "days": ["mon", "tue"],
    }


def test_comments_cannot_break_out_of_their_line() -> None:
    text = dump(Block().comment("PagerDuty: 'x'\nservices: {}").add("k", 1))
    assert text == "# PagerDuty: 'x'\\x0aservices: {}\nk: 1\n"
    assert read_back(text) == {"k": 1}


def test_empty_collections_are_written_empty() -> None:
    text = dump(Block().add("rules", Seq([Comment("none left")])).add("checks", Block()))
    assert text == "# none left\nrules: []\nchecks: {}\n"
    assert read_back(text) == {"rules": [], "checks": {}}
