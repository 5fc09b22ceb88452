"""Show a `Preview` (infra.preview) to reviewers: a tree for the terminal, or JSON.

Pure: data in, a string out. Secrets are already `[secret]` in the preview.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import yaml

from infra.messages import escape
from infra.preview import Preview

_INTERNAL = ("urn", "parent_urn")
_INLINE_WIDTH = 72
# libyaml's emitter when PyYAML has it: several times faster on 5,000-service trees.
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def to_json(preview: Preview) -> str:
    data = {
        "stack": preview.stack,
        "resources": [
            {key: value for key, value in asdict(r).items() if key not in _INTERNAL}
            for r in preview.registrations
        ],
        "lookups": [asdict(lookup) for lookup in preview.lookups],
        "outputs": {o.name: {"secret": o.secret, "value": o.value} for o in preview.outputs},
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def render_tree(preview: Preview) -> str:
    """A reviewer's view: resources with their children and inputs, look-ups, outputs."""
    lines = [
        f"stack {preview.stack}: {len(preview.registrations)} resources, "
        f"{len(preview.lookups)} look-ups (ids below are placeholders)",
        f"PagerDuty objects: {len(preview.creates)} to create (+), "
        f"{len(preview.imports)} to import (=, adopted as they are)",
    ]

    children = preview.children()

    def walk(parent: str | None, depth: int) -> None:
        for reg in children.get(parent, ()):
            pad = "  " * depth
            flags = "  [protect]" if reg.protect else ""
            if reg.import_id:
                lines.append(f"{pad}= {reg.type}  {reg.name}{flags}  [import {reg.import_id}]")
            else:
                lines.append(f"{pad}+ {reg.type}  {reg.name}{flags}")
            for key, value in sorted(reg.inputs.items()):
                lines.extend(_field(f"{pad}    ", key, value))
            walk(reg.urn, depth + 1)

    walk(None, 0)
    if preview.lookups:
        lines.append("look-ups (must exist in PagerDuty):")
        lines += [f"  {lookup.kind}: {lookup.name}" for lookup in preview.lookups]
    if preview.outputs:
        lines.append("outputs:")
        for output in preview.outputs:
            lines += _field("  ", output.name, output.value)
    return "\n".join(escape(line) for line in lines) + "\n"


def _field(pad: str, key: str, value: Any) -> list[str]:
    """`key: value` on one line when short, else the value as indented YAML below it."""
    # An empty string would read as nothing at all: show it quoted.
    inline = (value or '""') if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if isinstance(value, str) or len(inline) <= _INLINE_WIDTH:
        return [f"{pad}{key}: {inline}"]
    block = yaml.dump(value, Dumper=_YAML_DUMPER, default_flow_style=False, sort_keys=True)
    return [f"{pad}{key}:"] + [f"{pad}  {line}" for line in block.splitlines()]
