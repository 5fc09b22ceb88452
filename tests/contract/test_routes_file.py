"""The routes-file contract: what the program writes, the bridge must read back exactly."""

from __future__ import annotations

import json
import os
import stat

import pytest

from contract.errors import RoutesFileError
from contract.routes_file import (
    MAX_PREVIOUS_ROUTING_KEYS,
    MAX_ROUTES_FILE_BYTES,
    load_routes_file,
    lowest_version,
    parse_routes,
    routes_to_json,
    write_routes_file,
)

KEY = "R" * 28 + "k3y9"
OLD_KEY = "O" * 28 + "0ld1"


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
        ({"version": 4}, "r.json: version must be 1, 2 or 3 (got 4); regenerate it with this "
         "release's `apica-pd routes pull`"),
        ({"version": True}, "r.json: version must be 1, 2 or 3 (got True)"),
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
    with pytest.raises(RoutesFileError, match="no such file"):
        load_routes_file(tmp_path / "absent.json")


# -- hostile input (issue 9: trailing newlines, duplicates, claims the bridge can't match) --

def _with_route(**fields: object) -> dict:
    doc = routes_doc()
    doc["routes"]["checkout"].update(fields)
    return doc


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"routing_key": KEY[:-1] + "\n"}, "routes.checkout.routing_key: Value error, must be a "
         "PagerDuty integration key: 32 letters or digits"),
        ({"routing_key": KEY + "\n"}, "routes.checkout.routing_key: Value error, must be a "
         "PagerDuty integration key: 32 letters or digits"),
        ({"check_ids": [10**18]}, "routes.checkout.check_ids.0: Input should be less than or "
         "equal to 999999999999999999"),
        ({"check_guids": ["9f1c "]}, "routes.checkout.check_guids.0: String should match pattern"),
        ({"check_guids": ["9f1c\n"]}, "routes.checkout.check_guids.0: String should match "
         "pattern"),
        ({"links": [{"href": "https://x.example", "text": "Status\nforged"}]},
         "routes.checkout.links.0.text: Value error, must be one line of text"),
    ],
)
def test_values_the_bridge_could_never_use_are_refused(fields, message):
    with pytest.raises(RoutesFileError) as caught:
        parse_routes(json.dumps(_with_route(**fields)), "r.json")
    assert message in str(caught.value)
    assert KEY[:-4] not in str(caught.value)


def test_route_name_with_a_trailing_newline_is_refused():
    doc = routes_doc()
    doc["routes"] = {"checkout\n": doc["routes"]["checkout"]}
    with pytest.raises(RoutesFileError, match="String should match pattern"):
        parse_routes(json.dumps(doc), "r.json")


def test_duplicate_keys_are_refused_not_merged():
    text = json.dumps(routes_doc())
    route = json.dumps(routes_doc()["routes"]["checkout"])
    doubled = text.replace('"routes": {', f'"routes": {{"checkout": {route}, ', 1)
    with pytest.raises(RoutesFileError) as caught:
        parse_routes(doubled, "r.json")
    assert str(caught.value) == "r.json: key 'checkout' appears twice in one object"


@pytest.mark.parametrize(
    ("first", "second"),
    [("Team: Checkout", "team :checkout"), ("Team", "team: Search"), ("Team:  A", "TEAM: a")],
)
def test_tag_claims_that_overlap_after_normalisation_are_refused(first, second):
    doc = routes_doc()
    doc["routes"]["checkout"]["check_tags"] = [first]
    doc["routes"]["other"] = dict(doc["routes"]["checkout"], check_ids=[], check_guids=[],
                                  check_tags=[second])
    with pytest.raises(RoutesFileError) as caught:
        parse_routes(json.dumps(doc), "r.json")
    assert (f"tag {first!r} of 'checkout' and tag {second!r} of 'other' claim the same checks"
            in str(caught.value))


def test_distinct_tag_claims_are_fine():
    doc = routes_doc()
    doc["routes"]["other"] = dict(doc["routes"]["checkout"], check_ids=[], check_guids=[],
                                  check_tags=["Team: Search", "Tier"])
    assert set(parse_routes(json.dumps(doc), "r.json").routes) == {"checkout", "other"}


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "directory"])
def test_special_files_are_refused_at_once(tmp_path, special):
    if special == "fifo":
        path = tmp_path / "routes.fifo"
        os.mkfifo(path)  # nobody writes: a blocking open would hang here
    elif special == "directory":
        path = tmp_path
    else:
        path = special
    with pytest.raises(RoutesFileError, match=r"is not a regular file|is a directory"):
        load_routes_file(path)


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "routes.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_ROUTES_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(RoutesFileError, match=r"is 33,554,433 bytes; a routes file may be at "
                                              r"most 33,554,432 bytes \(32 MiB\)"):
        load_routes_file(path)


