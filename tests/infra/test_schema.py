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
