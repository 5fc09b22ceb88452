"""Which routing key a lane head goes to, chosen when it is sent (pure; issue 9 item 2).

From the routes in force at send time:

- an incident the bridge opened and has not resolved (`LaneHead.opened_through`) keeps
  its key while the route still lists it (current or `previous_routing_keys`): its
  resolve reaches the integration that opened it, and a repeated trigger merges into it;
- anything else (a new incident, a resolve of an incident the bridge never opened) goes
  to the route's current key;
- a resolve whose incident was opened through a key the route no longer lists cannot
  reach it: `Unsendable("integration_gone")`, for a person to resolve by hand;
- a trigger in that case still pages, through the current key (a new incident), and
  the old incident is reported (`SendTo.orphaned`): a page is never held back;
- a route no longer in the routes file: `Unsendable("route_removed")`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bridge.store.records import KeyIncidents, LaneHead
from contract.redact import last4
from contract.routes_file import RoutesFile

INTEGRATION_GONE = "integration_gone"
ROUTE_REMOVED = "route_removed"


@dataclass(frozen=True)
class SendTo:
    routing_key: str
    # The key of an incident this trigger cannot reach any more (reported, not sent to).
    orphaned: str | None = None


@dataclass(frozen=True)
class Unsendable:
    reason: str
    message: str
    routing_key: str | None


def choose_key(routes: RoutesFile, head: LaneHead) -> SendTo | Unsendable:
    route = routes.routes.get(head.route)
    if route is None:
        return Unsendable(ROUTE_REMOVED, (
            f"route {head.route!r} is not in the routes file any more; the {head.action} of "
            f"{head.dedup_key} was not sent: put the route back and re-drive it, or handle "
            "the incident in PagerDuty by hand"), head.opened_through)
    current = route.routing_key.get_secret_value()
    opened = head.opened_through
    if opened is None or opened in route.listed_keys():
        return SendTo(opened or current)
    if head.action == "trigger":
        return SendTo(current, orphaned=opened)
    return Unsendable(INTEGRATION_GONE, gone_message(head.route, head.dedup_key, opened),
                      opened)


def gone_message(route: str, dedup_key: str, opened: str) -> str:
    return (f"incident {dedup_key} was opened through {last4(opened)}, which the routes "
            f"file no longer lists for route {route!r}; resolve it in PagerDuty by hand")


def orphaned_message(route: str, dedup_key: str, opened: str, sent_to: str) -> str:
    return (f"{gone_message(route, dedup_key, opened)} (a new trigger for it went through "
            f"{last4(sent_to)} and opened a new incident)")


@dataclass(frozen=True)
class KeyUse:
    """A key a route lists or an incident was opened through, and the incidents open on
    it. `role`: current, previous, not listed (open incidents nobody can close through
    the bridge) or unknown (the routes file could not be read)."""

    route: str
    routing_key: str
    role: str
    open_incidents: int


def key_uses(routes: RoutesFile | None, open_incidents: Sequence[KeyIncidents]) -> list[KeyUse]:
    """Per route, its keys and the incidents open on each (`apica-pd outbox`): a previous
    key with none open is safe to forget."""
    counts = {(i.route, i.routing_key): i.open for i in open_incidents}
    uses = []
    for name, route in sorted((routes.routes if routes else {}).items()):
        listed = [(route.routing_key, "current"),
                  *((p.routing_key, "previous") for p in route.previous_routing_keys)]
        for key, role in listed:
            secret = key.get_secret_value()
            uses.append(KeyUse(name, secret, role, counts.pop((name, secret), 0)))
    unlisted = "unknown" if routes is None else "not listed"
    uses += [KeyUse(name, key, unlisted, count) for (name, key), count in sorted(counts.items())]
    return uses
