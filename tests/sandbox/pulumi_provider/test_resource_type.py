"""Helpers every resource type shares: Terraform's GetOk, unknowns, the create's read-back."""

from __future__ import annotations

import pytest

from sandbox.pulumi_provider.properties import UNKNOWN
from sandbox.pulumi_provider.resource_type import (
    PartialCreate,
    known,
    read_back,
    set_value,
    strip_unknowns,
)
from sandbox.pulumi_provider.rest import RestError


def test_set_value_is_terraforms_get_ok():
    assert [set_value(v) for v in ("", 0, False, [], {}, None, UNKNOWN)] == [None] * 7
    assert [set_value(v) for v in ("x", 5, True, [0], {"a": 1})] == ["x", 5, True, [0], {"a": 1}]
    assert known(UNKNOWN) is None and known("v") == "v"


def test_strip_unknowns_drops_known_after_apply_values_at_every_depth():
    plan = {"id": UNKNOWN, "rules": [{"id": UNKNOWN, "delay": 5}], "name": "x"}
    assert strip_unknowns(plan) == {"rules": [{"delay": 5}], "name": "x"}


def test_a_failed_read_back_still_names_the_created_object():
    def failing() -> None:
        raise RestError("GET API call to http://x/services/P1 failed 500", 500)

    with pytest.raises(PartialCreate) as partial:
        read_back("P1", {"name": "Checkout", "htmlUrl": UNKNOWN}, failing)
    assert partial.value.resource_id == "P1"
    assert partial.value.outputs == {"name": "Checkout", "id": "P1"}
    assert str(partial.value) == (
        "created P1, but reading it back failed: GET API call to http://x/services/P1 failed 500"
    )
    with pytest.raises(PartialCreate, match="created P1, but PagerDuty does not show it"):
        read_back("P1", {}, lambda: None)
    assert read_back("P1", {}, lambda: {"id": "P1"}) == ("P1", {"id": "P1"})
