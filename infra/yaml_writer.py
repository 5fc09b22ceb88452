"""Write a stack file the way people write one: block style, flow where short, comments.

PyYAML's emitter cannot write comments, and `apica-pd import` must say in comments what
PagerDuty holds that a stack file cannot. The documents are small and of a known
shape, so this writer covers exactly that shape: mappings (`Block`), sequences (`Seq`),
one-line values (`Flow`), whole-line comments (`Comment`) and scalars (str, int, bool).

Strings are plain when YAML 1.2 reads them back as the same string, else double-quoted
with every non-printable character escaped; comments are escaped the same way
(`infra.messages.escape`), so nothing from PagerDuty can break a line or forge one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from infra.messages import escape

Scalar = str | int | bool


@dataclass(frozen=True)
class Comment:
    """A whole-line comment at this place of a mapping or sequence."""

    text: str


@dataclass(frozen=True)
class Flow:
    """A mapping or list written on one line: `{enabled: false}`, `[mon, tue]`."""

    value: dict[str, Scalar | list[Scalar]] | list[Scalar]


@dataclass
class Block:
    """A block mapping: `(key, value)` entries and comments, in order. `spaced`: a blank
    line between entries (top level, long lists of services)."""

    entries: list[tuple[str, Value] | Comment] = field(default_factory=list)
    spaced: bool = False

    def add(self, key: str, value: Value) -> Block:
        self.entries.append((key, value))
        return self

    def comment(self, text: str) -> Block:
        self.entries.append(Comment(text))
        return self


@dataclass
class Seq:
    """A block sequence: `- item` lines."""

    items: list[Value | Comment] = field(default_factory=list)


Value = Scalar | Flow | Block | Seq

# Plain scalars that YAML 1.2 (core schema) reads as the same string: letters, digits and
# a few safe marks (no indicator first, no ":" or "#", no trailing blank), and nothing that
# resolves to null, bool or a number.
_PLAIN_FIRST = frozenset("_./+(")
_PLAIN_REST = frozenset(" _./@+()'-")
_NOT_A_STRING = re.compile(
    r"null|Null|NULL|~|true|True|TRUE|false|False|FALSE"
    r"|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"
    r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)


def scalar(value: Scalar) -> str:
    """One scalar as YAML 1.2 text that reads back as `value`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if _plain(value) and not _NOT_A_STRING.fullmatch(value):
        return value
    return _quoted(value)


def _plain(text: str) -> bool:
    if not text or text.endswith(" "):
        return False
    first, rest = text[0], text[1:]
    return (first.isalnum() or first in _PLAIN_FIRST) and all(
        char.isalnum() or char in _PLAIN_REST for char in rest
    )


def _quoted(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(
                f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF
                else f"\\U{code:08x}"
            )
    return '"' + "".join(out) + '"'


def flow_text(value: Flow | Scalar | list[Scalar]) -> str:
    """`value` as written on one line: `{type: time, timeout: 15m}`."""
    if isinstance(value, Flow):
        value = value.value
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {flow_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow_text(item) for item in value) + "]"
    return scalar(value)


def dump(document: Block, header: Sequence[str] = ()) -> str:
    """The document as text: `header` comment lines first, then the mapping."""
    lines = [f"# {escape(text)}".rstrip() for text in header]
    lines += [""] if header else []
    lines += _block(document, 0)
    return "\n".join(lines) + "\n"


def _block(block: Block, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    after_key = False
    for entry in block.entries:
        if block.spaced and after_key:
            lines.append("")
        after_key = not isinstance(entry, Comment)
        if isinstance(entry, Comment):
            lines.append(f"{pad}# {escape(entry.text)}".rstrip())
            continue
        key, value = entry
        if isinstance(value, Block | Seq) and not _has_values(value):
            # Nothing (or only comments) inside: an empty collection, not a null.
            lines += _comments_of(value, pad)
            lines.append(f"{pad}{key}: {'{}' if isinstance(value, Block) else '[]'}")
        elif isinstance(value, Block):
            lines.append(f"{pad}{key}:")
            lines += _block(value, indent + 2)
        elif isinstance(value, Seq):
            lines.append(f"{pad}{key}:")
            lines += _seq(value, indent + 2)
        else:
            lines.append(f"{pad}{key}: {flow_text(value)}")
    return lines


def _has_values(value: Block | Seq) -> bool:
    entries = value.entries if isinstance(value, Block) else value.items
    return any(not isinstance(entry, Comment) for entry in entries)


def _comments_of(value: Block | Seq, pad: str) -> list[str]:
    entries = value.entries if isinstance(value, Block) else value.items
    return [f"{pad}# {escape(e.text)}".rstrip() for e in entries if isinstance(e, Comment)]


def _seq(seq: Seq, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for item in seq.items:
        if isinstance(item, Comment):
            lines.append(f"{pad}# {escape(item.text)}".rstrip())
        elif isinstance(item, Block):
            inner = _block(item, indent + 2)
            first = next(
                i for i, line in enumerate(inner) if line and not line.lstrip().startswith("#")
            )
            # The first key goes on the dash's line; comments before it stay above.
            lines += [pad + line.lstrip() for line in inner[:first]]
            lines.append(f"{pad}- {inner[first].lstrip()}")
            lines += inner[first + 1 :]
        elif isinstance(item, Seq):
            raise TypeError("a sequence directly inside a sequence is not written")
        else:
            lines.append(f"{pad}- {flow_text(item)}")
    return lines
