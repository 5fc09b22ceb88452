"""Line-aware, defensive YAML loading for stack files.

`load_yaml(path)` returns the document as plain Python data (dict/list/str/int/
float/bool/None) plus a `SourceMap` from each key path to where its key and value
start, so validation can point into the file. Anything wrong becomes a `Problem`
(`file:line:col: message`); nothing here lets an exception of PyYAML escape.

Deliberate differences from `yaml.safe_load`:

* YAML 1.2 scalars: only true/false are booleans (`off`, `no`, `yes` stay strings,
  so `auto_resolve_timeout: off` means "off"); no sexagesimal numbers (`17:00` is a
  string); no implicit timestamps.
* Refused: duplicate keys, non-string keys, merge keys (`<<`), tags other than the
  core ones, tab indentation, several documents, an empty file, anything but a
  mapping at the top, non-UTF-8 text, files over `MAX_FILE_BYTES`, nesting deeper
  than `MAX_DEPTH`, more than `MAX_NODES` nodes once aliases are expanded
  ("billion laughs"), and special files (FIFOs, devices, directories).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from infra.errors import Problem, StackFileInvalid, StackFileUnreadable

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 500_000
MAX_PROBLEMS = 100  # per file: past this, more lines help nobody

PathKey = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


@dataclass(frozen=True)
class Mark:
    """A 1-based position in the file."""

    line: int
    col: int


@dataclass(frozen=True)
class Span:
    """Where a value starts, and where its key starts (None for list items and the root)."""

    value: Mark
    key: Mark | None = None


class SourceMap:
    """Positions of the document's nodes, by key path (`("services", "web", "name")`)."""

    def __init__(self, spans: dict[PathKey, Span]) -> None:
        self._spans = spans

    def __len__(self) -> int:
        return len(self._spans)

    def get(self, path: PathKey) -> Span | None:
        return self._spans.get(tuple(path))

    def value(self, path: PathKey) -> Mark:
        """Where the value at `path` starts, or the nearest enclosing node that exists."""
        return self._nearest(path).value

    def key(self, path: PathKey) -> Mark:
        """Where the key of `path` starts (its value for list items and the root)."""
        span = self._nearest(path)
        return span.key or span.value

    def _nearest(self, path: PathKey) -> Span:
        path = tuple(path)
        while path:
            span = self._spans.get(path)
            if span is not None:
                return span
            path = path[:-1]
        return self._spans.get((), Span(Mark(1, 1)))


@dataclass(frozen=True)
class YamlDocument:
    """A loaded file: its data, where everything is, and the name used in messages."""

    file: str
    data: dict[str, Any]
    positions: SourceMap


# --- the loader ------------------------------------------------------------------


class _LimitExceeded(yaml.YAMLError):
    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class StackLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars and a depth limit while composing."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        # PyYAML composes recursively: deep nesting would end in RecursionError.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _LimitExceeded(
                    f"nesting is deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# Resolvers of the YAML 1.2 core schema (PyYAML only knows 1.1's).
StackLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
StackLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
StackLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
StackLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
# Kept so `<<` is recognised and refused with a clear message, not taken as a key.
StackLoader.add_implicit_resolver(_MERGE, re.compile(r"^(?:<<)$"), ["<"])


_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULLS = {"", "~", "null", "Null", "NULL"}


def _short(value: str) -> str:
    return repr(value) if len(value) <= 40 else repr(value[:37] + "...")


def _float(value: str) -> float:
    lowered = value.lower()
    if lowered.lstrip("+-") == ".inf":
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(value)


def _int(value: str) -> int:
    # YAML 1.2 spellings; Python's int() would also take "1_000", which YAML 1.2 does not.
    if value.startswith("0o"):
        return int(value[2:], 8)
    if value.startswith("0x"):
        return int(value[2:], 16)
    return int(value, 10)


# --- public entry points ----------------------------------------------------------


def load_yaml(path: str | os.PathLike[str], display: str | None = None) -> YamlDocument:
    """Read and parse a stack file; raises `StackFileInvalid` with every problem found."""
    name = display if display is not None else os.fspath(path)
    raw = read_limited(path, name)
    return parse_yaml(raw, name)


