"""Recover a flat JSON object that raw-text substitution broke.

ASM pastes placeholder values into the body without escaping, so a string value
may hold raw newlines, tabs, backslashes or double quotes. Such a body is not JSON,
but when its keys are known it can often be read back: a string value ends at a
`"` that is followed by `,` and another known key, or by the closing `}`.

Rules, chosen so a hostile message can never change another field silently:

- only keys that `known(key)` maps to a field count as structure, each at most once;
- `accept(field, value)` may veto a value; a field not in `free_text` cannot hold
  a quote (its value ends at the next one), which keeps the search small;
- string contents are taken literally (a backslash is a backslash): the body was
  evidently not produced by a JSON encoder, so its escapes mean nothing;
- a bare value must be a JSON number, true, false or null, or empty (= null, from
  an unquoted placeholder that ASM rendered empty);
- among all complete readings the one with the most fields wins (a value that
  swallows its neighbours is the unlikely reading); a tie is `Ambiguous`.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass

_KEY = re.compile(r'"([^"\\\r\n]{1,64})"\s*:\s*')
_BARE = re.compile(r"[^,}\"]*")
_WS = re.compile(r"\s*")
_END = re.compile(r"\s*(?:,|\}\s*\Z)")
# The budget counts reading steps (a real ASM body needs a few hundred); a hostile
# body full of quotes stops here after about 20 ms instead of holding the event loop.
DEFAULT_BUDGET = 20_000


class Unrecoverable(ValueError):
    """No reading of the text is a flat object of known fields."""


class Ambiguous(ValueError):
    """More than one reading with the most fields."""


@dataclass(frozen=True)
class _Best:
    count: int
    pairs: tuple[tuple[str, object], ...]
    ambiguous: bool


def recover_flat_object(
    text: str,
    known: Callable[[str], str | None],
    accept: Callable[[str, object], bool] = lambda field, value: True,
    *,
    free_text: Container[str] | None = None,
    budget: int = DEFAULT_BUDGET,
) -> list[tuple[str, object]]:
    """The unique best reading of `text` as (key, value) pairs, in order.

    `free_text`: fields whose values may contain `"`; None means every field.
    """
    return _Reader(text.strip(), known, accept, free_text, budget).read()


class _Reader:
    def __init__(
        self,
        text: str,
        known: Callable[[str], str | None],
        accept: Callable[[str, object], bool],
        free_text: Container[str] | None,
        budget: int,
    ) -> None:
        self.s = text
        self.known = known
        self.accept = accept
        self.free_text = free_text
        self.budget = budget
        self.quotes = [i for i, ch in enumerate(text) if ch == '"']
        self.memo: dict[tuple[int, frozenset[str]], _Best | None] = {}

    def read(self) -> list[tuple[str, object]]:
        s = self.s
        if not (s.startswith("{") and s.endswith("}")):
            raise Unrecoverable("it is not an object in braces")
        start = self._ws(1)
        if start == len(s) - 1:
            return []
        best = self._members(start, frozenset())
        if best is None:
            raise Unrecoverable(
                "no reading makes it an object of known ASM fields with quoted values"
            )
        if best.ambiguous:
            raise Ambiguous("a value contains quotes that can be read in more than one way")
        return list(best.pairs)

    def _ws(self, pos: int) -> int:
        return _WS.match(self.s, pos).end()  # type: ignore[union-attr]

    def _members(self, pos: int, seen: frozenset[str]) -> _Best | None:
        key = (pos, seen)
        if key not in self.memo:
            self.memo[key] = self._members_uncached(pos, seen)
        return self.memo[key]

    def _members_uncached(self, pos: int, seen: frozenset[str]) -> _Best | None:
        self.budget -= 1
        if self.budget < 0:
            raise Unrecoverable("too many quotes to recover it safely")
        match = _KEY.match(self.s, pos)
        if match is None:
            return None
        name = self.known(match.group(1))
        if name is None or name in seen:
            return None
        pair_key, start, now_seen = match.group(1), match.end(), seen | {name}
        best: _Best | None = None
        quotable = self.free_text is None or name in self.free_text
        for value, end in self._values(start, quotable):
            if not self.accept(name, value):
                continue
            rest = self._after_value(end, now_seen)
            if rest is None:
                continue
            option = _Best(rest.count + 1, ((pair_key, value), *rest.pairs), rest.ambiguous)
            if best is None or option.count > best.count:
                best = option
            elif option.count == best.count:
                best = _Best(best.count, best.pairs, True)
        return best

    def _values(self, start: int, quotable: bool) -> Iterator[tuple[object, int]]:
        """Candidate (value, end position) pairs for the value starting at `start`."""
        s = self.s
        if start < len(s) and s[start] == '"':
            first = bisect.bisect_right(self.quotes, start)
            for q in self.quotes[first:]:
                self.budget -= 1
                if self.budget < 0:
                    raise Unrecoverable("too many quotes to recover it safely")
                # Cheap test first: a value can only end where `,` or the final `}` follows.
                if _END.match(s, q + 1):
                    yield s[start + 1 : q], q + 1
                if not quotable:
                    return  # its value ends at the first quote, or nowhere
            return
        bare = _BARE.match(s, start)
        text = bare.group(0).strip()  # type: ignore[union-attr]
        if not text:
            yield None, bare.end()  # type: ignore[union-attr]
            return
        try:
            value = json.loads(text)
        except ValueError:
            return
        if value is None or isinstance(value, bool | int | float):
            yield value, bare.end()  # type: ignore[union-attr]

    def _after_value(self, end: int, seen: frozenset[str]) -> _Best | None:
        s = self.s
        pos = self._ws(end)
        if pos == len(s) - 1 and s[pos] == "}":
            return _Best(0, (), False)
        if pos < len(s) and s[pos] == ",":
            return self._members(self._ws(pos + 1), seen)
        return None
