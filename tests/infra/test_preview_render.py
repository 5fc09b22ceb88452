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


def test_tree_marks_imports_and_counts_creates(write_stack) -> None:
    path = write_stack(
        """\
        apica: {vendor_id: PAPICA1}
        escalation_policies:
          oncall:
            name: On-call
            adopt: PPOL001
            rules: [{delay: 30m, targets: [{user: ann@example.com}]}]
        services:
          web:
            name: Web
            adopt: PSVC001
            escalation_policy: oncall
            integration: {adopt: PSVC001.PINT001}
          new:
            name: New
            escalation_policy: oncall
        """
    )
    preview = preview_stack_file(path)
    tree = render_tree(preview)
    assert tree.splitlines()[1] == (
        "PagerDuty objects: 2 to create (+), 3 to import (=, adopted as they are)"
    )
    assert (
        "= pagerduty:index/escalationPolicy:EscalationPolicy  policy-oncall  [protect]  "
        "[import PPOL001]\n" in tree
    )
    assert (
        "  = pagerduty:index/serviceIntegration:ServiceIntegration  service-web-apica  "
        "[protect]  [import PSVC001.PINT001]\n" in tree
    )
    assert "  + pagerduty:index/service:Service  service-new  [protect]\n" in tree
    resources = {r["name"]: r for r in json.loads(to_json(preview))["resources"]}
    assert resources["service-web"]["import_id"] == "PSVC001"
    assert resources["service-new"]["import_id"] is None