def test_new_parent_directories_are_private_whatever_the_umask(tmp_path):
    routes = parse_routes(json.dumps(routes_doc()), "r.json")
    old = os.umask(0)
    try:
        path = write_routes_file(tmp_path / "a" / "b" / "routes.json", routes)
    finally:
        os.umask(old)
    for directory in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_symlink_is_followed_and_kept(tmp_path):
    routes = parse_routes(json.dumps(routes_doc()), "r.json")
    real = tmp_path / "real" / "routes.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = tmp_path / "routes.json"
    link.symlink_to(real)
    written = write_routes_file(link, routes)
    assert written == real.resolve()
    assert link.is_symlink()
    assert load_routes_file(link) == routes


# -- version 2: integration ids and previous keys --------------------------------------


def _version_2(**fields: object) -> dict:
    doc = _with_route(**fields)
    doc["version"] = 2
    return doc


def test_version_2_round_trips_previous_keys_and_never_shows_them(tmp_path):
    doc = _version_2(integration_id="PINT002", previous_routing_keys=[
        {"routing_key": OLD_KEY, "integration_id": "PINT001"}])
    routes = parse_routes(json.dumps(doc), "r.json")
    route = routes.routes["checkout"]
    assert route.listed_keys() == {KEY, OLD_KEY}
    assert route.previous_routing_keys[0].integration_id == "PINT001"
    again = load_routes_file(write_routes_file(tmp_path / "routes.json", routes))
    assert again == routes
    assert OLD_KEY not in repr(routes) and OLD_KEY not in routes.model_dump_json()
    assert json.loads(routes_to_json(routes))["routes"]["checkout"]["previous_routing_keys"] \
        == [{"routing_key": OLD_KEY, "integration_id": "PINT001"}]


def test_version_1_still_reads_and_lists_only_its_key():
    route = parse_routes(json.dumps(routes_doc()), "r.json").routes["checkout"]
    assert (route.integration_id, route.previous_routing_keys) == (None, ())
    assert route.listed_keys() == {KEY}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_with_route(previous_routing_keys=[{"routing_key": OLD_KEY}]),
         "r.json: (top level): Value error, route 'checkout' has integration_id or "
         "previous_routing_keys, which need version 2"),
        (_with_route(integration_id="PINT002"),
         "route 'checkout' has integration_id or previous_routing_keys, which need version 2"),
        (_version_2(previous_routing_keys=[{"routing_key": KEY}]),
         "routes.checkout: Value error, previous_routing_keys.0 repeats key ...k3y9 (the "
         "current key or an earlier previous one)"),
        (_version_2(previous_routing_keys=[{"routing_key": OLD_KEY}, {"routing_key": OLD_KEY}]),
         "routes.checkout: Value error, previous_routing_keys.1 repeats key ...0ld1 (the "
         "current key or an earlier previous one)"),
        (_version_2(previous_routing_keys=[{"routing_key": OLD_KEY + "\n"}]),
         "routes.checkout.previous_routing_keys.0.routing_key: Value error, must be a "
         "PagerDuty integration key: 32 letters or digits"),
        (_version_2(previous_routing_keys=[{"routing_key": OLD_KEY, "note": "x"}]),
         "routes.checkout.previous_routing_keys.0.note: Extra inputs are not permitted"),
        (_version_2(integration_id="PINT 2"),
         "routes.checkout.integration_id: String should match pattern"),
        (_version_2(previous_routing_keys=[
            {"routing_key": f"{i:032d}"} for i in range(MAX_PREVIOUS_ROUTING_KEYS + 1)]),
         "routes.checkout.previous_routing_keys: Tuple should have at most 10 items after "
         "validation, not 11"),
    ],
)
def test_version_2_fields_are_checked(doc, message):
    with pytest.raises(RoutesFileError) as caught:
        parse_routes(json.dumps(doc), "r.json")
    assert message in str(caught.value)
    assert OLD_KEY[:-4] not in str(caught.value)


def test_a_file_without_version_2_fields_is_written_as_an_older_bridge_reads_it():
    """Older bridges refuse unknown fields: empty version-2 fields are not written."""
    written = json.loads(routes_to_json(parse_routes(json.dumps(routes_doc()), "r.json")))
    assert written["version"] == 1
    assert set(written["routes"]["checkout"]) == set(routes_doc()["routes"]["checkout"]) | {
        "service_url"}


# -- version 3: maintenance windows ----------------------------------------------------

