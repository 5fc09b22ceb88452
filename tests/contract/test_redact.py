"""Secrets are shown by their last four characters, and short ones not at all."""

from __future__ import annotations

import pytest

from contract.redact import last4, mask_keys


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


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("key " + "A" * 28 + "9z9z" + " failed", "key ...9z9z failed"),
        ("key_" + "A" * 28 + "9z9z" + "_x", "key_...9z9z_x"),  # `\\b` misses keys next to `_`
        ("routing_key=" + "B" * 32 + "\n", "routing_key=...BBBB\n"),
        ("a " + "C" * 33 + " is longer", "a " + "C" * 33 + " is longer"),
    ],
)
def test_mask_keys(text, shown):
    assert mask_keys(text) == shown
