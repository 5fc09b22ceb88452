"""Errors of the infra side: one small hierarchy under `InfraError`.

Stack-file errors point into the file: a `Problem` is one thing wrong with one
file, with the 1-based line and column it concerns (None when the file could not
be read at all). `StackFileInvalid` carries
all problems of a file at once; `str()` renders one `file:line:col: message` per line.
Messages never quote secret values (nothing in a stack file is secret today, and the
rule keeps it that way if a key ever is).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from contract.errors import ApicaError
from infra.messages import escape


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in one file; sorts by file, then position."""

    file: str
    line: int | None
    col: int | None
    message: str

    def __str__(self) -> str:
        # Messages quote values from the file: never let one reach a terminal raw.
        file, message = escape(self.file), escape(self.message)
        if self.line is None:
            # Only for files that could not be read: there is no position to name.
            return f"{file}: {message}"
        return f"{file}:{self.line}:{self.col or 1}: {message}"


class InfraError(ApicaError):
    """Base of every error the infra side raises on purpose; `str()` says what to do.

    `ProgramError` (infra.resources) is the exception: it must be a `pulumi.RunError`
    so that Pulumi prints it without a traceback.
    """


class StackError(InfraError):
    """Base of every error raised for a stack file."""


class StackFileInvalid(StackError):
    """A stack file that cannot be used; carries every problem found in it."""

    def __init__(self, path: str, problems: Iterable[Problem]) -> None:
        self.path = path
        self.problems: tuple[Problem, ...] = tuple(sorted(problems, key=_order))
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)

    def __str__(self) -> str:
        return self.render()


class StackFileUnreadable(StackFileInvalid):
    """The file could not be read at all (missing, a directory, a FIFO, too large...)."""


def _order(problem: Problem) -> tuple[int, int, str]:
    # Position-less problems first, then in reading order; stable for equal positions.
    return (problem.line or 0, problem.col or 0, problem.message)