WEEKLY = {"name": "weekly-deploy", "time_zone": "Europe/Berlin",
          "weekly": {"days": ["sat"], "start": "22:00", "end": "01:30"}}
ONCE = {"name": "db-move", "time_zone": "UTC",
        "once": {"start": "2026-12-05 22:00", "end": "2026-12-06T02:00"},
        "checks": {"ids": [101], "tags": ["Env: Staging"]}}


def _version_3(*windows: dict, **fields: object) -> dict:
    doc = _with_route(maintenance=list(windows), **fields)
    doc["version"] = 3
    return doc


def test_version_3_round_trips_windows_as_written_and_normalised(tmp_path):
    routes = parse_routes(json.dumps(_version_3(WEEKLY, ONCE)), "r.json")
    weekly, once = routes.routes["checkout"].maintenance
    assert (weekly.weekly.days, weekly.weekly.end, weekly.checks) == (("sat",), "01:30", None)
    assert (once.once.start, once.once.end) == ("2026-12-05T22:00:00", "2026-12-06T02:00:00")
    assert once.checks.ids == (101,) and once.checks.tags == ("Env: Staging",)
    again = load_routes_file(write_routes_file(tmp_path / "routes.json", routes))
    assert again == routes
    written = json.loads(routes_to_json(routes))["routes"]["checkout"]["maintenance"]
    # Unused parts are not written: an older reader of version 3 sees only what is set.
    assert written[0] == {"name": "weekly-deploy", "time_zone": "Europe/Berlin",
                          "weekly": {"days": ["sat"], "start": "22:00", "end": "01:30"}}
    assert set(written[1]) == {"name", "time_zone", "once", "checks"}


def test_version_3_reads_version_2_fields_too():
    doc = _version_3(WEEKLY, integration_id="PINT002",
                     previous_routing_keys=[{"routing_key": OLD_KEY}])
    route = parse_routes(json.dumps(doc), "r.json").routes["checkout"]
    assert route.listed_keys() == {KEY, OLD_KEY} and route.uses_version_3()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({**_version_3(WEEKLY), "version": 2},
         "r.json: (top level): Value error, route 'checkout' has maintenance windows, which "
         "need version 3"),
        (_version_3(WEEKLY, dict(WEEKLY, time_zone="Europe/Berlin")),
         "routes.checkout: Value error, maintenance.1: window name 'weekly-deploy' is used "
         "twice"),
        (_version_3(dict(WEEKLY, time_zone="Europe/Berln")),
         "routes.checkout.maintenance.0.time_zone: Value error, unknown time zone "
         "'Europe/Berln'; did you mean 'Europe/Berlin'?"),
        (_version_3(dict(ONCE, once={"start": "2026-12-05T22:00", "end": "2026-12-05T21:00"})),
         "routes.checkout.maintenance.0: Value error, end: end 2026-12-05T21:00:00 must be "
         "after start 2026-12-05T22:00:00"),
        (_version_3(dict(WEEKLY, once=ONCE["once"])),
         "routes.checkout.maintenance.0: Value error, a window needs exactly one of `once` "
         "(one-off) or `weekly`"),
        (_version_3(dict(WEEKLY, weekly={"days": ["sat", "sat"], "start": "22:00",
                                         "end": "23:00"})),
         "routes.checkout.maintenance.0.weekly: Value error, days[1]: 'sat' is listed twice"),
        (_version_3(dict(WEEKLY, checks={"ids": []})),
         "routes.checkout.maintenance.0.checks: Value error, name at least one check id, GUID "
         "or tag"),
        (_version_3(dict(WEEKLY, name="two\nlines")),
         "routes.checkout.maintenance.0.name: Value error, must be one line of text"),
        (_version_3(*[dict(WEEKLY, name=f"w{i}") for i in range(51)]),
         "routes.checkout.maintenance: Tuple should have at most 50 items after validation"),
    ],
)
def test_version_3_windows_are_checked(doc, message):
    with pytest.raises(RoutesFileError) as caught:
        parse_routes(json.dumps(doc), "r.json")
    assert message in str(caught.value)


def test_the_lowest_version_holds_exactly_the_fields_used():
    plain = parse_routes(json.dumps(routes_doc()), "r.json").routes["checkout"]
    keys = parse_routes(json.dumps(_version_2(integration_id="PINT002")), "r.json")
    windows = parse_routes(json.dumps(_version_3(WEEKLY)), "r.json")
    assert lowest_version([plain]) == 1
    assert lowest_version([plain, keys.routes["checkout"]]) == 2
    assert lowest_version([keys.routes["checkout"], windows.routes["checkout"]]) == 3
