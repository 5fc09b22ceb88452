"""Line-aware, defensive YAML loading for stack files.

`load_yaml(path)` returns the document as plain Python data (dict/list/str/int/
float/bool/None) plus a `SourceMap` from each key path to where its key and value
start, so validation can point into the file. Anything wrong becomes a `Problem`
(`file:line:col: message`); nothing here lets an exception of PyYAML escape.

libyaml (PyYAML's `CSafeLoader`) parses and composes the document into nodes, which
carry their positions; one walk over the nodes builds the data and enforces the
rules below. Positions are looked up in the nodes only for the paths a problem names.

Deliberate differences from `yaml.safe_load`:

* YAML 1.2 core scalars: only true/false are booleans (`off`, `no`, `yes` stay strings,
  so `auto_resolve_timeout: off` means "off"); no sexagesimal numbers (`17:00` is a
  string); no implicit timestamps. NEL, LS and PS are ordinary characters, not line
  breaks (libyaml follows YAML 1.1 there), so they cannot end a comment.
* Refused: duplicate keys (naming both lines), non-string keys, merge keys (`<<`),
  tags other than the core ones, tab indentation, several documents, an empty file,
  anything but a mapping at the top, non-UTF-8 text, NUL and control characters,
  files over `MAX_FILE_BYTES`, nesting deeper than `MAX_DEPTH`, more than
  `MAX_NODES` values once aliases are expanded ("billion laughs"), aliases that
  contain themselves, an anchor name defined twice, and special files (FIFOs,
  devices, directories).
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from contract.errors import UnreadableFile
from contract.files import read_bounded
from infra.errors import Problem, StackFileInvalid, StackFileUnreadable
from infra.messages import describe, quoted

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 500_000
MAX_PROBLEMS = 100  # per file: past this, more lines help nobody

PathKey = tuple[str | int, ...]


# NamedTuples, not dataclasses: a big file makes tens of thousands of them.
class Mark(NamedTuple):
    """A 1-based position in the file, in characters."""

    line: int
    col: int


class Span(NamedTuple):
    """Where a value starts, and where its key starts (None for list items and the root)."""

    value: Mark
    key: Mark | None = None


# --- the loader: libyaml with YAML 1.2 core scalars ------------------------------

_Base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_LIBYAML = _Base is not yaml.SafeLoader

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"

_INT_RE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


class _Loader(_Base):
    """PyYAML's safe loader (libyaml's when present) resolving plain scalars as YAML 1.2."""

    # PyYAML only knows YAML 1.1, where `off` is false and 17:00 is 1020.
    yaml_implicit_resolvers: dict[Any, list[Any]] = {}


for _tag, _pattern, _first in (
    (_NULL, "~|null|Null|NULL|", ["~", "n", "N", ""]),
    (_BOOL, "true|True|TRUE|false|False|FALSE", list("tTfF")),
    (_INT, _INT_RE.pattern, list("-+0123456789")),
    (_FLOAT, _FLOAT_RE.pattern, list("-+.0123456789")),
    (_MERGE, "<<", ["<"]),  # recognised only to refuse it clearly
):
    _Loader.add_implicit_resolver(_tag, re.compile(rf"(?:{_pattern})\Z"), _first)


# --- public entry points ----------------------------------------------------------


@dataclass(frozen=True)
class YamlDocument:
    """A loaded file: its data, where everything is, and the name used in messages."""

    file: str
    data: dict[str, Any]
    positions: SourceMap


def load_yaml(path: str | os.PathLike[str], display: str | None = None) -> YamlDocument:
    """Read and parse a stack file; raises `StackFileInvalid` with every problem found."""
    name = display if display is not None else os.fspath(path)
    try:
        raw = read_bounded(path, MAX_FILE_BYTES, what="stack file", display=name)
    except UnreadableFile as exc:
        raise StackFileUnreadable(name, [Problem(name, None, None, exc.reason)]) from None
    return parse_yaml(raw, name)


def parse_yaml(raw: bytes | str, name: str) -> YamlDocument:
    """Parse stack-file text; raises `StackFileInvalid` with every problem found."""
    text = _decode(raw, name) if isinstance(raw, bytes) else raw
    problems = list(_tab_problems(text, name))
    if problems:
        # PyYAML would stop at the first tab with a message about "tokens": ours is clearer.
        raise StackFileInvalid(name, problems[:MAX_PROBLEMS])
    text, restore = _hide_yaml_1_1_breaks(text)
    with gc_paused():
        root = _compose(text, name)
        if root is None:
            raise StackFileInvalid(
                name, [Problem(name, 1, 1, "the file is empty: a stack needs at least `services:`")]
            )
        builder = _Builder(name, text, restore)
        data = builder.build(root)
    if not isinstance(data, dict):
        raise StackFileInvalid(
            name,
            [
                _at(
                    name,
                    root.start_mark,
                    "the top level must be a mapping (defaults:, escalation_policies:, "
                    f"services:, ...), not {describe(data)}",
                )
            ],
        )
    return YamlDocument(name, data, builder.source_map(root))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building large acyclic data.

    Building a big file allocates hundreds of thousands of long-lived objects; the
    collector then rescans them again and again (a 5,000-service file took 30% longer
    and grew faster than linearly). Nothing built here forms cycles, and collection
    resumes at exit.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- text ---------------------------------------------------------------------------

_LINE_BREAK = re.compile(r"\r\n?|\n")  # YAML 1.2's only line breaks
_YAML_1_1_BREAKS = "\x85\u2028\u2029"  # NEL, LS, PS: line breaks to libyaml only
_STAND_INS = range(0xF0000, 0xFFFFE)  # supplementary private use: printable to libyaml


def _decode(raw: bytes, name: str) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8")  # valid up to the first bad byte
        line, col = _line_col(before, len(before))
        raise StackFileInvalid(
            name,
            [Problem(name, line, col, "is not UTF-8 text (binary data or another encoding?)")],
        ) from None
    if "\x00" in text:
        # UTF-16 or a binary file that happens to decode: YAML would refuse later anyway.
        line, col = _line_col(text, text.index("\x00"))
        raise StackFileInvalid(
            name, [Problem(name, line, col, "contains NUL bytes: not a YAML text file")]
        )
    return text


def _line_col(text: str, at: int) -> tuple[int, int]:
    """1-based line and column (in characters) of offset `at`, lines as YAML 1.2 breaks them."""
    lines = _LINE_BREAK.split(text[:at])
    return len(lines), len(lines[-1]) + 1


def _tab_problems(text: str, name: str) -> Iterator[Problem]:
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            yield Problem(
                name,
                number,
                indent.index("\t") + 1,
                "tab in indentation: YAML indents with spaces only",
            )


def _hide_yaml_1_1_breaks(text: str) -> tuple[str, dict[int, str] | None]:
    """Text with NEL, LS and PS replaced by one-character stand-ins libyaml reads as text.

    Returns the table that puts them back into strings (None when there were none).
    Columns stay right: each stand-in is one character, as the original was.
    """
    present = [char for char in _YAML_1_1_BREAKS if char in text]
    if not present:
        return text, None
    free = (chr(code) for code in _STAND_INS if chr(code) not in text)
    hide = {ord(char): stand_in for char, stand_in in zip(present, free, strict=False)}
    return text.translate(hide), {ord(stand_in): chr(char) for char, stand_in in hide.items()}


# --- composing ----------------------------------------------------------------------


def _compose(text: str, name: str) -> Node | None:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        raise StackFileInvalid(name, [_reader_problem(name, text, exc)]) from None
    except yaml.MarkedYAMLError as exc:
        raise StackFileInvalid(name, [_yaml_problem(name, text, exc)]) from None
    except yaml.YAMLError as exc:  # unmarked: not expected, but never a traceback
        raise StackFileInvalid(name, [Problem(name, 1, 1, f"not valid YAML: {exc}")]) from None
    except RecursionError:  # PyYAML's pure-Python composer recurses per level
        message = f"nesting is deeper than {MAX_DEPTH} levels"
        raise StackFileInvalid(name, [Problem(name, 1, 1, message)]) from None
    finally:
        loader.dispose()


def _reader_problem(name: str, text: str, exc: yaml.reader.ReaderError) -> Problem:
    at = exc.position
    if _LIBYAML:  # libyaml reports a byte offset into the UTF-8 text
        at = len(text.encode("utf-8")[:at].decode("utf-8", errors="ignore"))
    line, col = _line_col(text, min(at, len(text)))
    char = exc.character
    shown = f"{char:#06x}" if isinstance(char, int) else repr(char)
    return Problem(name, line, col, f"control character {shown} is not allowed in YAML text")


def _yaml_problem(name: str, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    context = exc.context or ""
    if "expected a single document" in context:
        return _at(name, mark, "more than one YAML document (---): put one stack in each file")
    if "undefined alias" in problem:
        alias = _name_at(text, mark, "*")
        return _at(
            name, mark, f"alias *{alias} has no anchor: define &{alias} before using *{alias}"
        )
    if "duplicate anchor" in context:
        # YAML lets a later anchor shadow an earlier one; libyaml refuses, and so do we:
        # which node `*name` means would depend on where it stands.
        first = exc.context_mark.line + 1 if exc.context_mark is not None else "?"
        anchor = _name_at(text, mark, "&")
        return _at(
            name, mark, f"anchor &{anchor} is defined twice (first at line {first}): rename one"
        )
    if "maximum nesting depth" in problem:
        return _at(name, mark, f"nesting is deeper than {MAX_DEPTH} levels")
    message = f"not valid YAML: {problem}"
    if context:
        message += f" ({context}"
        if exc.context_mark is not None and exc.context_mark is not mark:
            message += f" at line {exc.context_mark.line + 1}"
        message += ")"
    return _at(name, mark, message)


_ANCHOR_NAME = re.compile(r"[&*]([^\s,\[\]{}]+)")


def _name_at(text: str, mark: Any, indicator: str) -> str:
    """The anchor or alias name written at `mark` (`&name` or `*name`)."""
    line = _LINE_BREAK.split(text)[mark.line] if mark is not None else ""
    found = _ANCHOR_NAME.match(line, mark.column) if mark is not None else None
    return found.group(1) if found and line[mark.column] == indicator else "?"


def _at(name: str, mark: Any, message: str) -> Problem:
    if mark is None:
        return Problem(name, 1, 1, message)
    return Problem(name, mark.line + 1, mark.column + 1, message)


def _mark(mark: Any) -> Mark:
    return Mark(mark.line + 1, mark.column + 1)


def _tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml") else tag


# --- building data from nodes ---------------------------------------------------------

#: Where a problem is: a libyaml mark, or the number of an alias in document order
#: (nodes do not keep where an alias to them stood; the scanner's tokens do).
Where = Any


class _Refused(Exception):
    """A limit that stops the walk: nesting, expansion, a cycle."""

    def __init__(self, where: Where, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


class _Builder:
    """Builds plain data from the node graph, collecting problems.

    An alias is a node met a second time: its value is shared, not copied, and its
    expanded size counts towards `MAX_NODES` (that is what stops "billion laughs").
    """

    def __init__(self, name: str, text: str, restore: dict[int, str] | None) -> None:
        self.name = name
        self._text = text
        self._restore = restore
        self._problems: list[tuple[Where, str]] = []
        self._nodes = 0
        # id(node) -> (value, expanded size). Only a text with a `*` can hold an alias:
        # without one, no node is met twice and nothing needs remembering.
        self._built: dict[int, tuple[Any, int]] | None = {} if "*" in text else None
        self._open: set[int] = set()  # collections being built
        self._aliases = 0
        #: (id(parent node), key or index) -> alias number, for the source map.
        self.alias_slots: dict[tuple[int, str | int], int] = {}
        self._alias_marks: list[tuple[str, Any]] | None = None

    def build(self, root: Node) -> Any:
        try:
            data, _ = self._visit(root, 0)
        except _Refused as exc:
            self._problems.append((exc.where, exc.message))
        if self._problems:
            raise StackFileInvalid(self.name, [self._problem(*p) for p in self._problems])
        return data

    def source_map(self, root: Node) -> SourceMap:
        return SourceMap(root, self.alias_slots, self.alias_mark, self._restore)

    # -- positions of aliases ------------------------------------------------------

    def alias_mark(self, number: int) -> tuple[str, Any]:
        """The name and mark of alias `number`, from the scanner (only when one is needed)."""
        if self._alias_marks is None:
            tokens = yaml.scan(self._text, Loader=_Loader)
            self._alias_marks = [
                (token.value, token.start_mark)
                for token in tokens
                if isinstance(token, yaml.AliasToken)
            ]
        return self._alias_marks[number]

    def _problem(self, where: Where, message: str) -> Problem:
        if isinstance(where, int):
            alias, mark = self.alias_mark(where)
            return _at(self.name, mark, message.format(alias=alias))
        return _at(self.name, where, message)

    def _report(self, where: Where, message: str) -> None:
        if len(self._problems) < MAX_PROBLEMS:
            self._problems.append((where, message))

    def _count(self, size: int, where: Where) -> None:
        self._nodes += size
        if self._nodes > MAX_NODES:
            raise _Refused(
                where,
                f"the document expands to more than {MAX_NODES:,} values "
                "(an alias repeated too often?)",
            )

    # -- the walk ------------------------------------------------------------------

    def _visit(self, node: Node, depth: int, *, key: bool = False) -> tuple[Any, int | None]:
        """The value of `node` and, when it is an alias, the alias's number."""
        built = self._built
        if built is not None:
            seen = built.get(id(node))
            if seen is not None or id(node) in self._open:
                number = self._aliases
                self._aliases += 1
                if seen is None:
                    raise _Refused(
                        number, "alias *{alias} refers to a node that contains it (a cycle)"
                    )
                self._count(seen[1], number)
                return seen[0], number
        start = self._nodes
        self._count(1, node.start_mark)
        if type(node) is ScalarNode:
            value = self._key_text(node) if key else self._scalar(node)
        elif depth >= MAX_DEPTH:
            raise _Refused(node.start_mark, f"nesting is deeper than {MAX_DEPTH} levels")
        else:
            self._open.add(id(node))
            value = (
                self._mapping(node, depth) if type(node) is MappingNode else self._list(node, depth)
            )
            self._open.discard(id(node))
        if built is not None:
            built[id(node)] = (value, self._nodes - start)
        return value, None

    def _mapping(self, node: MappingNode, depth: int) -> dict[str, Any]:
        if node.tag != _MAP:
            self._report(node.start_mark, f"unsupported tag {_tag(node.tag)}: remove it")
        data: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key, key_alias = self._visit(key_node, depth + 1, key=True)
            value, alias = self._visit(value_node, depth + 1)
            mark = key_node.start_mark
            if key_alias is not None or not isinstance(key_node, ScalarNode):
                where = mark if key_alias is None else key_alias
                self._report(where, "keys must be plain strings, not lists, mappings or aliases")
            elif key_node.tag == _MERGE:
                self._report(
                    mark,
                    "merge keys (<<) are not supported: repeat the keys, or move shared "
                    "settings to `defaults`",
                )
            elif key_node.tag != _STR:
                raw = key_node.value
                self._report(mark, f'keys must be strings, not {raw!r}: quote it, e.g. "{raw}"')
            elif key in lines:
                self._report(
                    mark,
                    f"duplicate key {key!r} (first at line {lines[key]}, again at line "
                    f"{mark.line + 1}): keep one",
                )
            else:
                lines[key] = mark.line + 1
                data[key] = value
                if alias is not None:
                    self.alias_slots[(id(node), key)] = alias
        return data

    def _list(self, node: Node, depth: int) -> list[Any]:
        if node.tag != _SEQ:
            self._report(node.start_mark, f"unsupported tag {_tag(node.tag)}: remove it")
        items = []
        for index, item_node in enumerate(node.value):
            value, alias = self._visit(item_node, depth + 1)
            if alias is not None:
                self.alias_slots[(id(node), index)] = alias
            items.append(value)
        return items

    def _restored(self, value: str) -> str:
        return value if self._restore is None else value.translate(self._restore)

    def _key_text(self, node: ScalarNode) -> str | None:
        # Keys are checked by the mapping; only string keys have a value to keep.
        return self._restored(node.value) if node.tag == _STR else None

    def _scalar(self, node: ScalarNode) -> Any:
        tag, value = node.tag, node.value
        if tag == _STR:
            return self._restored(value)
        if tag == _INT and _INT_RE.fullmatch(value):
            return _int(value)
        if tag == _FLOAT and _FLOAT_RE.fullmatch(value):
            return _float(value)
        if tag == _BOOL and value in _BOOLS:
            return _BOOLS[value]
        if tag == _NULL and value in _NULLS:
            return None
        if tag == _MERGE:
            return value  # `<<` as a value is just the string
        if tag in (_INT, _FLOAT, _BOOL, _NULL):
            kind = tag.rsplit(":", 1)[-1]
            self._report(node.start_mark, f"{quoted(value)} is not a valid {kind}")
        else:
            self._report(node.start_mark, f"unsupported tag {_tag(tag)}: write a plain value")
        return None


