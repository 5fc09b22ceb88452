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

import gc
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import yaml

from infra.errors import Problem, StackFileInvalid, StackFileUnreadable

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 500_000
MAX_PROBLEMS = 100  # per file: past this, more lines help nobody

PathKey = tuple[str | int, ...]


# NamedTuples, not dataclasses: a big file makes tens of thousands of them.
class Mark(NamedTuple):
    """A 1-based position in the file."""

    line: int
    col: int


class Span(NamedTuple):
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


# --- the parser -------------------------------------------------------------------

# libyaml's parser emits events ~20x faster than PyYAML's pure-Python one, and its
# parser is iterative; the tree is built from events here (no PyYAML composer, which
# recurses and would expand aliases without limit).
_Parser: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"

# YAML 1.2 core schema; PyYAML only knows 1.1 (where `off` is false and 17:00 is 1020).
_NUMBER_FIRST = frozenset("-+0123456789.")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULLS = {"", "~", "null", "Null", "NULL"}


class _LimitExceeded(Exception):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


def _resolve(event: yaml.ScalarEvent) -> str:
    if event.tag is not None and event.tag != "!":
        return str(event.tag)
    if event.tag == "!" or not event.implicit[0]:
        return _STR  # quoted or non-specific: a string
    value = event.value
    # Exact look-ups before regular expressions: this runs for every key and value.
    if not value or value in _NULLS:
        return _NULL
    if value[0] in _NUMBER_FIRST:
        if _INT_RE.match(value):
            return _INT
        if _FLOAT_RE.match(value):
            return _FLOAT
        return _STR
    if value in _BOOLS:
        return _BOOL
    if value == "<<":
        return _MERGE  # recognised only to refuse it clearly
    return _STR


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
        raise StackFileInvalid(name, problems[:MAX_PROBLEMS])
    builder = _Builder(name)
    try:
        with gc_paused():
            builder.run(text)
    except _LimitExceeded as exc:
        builder.problems.append(_at(name, exc.mark, exc.message))
    except yaml.reader.ReaderError as exc:
        builder.problems.append(_reader_problem(name, text, exc))
    except yaml.MarkedYAMLError as exc:
        builder.problems.append(_yaml_problem(name, exc))
    except yaml.YAMLError as exc:  # unmarked: not expected, but never a traceback
        builder.problems.append(Problem(name, 1, 1, f"not valid YAML: {exc}"))
    if builder.problems:
        raise StackFileInvalid(name, builder.problems[:MAX_PROBLEMS])
    if builder.root_mark is None:
        raise StackFileInvalid(
            name, [Problem(name, 1, 1, "the file is empty: a stack needs at least `services:`")]
        )
    if not isinstance(builder.root, dict):
        raise StackFileInvalid(
            name,
            [
                _at(
                    name,
                    builder.root_mark,
                    "the top level must be a mapping (defaults:, escalation_policies:, "
                    f"services:, ...), not {_kind(builder.root)}",
                )
            ],
        )
    return YamlDocument(name, builder.root, SourceMap(builder.spans))


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


_FRAMING = (yaml.StreamStartEvent, yaml.DocumentEndEvent)
_SKIP = object()  # marks a value whose key was refused: parse it, keep nothing


class _Frame:
    """An open mapping or sequence while events stream in."""

    __slots__ = ("anchor", "key", "key_mark", "kind", "path", "seen", "start", "value")

    def __init__(self, kind: str, value: Any, path: PathKey, anchor: str | None, start: int):
        self.kind = kind  # "map", "seq" or "skip"
        self.value = value
        self.path = path
        self.anchor = anchor
        self.start = start  # node count when it opened, for the anchor's expanded size
        self.key: Any = None  # pending mapping key (str), _SKIP, or None (expecting a key)
        self.key_mark: Any = None
        self.seen: dict[str, int] = {}


