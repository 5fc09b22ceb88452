"""The root of every error the project raises on purpose, and the contract's own errors.

Each side has one base under `ApicaError` (`infra.errors.InfraError`,
`bridge.errors.BridgeError`); the contract's errors sit directly under the root, so
either side can catch them without importing the other. `str()` is always one
sentence a person can act on, and never holds a secret.
"""

from __future__ import annotations


class ApicaError(Exception):
    """Base of every error raised on purpose; the CLI prints `str()` and exits non-zero."""


class UnreadableFile(ApicaError):
    """A file that cannot be read safely: missing, not a regular file, too large, ..."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class RoutesFileError(ApicaError):
    """A routes file that cannot be used; `str()` names the source and what to fix."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))