def _float(value: str) -> float:
    lowered = value.lower()
    if lowered.lstrip("+-") == ".inf":
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(value)


def _int(value: str) -> int:
    if value.startswith("0o"):
        return int(value[2:], 8)
    if value.startswith("0x"):
        return int(value[2:], 16)
    return int(value, 10)


# --- positions ------------------------------------------------------------------------


class SourceMap:
    """Where the document's keys and values are, by key path (`("services", "web", "name")`).

    Looked up in the nodes on demand: only the paths of problems are ever asked for.
    A path through an alias ends at the alias (the data there is the anchor's).
    """

    def __init__(
        self,
        root: Node,
        alias_slots: dict[tuple[int, str | int], int],
        alias_mark: Callable[[int], tuple[str, Any]],
        restore: dict[int, str] | None,
    ) -> None:
        self._root = root
        self._alias_slots = alias_slots
        self._alias_mark = alias_mark
        self._restore = restore
        self._keys: dict[int, dict[str, tuple[Node, Node]]] = {}

    def get(self, path: PathKey) -> Span | None:
        """The span of exactly `path`, or None if the document has nothing there."""
        span, reached = self._walk(tuple(path))
        return span if reached else None

    def value(self, path: PathKey) -> Mark:
        """Where the value at `path` starts, or the nearest enclosing node that exists."""
        return self._walk(tuple(path))[0].value

    def key(self, path: PathKey) -> Mark:
        """Where the key of `path` starts (its value for list items and the root)."""
        span = self._walk(tuple(path))[0]
        return span.key or span.value

    def _walk(self, path: PathKey) -> tuple[Span, bool]:
        node = self._root
        span = Span(_mark(node.start_mark))
        for depth, step in enumerate(path):
            found = self._child(node, step)
            if found is None:
                return span, False
            key_node, child = found
            key_mark = _mark(key_node.start_mark) if key_node is not None else None
            alias = self._alias_slots.get((id(node), step))
            if alias is not None:
                _, mark = self._alias_mark(alias)
                return Span(_mark(mark), key_mark), depth == len(path) - 1
            span, node = Span(_mark(child.start_mark), key_mark), child
        return span, True

    def _child(self, node: Node, step: str | int) -> tuple[Node | None, Node] | None:
        if isinstance(node, MappingNode):
            keys = self._keys.get(id(node))
            if keys is None:
                keys = self._keys[id(node)] = {}
                for key_node, value_node in node.value:
                    if isinstance(key_node, ScalarNode) and key_node.tag == _STR:
                        text = key_node.value
                        if self._restore is not None:
                            text = text.translate(self._restore)
                        keys.setdefault(text, (key_node, value_node))
            return keys.get(step) if isinstance(step, str) else None
        if isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            items = node.value
            return (None, items[step]) if 0 <= step < len(items) else None
        return None
