"""Identifier shapes."""

from __future__ import annotations

import re

from sandbox.ids import new_dedup_key, new_integration_key, new_object_id, new_token


def test_shapes_match_pagerdutys():
    assert re.fullmatch(r"P[A-Z0-9]{6}", new_object_id())
    assert re.fullmatch(r"[a-z0-9]{32}", new_integration_key())
    assert re.fullmatch(r"[a-f0-9]{32}", new_dedup_key())
    assert len(new_token()) == 20


def test_keys_do_not_repeat():
    assert len({new_integration_key() for _ in range(200)}) == 200
