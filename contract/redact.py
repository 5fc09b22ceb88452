"""Show secrets the only way they may be shown: by their last four characters."""

from __future__ import annotations

import re

# A 32-character integration key anywhere in a text, even glued to `_`, `-` or other
# letters' neighbours that `\b` would not treat as a boundary.
_KEY_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{32}(?![A-Za-z0-9])")


def last4(secret: str | None) -> str:
    """`...a1b2` for a secret; never more than four characters of it."""
    if not secret:
        return "<none>"
    if len(secret) <= 8:
        # A short value would be mostly revealed by its last four: show nothing of it.
        return "****"
    return "..." + secret[-4:]


def mask_keys(text: str) -> str:
    """`text` with every 32-character key-shaped run shown by its last four."""
    return _KEY_IN_TEXT.sub(lambda m: last4(m.group(0)), text)
