"""Routing a check posted to /v1/asm: id, GUID, tags, catch-all, refusal."""

from __future__ import annotations

import json

import pytest

from bridge.errors import Unrouted
from bridge.intake.matching import Match, match_route, tag_claims
from contract.routes_file import parse_routes
from tests.bridge.conftest import make_alert, routes_document


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"check_id": 102}, Match("checkout", "check_id")),
        ({"check_id": 201, "tags": {"Team": ("Checkout",)}}, Match("search", "check_id")),
        ({"check_id": 999, "check_guid": "6f9619ff-8b86-d011-b42d-00c04fc964ff"},
         Match("checkout", "check_guid")),
        ({"check_id": None, "check_guid": "6F9619FF-8B86-D011-B42D-00C04FC964FF"},
         Match("checkout", "check_guid")),
        ({"check_id": 999, "check_guid": None, "tags": {"team": ("  search ",)}},
         Match("search", "tag:Team: Search")),
        ({"check_id": 999, "check_guid": None, "tags": {"Search": ()}},
         Match("search", "tag:Search")),
        ({"check_id": 999, "check_guid": None, "tags": {"Team": ("Other",)}},
         Match("fallback", "catch_all")),
        ({"check_id": 999, "check_guid": None, "tags": {}}, Match("fallback", "catch_all")),
    ],
)
def test_routing_order(routes, overrides, expected):
    assert match_route(routes, make_alert(**overrides)) == expected


def test_unclaimed_without_catch_all_is_refused():
    routes = parse_routes(json.dumps(routes_document(catch_all=None)), "r.json")
    with pytest.raises(Unrouted) as caught:
        match_route(routes, make_alert(check_id=999, check_guid=None, tags={}))
    assert caught.value.status == 422
    assert str(caught.value).startswith("no route claims check id:999 (by check id, GUID or tag)")


def test_a_check_matching_two_routes_by_tag_goes_to_the_first(routes_doc):
    # Overlapping claims are refused by the routes model; distinct claims on two keys
    # can still both hold for one check, and then the file's order decides.
    routes_doc["routes"]["search"]["check_tags"] = ["Tier: Gold"]
    routes = parse_routes(json.dumps(routes_doc), "r.json")
    alert = make_alert(check_id=999, check_guid=None,
                       tags={"Team": ("Checkout",), "Tier": ("Gold",)})
    assert match_route(routes, alert).route_name == "checkout"


@pytest.mark.parametrize(
    ("claim", "matches"),
    [("Team: A", True), ("team:a", True), ("Team", True), ("Team: B", False), ("Tier", False)],
)
def test_tag_claims(claim, matches):
    assert tag_claims(claim, {"team": {"a"}}) is matches
