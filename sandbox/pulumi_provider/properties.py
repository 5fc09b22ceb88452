"""Pulumi property values on the wire (google.protobuf.Struct) and in Python.

The engine encodes what JSON cannot say with a signature key: a secret is
`{SIG: SECRET_SIG, "value": v}`, an unknown (a preview's "known after apply") is
the string `UNKNOWN_WIRE`, a resource reference or an output value has its own
signature. Decoded, a secret is `Secret(v)`, an unknown is `UNKNOWN`, integral
numbers are ints (Struct carries only floats; no property here is fractional).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format, struct_pb2

SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
UNKNOWN_WIRE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


class PropertyError(ValueError):
    """A value this provider cannot take (an asset, an archive, a bad signature)."""


class _Unknown:
    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True)
class Secret:
    value: Any


def decode(struct: struct_pb2.Struct | None) -> dict[str, Any]:
    """A Struct from the engine as Python values (an absent Struct is empty)."""
    if struct is None:
        return {}
    return {key: _decode(value) for key, value in json_format.MessageToDict(struct).items()}


def _decode(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if value == UNKNOWN_WIRE:
        return UNKNOWN
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    sig = value.get(SIG)
    if sig is None:
        return {key: _decode(item) for key, item in value.items()}
    if sig == SECRET_SIG:
        return Secret(_decode(value.get("value")))
    if sig == RESOURCE_SIG:
        # Only sent to providers that accept references; an id is what a property holds.
        return _decode(value.get("id", UNKNOWN_WIRE)) if "id" in value else UNKNOWN
    if sig == OUTPUT_SIG:
        inner = _decode(value["value"]) if "value" in value else UNKNOWN
        return Secret(inner) if value.get("secret") else inner
    raise PropertyError(f"values with signature {sig} (assets, archives) are not supported")


def encode(values: dict[str, Any]) -> struct_pb2.Struct:
    """Python values (with `Secret` and `UNKNOWN`) as a Struct for the engine."""
    struct = struct_pb2.Struct()
    struct.update({key: _encode(value) for key, value in values.items()})
    return struct


def _encode(value: Any) -> Any:
    if value is UNKNOWN:
        return UNKNOWN_WIRE
    if isinstance(value, Secret):
        return {SIG: SECRET_SIG, "value": _encode(value.value)}
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    raise PropertyError(f"cannot send a {type(value).__name__} to the engine")


def reveal(value: Any) -> Any:
    """`value` with every `Secret` unwrapped (for REST bodies and comparisons)."""
    if isinstance(value, Secret):
        return reveal(value.value)
    if isinstance(value, dict):
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


def has_secret(value: Any) -> bool:
    if isinstance(value, Secret):
        return True
    if isinstance(value, dict):
        return any(has_secret(item) for item in value.values())
    if isinstance(value, list):
        return any(has_secret(item) for item in value)
    return False


def has_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, Secret):
        return has_unknown(value.value)
    if isinstance(value, dict):
        return any(has_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(has_unknown(item) for item in value)
    return False


def conceal_like(outputs: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """`outputs` with a property secret wherever its input held a secret.

    The engine's own rule for providers that take no secrets (`annotateSecrets`):
    objects are followed key by key, anything else becomes secret whole, so a
    secret never comes back in the clear because the provider echoed it.
    """
    concealed = dict(outputs)
    for key, given in inputs.items():
        if key not in concealed or isinstance(concealed[key], Secret):
            continue
        given_plain = given.value if isinstance(given, Secret) else given
        if isinstance(concealed[key], dict) and isinstance(given_plain, dict):
            inner = conceal_like(concealed[key], given_plain)
            concealed[key] = Secret(inner) if isinstance(given, Secret) else inner
        elif has_secret(given):
            concealed[key] = Secret(concealed[key])
    return concealed
