"""Which route claims an ASM check posted to `/v1/asm` (no route in the URL).

Order: check id, then check GUID (case-insensitive), then tags, then the routes
file's catch-all. A tag claim is "Key: Value" (that value under that key) or "Key"
(any value); keys and values compare case-insensitively, trimmed. When several
routes claim a check by tag (distinct claims, such as "Team: A" and "Tier: Gold",
that one check's tags both satisfy), the first in the routes file wins (the file's
order is the stack file's order, which people review). Claims that overlap by
themselves ("Team" and "team: a") are refused by the routes model and by validate.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.errors import Unrouted
from bridge.intake.asm import AsmAlert
from contract.routes_file import RoutesFile
from contract.vocabulary import normal_tag_text, tag_claim_parts


@dataclass(frozen=True)
class Match:
    route_name: str
    why: str  # "check_id", "check_guid", "tag:<claim>" or "catch_all": for logs


def match_route(routes: RoutesFile, alert: AsmAlert) -> Match:
    """The route for `alert`, or `Unrouted` when nothing claims it."""
    found = find_route(routes, alert)
    if found is None:
        raise Unrouted(alert.check_key)
    return found


def find_route(routes: RoutesFile, alert: AsmAlert) -> Match | None:
    if alert.check_id is not None:
        for name, route in routes.routes.items():
            if alert.check_id in route.check_ids:
                return Match(name, "check_id")
    if alert.check_guid:
        guid = alert.check_guid.lower()
        for name, route in routes.routes.items():
            if guid in (g.lower() for g in route.check_guids):
                return Match(name, "check_guid")
    if alert.tags:
        tags = _normal_tags(alert.tags)
        for name, route in routes.routes.items():
            for claim in route.check_tags:
                if tag_claims(claim, tags):
                    return Match(name, f"tag:{claim}")
    if routes.catch_all is not None:
        return Match(routes.catch_all, "catch_all")
    return None


def tag_claims(claim: str, tags: dict[str, set[str]]) -> bool:
    """Does the tag claim ("Key: Value" or "Key") hold for normalised `tags`?"""
    key, value = tag_claim_parts(claim)
    values = tags.get(key)
    if values is None:
        return False
    return value is None or value in values


def _normal_tags(tags: dict[str, tuple[str, ...]]) -> dict[str, set[str]]:
    return {normal_tag_text(key): {normal_tag_text(v) for v in values}
            for key, values in tags.items()}
