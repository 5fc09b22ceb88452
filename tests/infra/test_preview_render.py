"""infra.preview_render: the tree and the JSON of a preview; no key ever shown."""

from __future__ import annotations

import json
import re

import pytest

from infra.preview import SECRET, Preview, preview_stack_file
from infra.preview_render import render_tree, to_json

from .conftest import EXAMPLE

# Anything shaped like an integration key (the mocks invent 32 hex characters).
KEY_SHAPE = re.compile(r"\b[0-9a-f]{32}\b")


@pytest.fixture(scope="module")
def example_preview() -> Preview:
    return preview_stack_file(EXAMPLE)


def test_tree_shows_components_children_look_ups_and_hides_secrets(
    example_preview: Preview,
) -> None:
    tree = render_tree(example_preview)
    assert "+ apica-pagerduty:index:ApicaService  checkout\n" in tree
    assert "  + pagerduty:index/service:Service  service-checkout  [protect]\n" in tree
    assert "      escalation_policy: ${policy-payments-oncall.id}\n" in tree
    assert "      service: ${service:Legacy Web}\n" in tree
    assert "  user: alice@example.com\n" in tree
    assert f"  bridge_routes: {SECRET}\n" in tree
    assert f"  integration_keys: {SECRET}\n" in tree
    assert not KEY_SHAPE.search(tree)


def test_json_lists_resources_look_ups_and_outputs(example_preview: Preview) -> None:
    text = to_json(example_preview)
    data = json.loads(text)
    assert len(data["resources"]) == len(example_preview.registrations) == 16
    integration = next(r for r in data["resources"] if r["name"] == "service-checkout-apica")
    assert integration["parent"] == "checkout"
    assert integration["inputs"] == {
        "name": "Apica-Checkout-API",
        "service": "${service-checkout.id}",
        "vendor": "PAPICA1",
    }
    assert {"kind": "service", "name": "Legacy Web"} in [
        {"kind": x["kind"], "name": x["name"]} for x in data["lookups"]
    ]
    assert data["outputs"]["bridge_routes"] == {"secret": True, "value": SECRET}
    assert not KEY_SHAPE.search(text)
