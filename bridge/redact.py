"""Show secrets the only way they may be shown: by their last four characters."""

from __future__ import annotations


def last4(secret: str | None) -> str:
    """`...a1b2` for a secret; never more than four characters of it."""
    if not secret:
        return "<none>"
    if len(secret) <= 8:
        # A short value would be mostly revealed by its last four: show nothing of it.
        return "****"
    return "..." + secret[-4:]
