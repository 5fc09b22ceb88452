"""infra.yaml_source: plain data with positions, and a problem (never a traceback) for bad input."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.errors import StackFileInvalid, StackFileUnreadable
from infra.yaml_source import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    Mark,
    Span,
    YamlDocument,
    load_yaml,
    parse_yaml,
)


@pytest.fixture
def load(write_stack: Callable[..., Path]) -> Callable[[str | bytes], YamlDocument]:
    def run(content: str | bytes) -> YamlDocument:
        return load_yaml(write_stack(content), display="s.yaml")

    return run


@pytest.fixture
def refused(load: Callable[[str | bytes], YamlDocument]) -> Callable[[str | bytes], list[str]]:
    def run(content: str | bytes) -> list[str]:
        with pytest.raises(StackFileInvalid) as caught:
            load(content)
        return [str(problem) for problem in caught.value.problems]

    return run


# --- what is refused, with the exact message and position ---------------------------

BILLION_LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]\n"
    for prev, name in zip("abcdef", "bcdefg", strict=True)
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            "a: 1\nb: 2\na: 3\n",
            ["s.yaml:3:1: duplicate key 'a' (first at line 1, again at line 3): keep one"],
            id="duplicate-key",
        ),
        pytest.param(
            "services:\n  web:\n    name: A\n    name: B\n",
            ["s.yaml:4:5: duplicate key 'name' (first at line 3, again at line 4): keep one"],
            id="duplicate-nested-key",
        ),
        pytest.param(
            "a:\n\tb: 1\nc:\n  \td: 2\n",
            [
                "s.yaml:2:1: tab in indentation: YAML indents with spaces only",
                "s.yaml:4:3: tab in indentation: YAML indents with spaces only",
            ],
            id="tabs",
        ),
        pytest.param(
            "",
            ["s.yaml:1:1: the file is empty: a stack needs at least `services:`"],
            id="empty",
        ),
        pytest.param(
            "# only a comment\n\n",
            ["s.yaml:1:1: the file is empty: a stack needs at least `services:`"],
            id="only-comments",
        ),
        pytest.param(
            "- web\n- search\n",
            [
                "s.yaml:1:1: the top level must be a mapping (defaults:, escalation_policies:, "
                "services:, ...), not a list"
            ],
            id="top-level-list",
        ),
        pytest.param(
            "just text\n",
            [
                "s.yaml:1:1: the top level must be a mapping (defaults:, escalation_policies:, "
                "services:, ...), not a string ('just text')"
            ],
            id="top-level-scalar",
        ),
        pytest.param(
            "a: 1\n---\nb: 2\n",
            ["s.yaml:2:1: more than one YAML document (---): put one stack in each file"],
            id="two-documents",
        ),
        pytest.param(
            "services:\n  404: {}\n",
            ["s.yaml:2:3: keys must be strings, not '404': quote it, e.g. \"404\""],
            id="int-key",
        ),
        pytest.param(
            "? [a, b]\n: 1\nc: 2\n",
            ["s.yaml:1:3: keys must be plain strings, not lists, mappings or aliases"],
            id="list-key",
        ),
        pytest.param(
            "base: &base {a: 1}\nweb:\n  <<: *base\n",
            [
                "s.yaml:3:3: merge keys (<<) are not supported: repeat the keys, or move "
                "shared settings to `defaults`"
            ],
            id="merge-key",
        ),
        pytest.param(
            "a: [1, 2\nb: 3\n",
            [
                "s.yaml:2:2: not valid YAML: did not find expected ',' or ']' "
                "(while parsing a flow sequence at line 1)"
            ],
            id="syntax-error",
        ),
        pytest.param(
            "a: *nowhere\n",
            ["s.yaml:1:4: alias *nowhere has no anchor: define &nowhere before using *nowhere"],
            id="undefined-alias",
        ),
        pytest.param(
            "a: &x [1, *x]\n",
            ["s.yaml:1:11: alias *x refers to a node that contains it (a cycle)"],
            id="alias-cycle",
        ),
        pytest.param(
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + BILLION_LAUGHS,
            [
                "s.yaml:6:20: the document expands to more than 500,000 values "
                "(an alias repeated too often?)"
            ],
            id="billion-laughs",
        ),
        pytest.param(
            "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n",
            [f"s.yaml:1:{MAX_DEPTH + 3}: nesting is deeper than {MAX_DEPTH} levels"],
            id="too-deep",
        ),
        pytest.param(
            "a: !!python/object:os.system echo\nb: !!binary aGk=\nc: !!set {x}\n",
            [
                "s.yaml:1:4: unsupported tag !!python/object:os.system: write a plain value",
                "s.yaml:2:4: unsupported tag !!binary: write a plain value",
                "s.yaml:3:4: unsupported tag !!set: remove it",
            ],
            id="unsafe-tags",
        ),
        pytest.param(
            "a: !!int twelve\n",
            ["s.yaml:1:4: 'twelve' is not a valid int"],
            id="bad-explicit-int",
        ),
        pytest.param(
            "name: ok\nbell: \x07\n",
            ["s.yaml:2:7: control character 0x0007 is not allowed in YAML text"],
            id="control-character",
        ),
        pytest.param(
            "name: ok\nbell: \u00e9\u00e9\x07\n",
            ["s.yaml:2:9: control character 0x0007 is not allowed in YAML text"],
            id="control-character-column-in-characters",
        ),
        pytest.param(
            "# caf\u00e9 \u2028 note\nbell: \u00e9\x1b[2K\n",
            ["s.yaml:2:8: control character 0x001b is not allowed in YAML text"],
            id="control-character-line-after-a-line-separator",
        ),
        pytest.param(
            "a: &x 1\nb: &x 2\nc: *x\n",
            ["s.yaml:2:4: anchor &x is defined twice (first at line 1): rename one"],
            id="anchor-defined-twice",
        ),
        pytest.param(
            "a: &k x\n*k : 2\n",
            ["s.yaml:2:1: keys must be plain strings, not lists, mappings or aliases"],
            id="alias-key",
        ),
        pytest.param(
            "a: !!int 1_000\n",
            ["s.yaml:1:4: '1_000' is not a valid int"],
            id="explicit-int-yaml-1-1-spelling",
        ),
        pytest.param(
            b"a: 1\nb: \xff\xfe\n",
            ["s.yaml:2:4: is not UTF-8 text (binary data or another encoding?)"],
            id="not-utf8",
        ),
        pytest.param(
            "a: 1\nb: \u00e9\u00e9".encode() + b"\xff\n",
            ["s.yaml:2:6: is not UTF-8 text (binary data or another encoding?)"],
            id="not-utf8-column-in-characters",
        ),
        pytest.param(
            b"a: 1\nb: \x00\x01\x02\n",
            ["s.yaml:2:4: contains NUL bytes: not a YAML text file"],
            id="nul-bytes",
        ),
    ],
)
def test_refused_with_position(
    refused: Callable[[str | bytes], list[str]], content: str | bytes, expected: list[str]
) -> None:
    assert refused(content) == expected


def test_every_duplicate_key_is_reported_at_once(refused: Callable[[str], list[str]]) -> None:
    assert refused("a: 1\na: 2\nb: 1\nb: 2\n") == [
        "s.yaml:2:1: duplicate key 'a' (first at line 1, again at line 2): keep one",
        "s.yaml:4:1: duplicate key 'b' (first at line 3, again at line 4): keep one",
    ]


# --- files that cannot be read ----------------------------------------------------


def _unreadable(path: Path | str) -> str:
    with pytest.raises(StackFileUnreadable) as caught:
        load_yaml(path)
    (problem,) = caught.value.problems
    assert problem.line is None
    return str(problem)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert _unreadable(path) == f"{path}: no such file"


def test_directory(tmp_path: Path) -> None:
    assert _unreadable(tmp_path) == f"{tmp_path}: is a directory, not a stack file"


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert _unreadable(fifo) == f"{fifo}: is not a regular file (a FIFO, socket or device?)"


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:  # sparse: no need to write 5 MB
        handle.truncate(MAX_FILE_BYTES + 1)
    # The one bounded reader (contract.files) words it.
    assert _unreadable(big) == (
        f"{big}: is 5,242,881 bytes; a stack file may be at most 5,242,880 bytes (5 MiB)")


# --- what comes back for good input ----------------------------------------------


def test_yaml_1_2_scalars(load: Callable[[str], YamlDocument]) -> None:
    doc = load(
        """\
        off_word: off
        yes_word: yes
        no_word: NO
        clock: 17:00
        date: 2026-11-26
        hex: 0x1f
        octal: 0o17
        negative: -3
        real: 1.5
        exp: 1e3
        yes_bool: true
        no_bool: False
        nothing: ~
        also_nothing:
        quoted_number: "42"
        underscore: 1_000
        """
    )
    assert doc.data == {
        "off_word": "off",
        "yes_word": "yes",
        "no_word": "NO",
        "clock": "17:00",
        "date": "2026-11-26",
        "hex": 31,
        "octal": 15,
        "negative": -3,
        "real": 1.5,
        "exp": 1000.0,
        "yes_bool": True,
        "no_bool": False,
        "nothing": None,
        "also_nothing": None,
        "quoted_number": "42",
        "underscore": "1_000",
    }


def test_positions_of_keys_and_values(load: Callable[[str], YamlDocument]) -> None:
    doc = load(
        """\
        services:
          web:
            name: Web
            checks: [1, 2]
        """
    )
    positions = doc.positions
    assert positions.get(("services", "web", "name")) == Span(Mark(3, 11), Mark(3, 5))
    assert positions.get(("services", "web", "checks", 1)) == Span(Mark(4, 17))
    assert positions.get(()) == Span(Mark(1, 1))


def test_missing_paths_fall_back_to_the_nearest_node(load: Callable[[str], YamlDocument]) -> None:
    doc = load("services:\n  web:\n    name: Web\n")
    assert doc.positions.value(("services", "web", "team")) == Mark(3, 5)
    assert doc.positions.key(("services", "web", "team")) == Mark(2, 3)
    assert doc.positions.key(("nothing", "here")) == Mark(1, 1)


def test_aliases_share_their_anchor_data(load: Callable[[str], YamlDocument]) -> None:
    doc = load("a: &checks {ids: [1]}\nb: *checks\n")
    assert doc.data == {"a": {"ids": [1]}, "b": {"ids": [1]}}
    assert doc.positions.value(("b", "ids", 0)) == Mark(2, 4)  # the alias, not the anchor


def test_bom_and_crlf_are_fine(load: Callable[[bytes], YamlDocument]) -> None:
    doc = load(b"\xef\xbb\xbfa: 1\r\nb:\r\n  c: 2\r\n")
    assert doc.data == {"a": 1, "b": {"c": 2}}
    assert doc.positions.value(("b", "c")) == Mark(3, 6)


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85"], ids=["LS", "PS", "NEL"])
def test_yaml_1_2_line_separators_are_ordinary_characters(
    load: Callable[[str], YamlDocument], refused: Callable[[str], list[str]], char: str
) -> None:
    # YAML 1.1 (libyaml) ends a comment there; YAML 1.2 does not, nor do later lines move.
    doc = load(f"# note{char}a: not a key\nname: x{char}y\nlist: [1, 2]\n")
    assert doc.data == {"name": f"x{char}y", "list": [1, 2]}
    assert doc.positions.value(("list", 1)) == Mark(3, 11)
    assert refused(f"# {char}\na:\n\tb: 1\n") == [
        "s.yaml:3:1: tab in indentation: YAML indents with spaces only"
    ]
    assert refused(f"# {char}\na: 1\na: 2\n") == [
        "s.yaml:3:1: duplicate key 'a' (first at line 2, again at line 3): keep one"
    ]


def test_a_tab_inside_a_value_is_not_indentation(load: Callable[[str], YamlDocument]) -> None:
    assert load('a: "x\ty"\n').data == {"a": "x\ty"}


# --- never anything but StackFileInvalid ------------------------------------------


@given(st.binary(max_size=300))
def test_random_bytes_never_escape(raw: bytes) -> None:
    try:
        doc = parse_yaml(raw, "r.yaml")
    except StackFileInvalid as exc:
        assert exc.problems
        assert all(str(p).startswith("r.yaml:") for p in exc.problems)
    else:
        assert isinstance(doc.data, dict)


_PIECES = [*"ab:- \n\t[]{},&*!<>'\"#|?%@`~0.1\\\r\x85\u2028\ufeffé"]
_PIECES += ["services:", "  web:", "name: ", "&a ", "*a", "!!str ", "--- ", "... ", "? ", "<<: "]
_YAMLISH = st.lists(st.sampled_from(_PIECES), max_size=60).map("".join)


@given(_YAMLISH)
def test_random_yaml_like_text_never_escapes(text: str) -> None:
    try:
        doc = parse_yaml(text, "r.yaml")
    except StackFileInvalid as exc:
        assert exc.problems
    else:
        assert isinstance(doc.data, dict)
