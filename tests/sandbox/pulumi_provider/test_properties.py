"""Property values on the wire: secrets, unknowns, integers, and secrets kept on the way back."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from sandbox.pulumi_provider.properties import (
    OUTPUT_SIG,
    RESOURCE_SIG,
    SECRET_SIG,
    SIG,
    UNKNOWN,
    UNKNOWN_WIRE,
    PropertyError,
    Secret,
    conceal_like,
    decode,
    encode,
    has_secret,
    has_unknown,
    reveal,
)


def wire(values: dict) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def test_decode_reads_signatures_and_makes_integral_numbers_ints():
    decoded = decode(
        wire(
            {
                "numLoops": 2.0,
                "ratio": 0.5,
                "token": {SIG: SECRET_SIG, "value": "s3cr3t"},
                "service": UNKNOWN_WIRE,
                "rules": [{"escalationDelayInMinutes": 10.0, "targets": [{"id": UNKNOWN_WIRE}]}],
                "policy": {SIG: RESOURCE_SIG, "urn": "urn:x", "id": "PABC123"},
                "known": {SIG: OUTPUT_SIG, "value": "v", "secret": True},
                "pending": {SIG: OUTPUT_SIG},
            }
        )
    )
    assert decoded == {
        "numLoops": 2,
        "ratio": 0.5,
        "token": Secret("s3cr3t"),
        "service": UNKNOWN,
        "rules": [{"escalationDelayInMinutes": 10, "targets": [{"id": UNKNOWN}]}],
        "policy": "PABC123",
        "known": Secret("v"),
        "pending": UNKNOWN,
    }
    assert type(decoded["numLoops"]) is int
    assert decode(None) == {}


def test_assets_are_refused():
    with pytest.raises(PropertyError, match="c44067f5952c0a294b673a41bacd8c17"):
        decode(wire({"file": {SIG: "c44067f5952c0a294b673a41bacd8c17", "path": "x"}}))


def test_encode_round_trips_what_decode_reads():
    values = {
        "name": "Checkout",
        "numLoops": 3,
        "enabled": False,
        "missing": None,
        "key": Secret({"nested": [1, "two"]}),
        "htmlUrl": UNKNOWN,
    }
    struct = encode(values)
    assert struct["key"][SIG] == SECRET_SIG
    assert struct["htmlUrl"] == UNKNOWN_WIRE
    assert decode(struct) == values


def test_encode_refuses_what_json_cannot_carry():
    with pytest.raises(PropertyError, match="cannot send a set"):
        encode({"odd": {1, 2}})


def test_reveal_and_the_secret_and_unknown_probes():
    value = {"a": Secret("x"), "b": [Secret({"c": 1})], "d": 2}
    assert reveal(value) == {"a": "x", "b": [{"c": 1}], "d": 2}
    assert has_secret(value) and not has_secret(reveal(value))
    assert has_unknown([1, {"x": Secret(UNKNOWN)}]) and not has_unknown({"x": [1]})


def test_conceal_like_keeps_every_input_secret_secret_in_the_outputs():
    inputs = {
        "name": "Checkout",
        "integrationKey": Secret("k" * 32),
        "supportHours": {"timeZone": Secret("Europe/Berlin"), "type": "fixed_time_per_day"},
        "rules": [{"targets": [{"id": Secret("PUSER01")}]}],
        "teams": Secret({"id": "T"}),
    }
    outputs = {
        "id": "PSVC001",
        "name": "Checkout",
        "integrationKey": "k" * 32,
        "supportHours": {"timeZone": "Europe/Berlin", "type": "fixed_time_per_day"},
        "rules": [{"id": "R1", "targets": [{"id": "PUSER01"}]}],
        "teams": {"id": "T"},
    }
    assert conceal_like(outputs, inputs) == {
        "id": "PSVC001",
        "name": "Checkout",
        "integrationKey": Secret("k" * 32),
        # Objects are followed key by key; a list holding a secret becomes secret whole.
        "supportHours": {"timeZone": Secret("Europe/Berlin"), "type": "fixed_time_per_day"},
        "rules": Secret([{"id": "R1", "targets": [{"id": "PUSER01"}]}]),
        "teams": Secret({"id": "T"}),
    }
