"""infra.schema: the committed stacks/schema.json matches the model and accepts the stacks."""

from __future__ import annotations

import pytest

from infra.schema import JSON_SCHEMA_DIALECT, schema_json, stack_schema
from infra.yaml_source import load_yaml

from .conftest import STACKS

REGENERATE = "apica-pd schema > stacks/schema.json"


def test_committed_schema_is_current() -> None:
    committed = (STACKS / "schema.json").read_text(encoding="utf-8")
    assert committed == schema_json(), f"stacks/schema.json is stale; regenerate: {REGENERATE}"


def test_schema_shape() -> None:
    schema = stack_schema()
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["services"]
    assert set(schema["properties"]) == {
        "defaults",
        "apica",
        "escalation_policies",
        "services",
        "catch_all",
        "allow_destroy",
        "allow_mass_change",
        "change_budget",
    }
    # Durations are described as the strings a user writes, not as parsed seconds.
    timeout = schema["$defs"]["RawNewService"]["properties"]["auto_resolve_timeout"]
    assert timeout["pattern"] == "^(off|[0-9]{1,7}[smhd])$"
    assert '"default": null' not in schema_json()


@pytest.mark.parametrize("name", ["example.yaml", "dev.yaml", "prod.yaml"])
def test_committed_stacks_satisfy_the_schema(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    # Our loader reads YAML 1.2 (`off` is a string) like the editors the schema is for.
    data = load_yaml(STACKS / name).data
    jsonschema.Draft7Validator(stack_schema()).validate(data)


def test_schema_refuses_an_unknown_key() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft7Validator(stack_schema())
    document = {"services": {"web": {"name": "Web", "colour": 1}}}
    assert not validator.is_valid(document)
    assert validator.is_valid({"services": {"web": {"name": "Web"}}})


# One value each pattern of the schema accepts; a pattern added without one fails below.
PATTERN_SAMPLES = {
    "^[a-z0-9][a-z0-9_-]{0,62}$": "web",
    "^[A-Z0-9]{1,20}$": "PAPICA1",
    "^([01][0-9]|2[0-3]):([0-5][0-9])$": "09:00",
    "^[0-9]{1,7}[smhd]$": "30m",
    "^(off|[0-9]{1,7}[smhd])$": "off",
    "^(until_resolved|[0-9]{1,7}[smhd])$": "until_resolved",
    "^(recommended|[0-9]{1,7}[smhd])$": "5m",
    "^[^\\\\/&<>\\x00-\\x1f\\x7f-\\x9f]*$": "On-call",
    "^[^\\x00-\\x1f\\x7f-\\x9f]*$": "Checkout API",
    "^https?://\\S+$": "https://runbooks.example.com/web",
    "^[A-Za-z0-9_-]{1,64}$": "7d3f0c2e-5b1a-4c9e",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?$": "2026-12-05T22:00",
    "^[A-Z0-9]{2,20}$": "PIJ90N7",
    "^([A-Z0-9]{2,20})\\.([A-Z0-9]{2,20})$": "PIJ90N7.PQ12345",
    "^[0-9]{1,3}%$": "30%",
}


def _patterns(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return found.union(*(_patterns(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(item) for item in node))
    return set()


def test_schema_patterns_refuse_a_trailing_newline() -> None:
    # JSON Schema patterns are ECMA-262 regular expressions (editors, check-jsonschema),
    # where `$` is the end of the text; Python's `re.search` would let "\n" through.
    regress = pytest.importorskip("regress")
    assert _patterns(stack_schema()) == set(PATTERN_SAMPLES)
    for pattern, sample in PATTERN_SAMPLES.items():
        regex = regress.Regex(pattern)
        assert regex.find(sample) is not None, pattern
        assert regex.find(sample + "\n") is None, pattern
