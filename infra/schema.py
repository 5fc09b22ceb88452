"""JSON Schema of the stack file (the raw model), for editors and `stacks/schema.json`.

Regenerate the committed copy with `apica-pd schema > stacks/schema.json`;
tests/infra/test_schema.py fails when the two differ.
"""

from __future__ import annotations

import json
from typing import Any

from infra.model import RawStack

# Draft 7: the YAML language server (VS Code's YAML extension and others) validates with
# draft 7 and warns that 2020-12 "is not yet fully supported". pydantic's output only
# uses draft-7 keywords; its "$defs" are reached by plain JSON-pointer "$ref"s.
JSON_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


def stack_schema() -> dict[str, Any]:
    """The JSON Schema of a stack file as a dict."""
    schema = RawStack.model_json_schema(mode="validation")
    return {"$schema": JSON_SCHEMA_DIALECT, **_without_null_defaults(schema)}


def schema_json() -> str:
    """The schema as committed: two-space indented JSON with a final newline."""
    return json.dumps(stack_schema(), indent=2, ensure_ascii=False) + "\n"


def _without_null_defaults(node: Any) -> Any:
    # `"default": null` only says "not set"; editors would offer to insert a null.
    if isinstance(node, dict):
        return {
            key: _without_null_defaults(value)
            for key, value in node.items()
            if not (key == "default" and value is None)
        }
    if isinstance(node, list):
        return [_without_null_defaults(item) for item in node]
    return node
