"""Which key a lane head goes to, chosen at send time from the routes in force."""

from __future__ import annotations

import pytest

from bridge.delivery.targets import SendTo, Unsendable, choose_key
from bridge.store.records import LaneHead
from contract.routes_file import RoutesFile

K_OLD = "O" * 28 + "0ld1"
K_NEW = "N" * 28 + "n3w2"
K_GONE = "G" * 28 + "g0n3"


def routes(current: str = K_NEW, previous: tuple[str, ...] = (K_OLD,)) -> RoutesFile:
    return RoutesFile.model_validate({"version": 2, "stack": "t", "routes": {"web": {
        "service_name": "Web", "service_id": "PWEB", "integration_name": "Apica-Web",
        "routing_key": current,
        "previous_routing_keys": [{"routing_key": key} for key in previous]}}})


def head(action: str = "trigger", opened_through: str | None = None,
         route: str = "web") -> LaneHead:
    return LaneHead(1, route, action, "apica-asm:web:id:1:high", 0.0, None, None,
                    opened_through)


GONE = ("incident apica-asm:web:id:1:high was opened through ...g0n3, which the routes file "
        "no longer lists for route 'web'; resolve it in PagerDuty by hand")


@pytest.mark.parametrize(
    ("lane_head", "expected"),
    [
        # A new incident, or a resolve of one the bridge never opened: the current key.
        (head("trigger"), SendTo(K_NEW)),
        (head("resolve"), SendTo(K_NEW)),
        # An incident the bridge opened keeps its key while the route lists it.
        (head("resolve", K_OLD), SendTo(K_OLD)),
        (head("trigger", K_OLD), SendTo(K_OLD)),  # merges into the open incident
        (head("resolve", K_NEW), SendTo(K_NEW)),
        # Its key no longer listed: the resolve cannot reach it, the trigger still pages.
        (head("resolve", K_GONE), Unsendable("integration_gone", GONE, K_GONE)),
        (head("trigger", K_GONE), SendTo(K_NEW, orphaned=K_GONE)),
        # The route is gone.
        (head("resolve", K_OLD, route="old"), Unsendable(
            "route_removed", "route 'old' is not in the routes file any more; the resolve of "
            "apica-asm:web:id:1:high was not sent: put the route back and re-drive it, or "
            "handle the incident in PagerDuty by hand", K_OLD)),
    ],
)
def test_the_key_is_chosen_from_the_routes_in_force(lane_head, expected):
    assert choose_key(routes(), lane_head) == expected


def test_without_previous_keys_only_the_current_key_is_listed():
    assert choose_key(routes(previous=()), head("resolve", K_OLD)).reason == "integration_gone"
