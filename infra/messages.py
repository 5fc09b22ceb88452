"""How infra shows values from files in what it prints: quoted, in words, never raw.

Stack files, routes files and git revisions are input, and a value printed raw can
carry terminal escape sequences (erase a line, forge another), line and paragraph
separators or bidi overrides. Every line infra prints passes through `escape`;
values quoted into messages go through `quoted`, their type through `describe`.
"""

from __future__ import annotations

from typing import Any

SHORT = 40  # characters of a quoted value: enough to recognise it


def escape(text: str) -> str:
    """`text` with every non-printable character as a visible escape (`\\x1b`, `\\u202e`).

    Non-printable as Python's `str.isprintable` has it: C0 and C1 controls, DEL, line
    and paragraph separators, format characters such as bidi overrides. A newline is
    escaped too: apply it to each line, never to text already joined into lines.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escaped(char) for char in text)


def escape_lines(text: str) -> str:
    """`escape` for text of several lines joined by us: each line escaped on its own."""
    return "\n".join(escape(line) for line in text.split("\n"))


def _escaped(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def quoted(value: Any, limit: int = SHORT) -> str:
    """A value as a message quotes it: `repr` (which escapes), cut to `limit` characters."""
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, str):
        return repr(value[: limit - 5] + "...")
    return text[: limit - 3] + "..."


def describe(value: Any) -> str:
    """A value's type in words, with the value when short: `a number (5)`, `a list`."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({quoted(value)})"
    if isinstance(value, str):
        return f"a string ({quoted(value)})" if len(value) <= SHORT else "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__
