"""Secrets are shown by their last four characters, and short ones not at all."""

from __future__ import annotations

import pytest

from bridge.redact import last4


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("R" * 28 + "k3y9", "...k3y9"),
        ("123456789", "...6789"),
        ("12345678", "****"),  # its last four would be half of it
        ("abc", "****"),
        ("", "<none>"),
        (None, "<none>"),
    ],
)
def test_last4(secret, shown):
    assert last4(secret) == shown