def read_limited(path: str | os.PathLike[str], name: str) -> bytes:
    """The file's bytes; refuses special files and files over `MAX_FILE_BYTES`."""

    def unreadable(message: str) -> StackFileUnreadable:
        return StackFileUnreadable(name, [Problem(name, None, None, message)])

    try:
        # O_NONBLOCK: opening a FIFO must not hang waiting for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise unreadable("no such file") from None
    except IsADirectoryError:
        raise unreadable("is a directory, not a stack file") from None
    except OSError as exc:
        raise unreadable(f"cannot open it: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise unreadable("is a directory, not a stack file")
        if not stat.S_ISREG(info.st_mode):
            raise unreadable("is not a regular file (a FIFO, socket or device?)")
        if info.st_size > MAX_FILE_BYTES:
            raise unreadable(_too_large(info.st_size))
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_FILE_BYTES:  # it grew while we read it
            raise unreadable(_too_large(size))
        return b"".join(chunks)
    except OSError as exc:
        raise unreadable(f"cannot read it: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def parse_yaml(raw: bytes | str, name: str) -> YamlDocument:
    """Parse stack-file text; raises `StackFileInvalid` with every problem found."""
    text = _decode(raw, name) if isinstance(raw, bytes) else raw
    problems = list(_tab_problems(text, name))
    if problems:
        # PyYAML would stop at the first tab with a message about "tokens": ours is clearer.
        raise StackFileInvalid(name, problems)
    builder = _Builder(name)
    node = _compose(text, name)
    data = builder.build(node)
    if builder.problems:
        raise StackFileInvalid(name, builder.problems[:MAX_PROBLEMS])
    if not isinstance(data, dict):
        raise StackFileInvalid(
            name,
            [
                Problem(
                    name,
                    node.start_mark.line + 1,
                    node.start_mark.column + 1,
                    f"the top level must be a mapping (defaults:, escalation_policies:, "
                    f"services:, ...), not {_kind(data)}",
                )
            ],
        )
    return YamlDocument(name, data, SourceMap(builder.spans))


# --- steps ------------------------------------------------------------------------


def _too_large(size: int) -> str:
    return (
        f"is {size:,} bytes; stack files are limited to {MAX_FILE_BYTES:,} bytes (split the stack)"
    )


def _decode(raw: bytes, name: str) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise StackFileInvalid(
            name,
            [Problem(name, line, col, "is not UTF-8 text (binary data or another encoding?)")],
        ) from None
    if "\x00" in text:
        # UTF-16 or a binary file that happens to decode: YAML would refuse later anyway.
        at = text.index("\x00")
        line = text.count("\n", 0, at) + 1
        col = at - (text.rfind("\n", 0, at) + 1) + 1
        raise StackFileInvalid(
            name, [Problem(name, line, col, "contains NUL bytes: not a YAML text file")]
        )
    return text


def _tab_problems(text: str, name: str) -> Iterator[Problem]:
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            yield Problem(
                name,
                number,
                indent.index("\t") + 1,
                "tab in indentation: YAML indents with spaces only",
            )


def _compose(text: str, name: str) -> Node:
    try:
        loader = StackLoader(text)
    except yaml.reader.ReaderError as exc:
        at = exc.position
        line = text.count("\n", 0, at) + 1
        col = at - (text.rfind("\n", 0, at) + 1) + 1
        raise StackFileInvalid(
            name,
            [Problem(name, line, col, f"control character {exc.character:#06x} is not allowed")],
        ) from None
    try:
        node = loader.get_single_node()
    except _LimitExceeded as exc:
        raise StackFileInvalid(name, [_at(name, exc.mark, exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        raise StackFileInvalid(name, [_yaml_problem(name, exc)]) from None
    except yaml.YAMLError as exc:  # unmarked: should not happen, but never a traceback
        raise StackFileInvalid(name, [Problem(name, 1, 1, f"not valid YAML: {exc}")]) from None
    except RecursionError:
        raise StackFileInvalid(
            name, [Problem(name, 1, 1, f"nesting is deeper than {MAX_DEPTH} levels")]
        ) from None
    finally:
        loader.dispose()
    if node is None:
        raise StackFileInvalid(
            name,
            [Problem(name, 1, 1, "the file is empty: a stack needs at least `services:`")],
        )
    return node


def _yaml_problem(name: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if "expected a single document" in (exc.context or ""):
        return _at(name, mark, "more than one YAML document (---): put one stack in each file")
    if "found undefined alias" in (exc.context or "") or "undefined alias" in problem:
        return _at(name, mark, f"{problem} (define the anchor with &name before using *name)")
    text = f"not valid YAML: {problem}"
    if exc.context:
        text += f" ({exc.context}"
        if exc.context_mark is not None and exc.context_mark is not mark:
            text += f" at line {exc.context_mark.line + 1}"
        text += ")"
    return _at(name, mark, text)


def _at(name: str, mark: yaml.Mark | None, message: str) -> Problem:
    if mark is None:
        return Problem(name, 1, 1, message)
    return Problem(name, mark.line + 1, mark.column + 1, message)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    return f"a single value ({type(value).__name__})"


class _Builder:
    """Turns composed nodes into plain data and spans, collecting problems."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.spans: dict[PathKey, Span] = {}
        self.problems: list[Problem] = []
        self.nodes = 0

    def build(self, root: Node) -> Any:
        self.spans[()] = Span(self._mark(root))
        try:
            return self._value(root, (), 0)
        except _LimitExceeded as exc:
            self.problems.append(_at(self.name, exc.mark, exc.message))
            return None

    def _mark(self, node: Node) -> Mark:
        return Mark(node.start_mark.line + 1, node.start_mark.column + 1)

    def _problem(self, node: Node, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(_at(self.name, node.start_mark, message))

    def _count(self, node: Node, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _LimitExceeded(
                f"the document expands to more than {MAX_NODES:,} values "
                "(aliases repeated too often?)",
                node.start_mark,
            )
        if depth > MAX_DEPTH:
            # Also catches alias cycles such as `a: &x [*x]`.
            raise _LimitExceeded(
                f"nesting is deeper than {MAX_DEPTH} levels (a recursive alias?)",
                node.start_mark,
            )

    def _value(self, node: Node, path: PathKey, depth: int) -> Any:
        self._count(node, depth)
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                self._problem(node, f"unsupported tag {_tag(node.tag)}: remove it")
            items = []
            for index, item in enumerate(node.value):
                self.spans[(*path, index)] = Span(self._mark(item))
                items.append(self._value(item, (*path, index), depth + 1))
            return items
        return self._scalar(node)

    def _mapping(self, node: MappingNode, path: PathKey, depth: int) -> dict[str, Any]:
        if node.tag != _MAP:
            self._problem(node, f"unsupported tag {_tag(node.tag)}: remove it")
        result: dict[str, Any] = {}
        first_seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            self._count(key_node, depth + 1)
            if key_node.tag == _MERGE:
                self._problem(
                    key_node,
                    "merge keys (<<) are not supported: repeat the keys, or move shared "
                    "settings to `defaults`",
                )
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag != _STR:
                shown = (
                    f"{key_node.value!r}" if isinstance(key_node, ScalarNode) else "a collection"
                )
                self._problem(
                    key_node,
                    f'keys must be strings, not {shown}: quote it, e.g. "{_plain(key_node)}"',
                )
                continue
            key = key_node.value
            if key in first_seen:
                first = first_seen[key].start_mark
                self._problem(
                    key_node,
                    f"duplicate key {key!r} (first at line {first.line + 1}, this one at line "
                    f"{key_node.start_mark.line + 1}): keep one",
                )
                continue
            first_seen[key] = key_node
            child = (*path, key)
            self.spans[child] = Span(self._mark(value_node), self._mark(key_node))
            result[key] = self._value(value_node, child, depth + 1)
        return result

    def _scalar(self, node: Node) -> Any:
        tag, value = node.tag, str(node.value)
        try:
            if tag == _STR:
                return value
            if tag == "tag:yaml.org,2002:int":
                return _int(value)
            if tag == "tag:yaml.org,2002:float":
                return _float(value)
            if tag == "tag:yaml.org,2002:bool":
                return _BOOLS[value]
            if tag == "tag:yaml.org,2002:null":
                if value not in _NULLS:
                    raise ValueError
                return None
        except (ValueError, KeyError):
            kind = tag.rsplit(":", 1)[-1]
            self._problem(node, f"{_short(value)} is not a valid {kind}")
            return None
        self._problem(node, f"unsupported tag {_tag(tag)}: write a plain value")
        return None


def _tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml") else tag


def _plain(node: Node) -> str:
    value = node.value if isinstance(node, ScalarNode) else "..."
    return str(value).replace('"', "'")
