"""The routes-file contract: what the program writes, the bridge must read back exactly."""

from __future__ import annotations

import json
import os
import stat

import pytest

from bridge.routes import (
    RoutesFileError,
    load_routes_file,
    parse_routes,
    routes_to_json,
    write_routes_file,
)

KEY = "R" * 28 + "k3y9"


def routes_doc(**overrides: object) -> dict:
    doc = {
        "version": 1,
        "stack": "dev",
        "catch_all": None,
        "routes": {
            "checkout": {
                "service_name": "Checkout API",
                "service_id": "PABC123",
                "integration_name": "Apica-Checkout-API",
                "routing_key": KEY,
                "check_ids": [101, 102],
                "check_guids": ["9f1c"],
                "check_tags": ["Team: Checkout"],
                "severity_map": {"W": "error"},
                "links": [{"href": "https://status.example.com", "text": "Status"}],
            }
        },
    }
    doc.update(overrides)
    return doc


def test_round_trip_keeps_the_key_and_fills_the_severity_map(tmp_path):
    routes = parse_routes(json.dumps(routes_doc()), "r.json")
    path = write_routes_file(tmp_path / "sub" / "routes.json", routes)

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_routes_file(path)
    assert again == routes
    assert again.routes["checkout"].routing_key.get_secret_value() == KEY
    assert again.routes["checkout"].severity_map == {
        "F": "critical", "E": "error", "W": "error", "I": "info",
    }
    assert not [p for p in path.parent.iterdir() if p.name != "routes.json"], "temp file left"


def test_key_never_shows_outside_the_file_itself():
    routes = parse_routes(json.dumps(routes_doc()), "r.json")
    assert KEY not in repr(routes)
    assert KEY not in routes.model_dump_json()
    assert KEY in routes_to_json(routes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "r.json: version must be 1 (got 2)"),
        ({"catch_all": "nope"}, "catch_all names route 'nope', which is not in routes"),
        ({"routes": {"Bad Name": routes_doc()["routes"]["checkout"]}},
         "routes.Bad Name.[key]: String should match pattern"),
        ({"extra": 1}, "extra: Extra inputs are not permitted"),
    ],
)
def test_invalid_documents_name_the_field(change, message):
    with pytest.raises(RoutesFileError) as caught:
        parse_routes(json.dumps(routes_doc(**change)), "r.json")
    assert message in str(caught.value)


def test_bad_routing_key_is_refused_without_echoing_it():
    doc = routes_doc()
    doc["routes"]["checkout"]["routing_key"] = "secret-but-short"
    with pytest.raises(RoutesFileError) as caught:
        parse_routes(json.dumps(doc), "r.json")
    assert "routes.checkout.routing_key" in str(caught.value)
    assert "secret-but-short" not in str(caught.value)


def test_check_routed_twice_is_refused():
    doc = routes_doc()
    doc["routes"]["other"] = dict(doc["routes"]["checkout"], check_guids=[], check_ids=[102])
    expected = "check id 102 is routed to both 'checkout' and 'other'"
    with pytest.raises(RoutesFileError, match=expected):
        parse_routes(json.dumps(doc), "r.json")


@pytest.mark.parametrize("text", ["", "[]", "{not json", b"\xff\xfe"])
def test_garbage_is_a_routes_file_error(text):
    with pytest.raises(RoutesFileError, match=r"^r\.json: "):
        parse_routes(text, "r.json")


def test_missing_file_says_so(tmp_path):
    with pytest.raises(RoutesFileError, match="cannot read it: No such file or directory"):
        load_routes_file(tmp_path / "absent.json")