class _Builder:
    """Builds plain data and spans from parser events, collecting problems."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.spans: dict[PathKey, Span] = {}
        self.problems: list[Problem] = []
        self.nodes = 0
        self.root: Any = None
        self.root_mark: Any = None
        self._stack: list[_Frame] = []
        # anchor -> (value, expanded node count); None while its collection is open
        self._anchors: dict[str, tuple[Any, int] | None] = {}

    def run(self, text: str) -> None:
        parser = _Parser(text)
        try:
            documents = 0
            while True:
                event = parser.get_event()
                kind = type(event)
                if kind is yaml.StreamEndEvent or event is None:
                    return
                if kind is yaml.DocumentStartEvent:
                    documents += 1
                    if documents > 1:
                        self.problems.append(
                            _at(
                                self.name,
                                event.start_mark,
                                "more than one YAML document (---): put one stack in each file",
                            )
                        )
                        return
                elif kind not in _FRAMING:
                    self._event(event)
        finally:
            parser.dispose()

    def _problem(self, mark: Any, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(_at(self.name, mark, message))

    def _count(self, size: int, mark: Any) -> None:
        self.nodes += size
        if self.nodes > MAX_NODES:
            raise _LimitExceeded(
                f"the document expands to more than {MAX_NODES:,} values "
                "(an alias repeated too often?)",
                mark,
            )

    def _event(self, event: Any) -> None:
        mark = event.start_mark
        if isinstance(event, yaml.CollectionEndEvent):
            frame = self._stack.pop()
            if frame.anchor is not None:
                self._anchors[frame.anchor] = (frame.value, self.nodes - frame.start)
            return
        frame = self._stack[-1] if self._stack else None
        if frame is not None and frame.kind == "map" and frame.key is None:
            self._key(frame, event)
            return
        # A value: of the root, of a list item, or of a pending key.
        skip = frame is not None and (frame.kind == "skip" or frame.key is _SKIP)
        if frame is None:
            path: PathKey = ()
            self.root_mark = mark
            self.spans[()] = Span(_mark(mark))
        elif skip:
            path = ()
        elif frame.kind == "seq":
            path = (*frame.path, len(frame.value))
            self.spans[path] = Span(_mark(mark))
        else:
            path = (*frame.path, frame.key)
            self.spans[path] = Span(_mark(mark), _mark(frame.key_mark))
        value = self._open(event, path, skip)
        if frame is None:
            self.root = value
        elif not skip:
            if frame.kind == "seq":
                frame.value.append(value)
            else:
                frame.value[frame.key] = value
        if frame is not None and frame.kind == "map":
            frame.key = None

    def _open(self, event: Any, path: PathKey, skip: bool) -> Any:
        """The value an event starts; collections are pushed and filled by later events."""
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            return self._alias(event)
        self._count(1, mark)
        anchor = event.anchor
        if isinstance(event, yaml.ScalarEvent):
            value = self._scalar(event)
            if anchor is not None:
                self._anchors[anchor] = (value, 1)
            return value
        if len(self._stack) >= MAX_DEPTH:
            raise _LimitExceeded(f"nesting is deeper than {MAX_DEPTH} levels", mark)
        is_map = isinstance(event, yaml.MappingStartEvent)
        expected = _MAP if is_map else _SEQ
        if event.tag not in (None, "!", expected):
            self._problem(mark, f"unsupported tag {_tag(event.tag)}: remove it")
        value: Any = {} if is_map else []
        kind = "skip" if skip else ("map" if is_map else "seq")
        if anchor is not None:
            self._anchors[anchor] = None  # open: an alias to it now would be a cycle
        self._stack.append(_Frame(kind, value, path, anchor, self.nodes - 1))
        if kind == "skip" and is_map:
            self._stack[-1].key = _SKIP
        return value

    def _alias(self, event: Any) -> Any:
        name = event.anchor
        if name not in self._anchors:
            self._problem(
                event.start_mark,
                f"alias *{name} has no anchor: define &{name} before using *{name}",
            )
            return None
        target = self._anchors[name]
        if target is None:
            raise _LimitExceeded(
                f"alias *{name} refers to a node that contains it (a cycle)", event.start_mark
            )
        value, size = target
        # Shared, not copied: counting the expanded size is what stops "billion laughs".
        self._count(size, event.start_mark)
        return value

    def _key(self, frame: _Frame, event: Any) -> None:
        mark = event.start_mark
        if frame.kind == "skip":
            return
        if isinstance(event, yaml.ScalarEvent):
            self._count(1, mark)
            tag = _resolve(event)
            key = event.value
            if tag == _MERGE:
                self._problem(
                    mark,
                    "merge keys (<<) are not supported: repeat the keys, or move shared "
                    "settings to `defaults`",
                )
            elif tag != _STR:
                self._problem(mark, f'keys must be strings, not {key!r}: quote it, e.g. "{key}"')
            elif key in frame.seen:
                self._problem(
                    mark,
                    f"duplicate key {key!r} (first at line {frame.seen[key]}, again at line "
                    f"{mark.line + 1}): keep one",
                )
            else:
                frame.seen[key] = mark.line + 1
                frame.key, frame.key_mark = key, mark
                return
            frame.key = _SKIP
            return
        # A collection or alias as a key: refuse it and skip it and its value.
        self._problem(mark, "keys must be plain strings, not lists, mappings or aliases")
        if isinstance(event, yaml.CollectionStartEvent):
            self._stack.append(_Frame("skip", None, (), None, self.nodes))
        frame.key = _SKIP

    def _scalar(self, event: Any) -> Any:
        tag = _resolve(event)
        value = event.value
        try:
            if tag == _STR:
                return value
            if tag == _INT:
                return _int(value)
            if tag == _FLOAT:
                return _float(value)
            if tag == _BOOL:
                return _BOOLS[value]
            if tag == _NULL:
                if value not in _NULLS:
                    raise ValueError(value)
                return None
        except (ValueError, KeyError):
            kind = tag.rsplit(":", 1)[-1]
            self._problem(event.start_mark, f"{_short(value)} is not a valid {kind}")
            return None
        if tag == _MERGE:
            return value  # `<<` as a value is just the string
        self._problem(event.start_mark, f"unsupported tag {_tag(tag)}: write a plain value")
        return None


def _mark(mark: Any) -> Mark:
    return Mark(mark.line + 1, mark.column + 1)


def _reader_problem(name: str, text: str, exc: yaml.reader.ReaderError) -> Problem:
    # libyaml reports a byte offset into the UTF-8 text; PyYAML a character offset.
    data = text.encode("utf-8") if _Parser is not yaml.SafeLoader else text
    at = min(exc.position, len(data))
    newline = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, at) + 1  # type: ignore[arg-type]
    col = at - (data.rfind(newline, 0, at) + 1) + 1  # type: ignore[arg-type]
    char = exc.character
    shown = f"{char:#06x}" if isinstance(char, int) else repr(char)
    return Problem(name, line, col, f"control character {shown} is not allowed in YAML text")


def _tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml") else tag
