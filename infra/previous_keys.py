"""Carry a route's old integration keys into the routes file the hand-off writes.

The bridge sends a resolve to the key its incident was opened through while the route
still lists that key (current or `previous_routing_keys`, routes file version 2). So
when `routes pull` / `routes install` writes over an existing routes file and a route's
key changed (an integration replaced), the old key goes into the route's previous keys,
newest first, at most `MAX_PREVIOUS_ROUTING_KEYS`. They are dropped again when
PagerDuty says their integration is gone (`check_previous_keys`, with a REST token), or
all at once on request (`forget_previous_keys`, once `apica-pd outbox` shows no
incidents open on them). Every decision is a note for the person running the hand-off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from contract.redact import last4
from contract.routes_file import (
    MAX_PREVIOUS_ROUTING_KEYS,
    PreviousKey,
    Route,
    RoutesFile,
    lowest_version,
    parse_routes,
    routes_to_json,
)
from contract.vocabulary import PAGERDUTY_TOKEN_ENV
from infra.pagerduty_api import PagerDutyApi, PagerDutyApiError


@dataclass(frozen=True)
class Carried:
    """The routes file to write and what was decided about previous keys, one line each."""

    routes: RoutesFile
    notes: tuple[str, ...] = ()


class Integrations(Protocol):
    def exists(self, service_id: str, previous: PreviousKey) -> bool:
        """Does the integration of this previous key still exist? Raises
        `PagerDutyApiError` when PagerDuty cannot say."""
        ...


def carry_previous_keys(old: RoutesFile | None, new: RoutesFile) -> Carried:
    """`new`, with each route's keys from `old` (the file being written over) carried."""
    notes: list[str] = []
    routes: dict[str, list[PreviousKey]] = {}
    for name, route in new.routes.items():
        before = old.routes.get(name) if old is not None else None
        carried = list(route.previous_routing_keys)
        if before is not None:
            if _key(before) != _key(route):
                carried.append(PreviousKey(routing_key=before.routing_key,
                                           integration_id=before.integration_id))
                notes.append(f"route {name}: key changed from {last4(_key(before))} to "
                             f"{last4(_key(route))}; {last4(_key(before))} kept as a previous "
                             "key, so resolves of incidents opened through it still reach it")
            carried += before.previous_routing_keys
        kept = _unique(carried, exclude=_key(route))
        if len(kept) > MAX_PREVIOUS_ROUTING_KEYS:
            dropped = kept[MAX_PREVIOUS_ROUTING_KEYS:]
            kept = kept[:MAX_PREVIOUS_ROUTING_KEYS]
            notes.append(f"route {name}: more than {MAX_PREVIOUS_ROUTING_KEYS} previous keys; "
                         f"the oldest dropped: {_shown(dropped)}")
        routes[name] = kept
    for name in sorted(set(old.routes if old else ()) - set(new.routes)):
        notes.append(f"route {name} is no longer in the routes file: the bridge dead-letters "
                     "what is still queued for it (route_removed)")
    return Carried(_with_previous_keys(new, routes), tuple(notes))


def forget_previous_keys(routes: RoutesFile) -> Carried:
    """`routes` without any previous key (`--forget-previous-keys`)."""
    notes = [f"route {name}: previous keys {_shown(route.previous_routing_keys)} forgotten"
             for name, route in routes.routes.items() if route.previous_routing_keys]
    return Carried(_with_previous_keys(routes, {name: [] for name in routes.routes}),
                   tuple(notes))


def check_previous_keys(routes: RoutesFile, integrations: Integrations | None) -> Carried:
    """Drop previous keys whose integration PagerDuty no longer has; without a way to
    ask (no REST token) keep them and say they were not verified."""
    notes: list[str] = []
    kept: dict[str, list[PreviousKey]] = {}
    for name, route in routes.routes.items():
        kept[name] = []
        unverified: list[PreviousKey] = []
        for previous in route.previous_routing_keys:
            if integrations is None:
                unverified.append(previous)
                continue
            try:
                exists = integrations.exists(route.service_id, previous)
            except PagerDutyApiError as exc:
                notes.append(f"route {name}: could not verify previous key "
                             f"{last4(_key(previous))} ({exc}); kept")
                exists = True
            if exists:
                kept[name].append(previous)
            else:
                notes.append(f"route {name}: previous key {last4(_key(previous))} dropped: its "
                             "integration no longer exists in PagerDuty (resolve what was "
                             "opened through it by hand)")
        if unverified:
            kept[name] += unverified
            notes.append(f"route {name}: previous keys {_shown(unverified)} kept, not "
                         f"verified ({PAGERDUTY_TOKEN_ENV} is not set); drop them with "
                         "--forget-previous-keys once `apica-pd outbox` shows no incidents "
                         "open on them")
    return Carried(_with_previous_keys(routes, kept), tuple(notes))


class PagerDutyIntegrations:
    """Asks PagerDuty's REST API whether a previous key's integration still exists."""

    def __init__(self, api: PagerDutyApi) -> None:
        self._api = api
        self._service_keys: dict[str, set[str] | None] = {}

    def exists(self, service_id: str, previous: PreviousKey) -> bool:
        if previous.integration_id is not None:
            path = f"/services/{service_id}/integrations/{previous.integration_id}"
            return self._api.get_or_none(path) is not None
        # No integration id (a routes file the program wrote before it carried them): look
        # the key up among the service's integrations.
        if service_id not in self._service_keys:
            service = self._api.get_or_none(
                f"/services/{service_id}", {"include[]": "integrations"}
            )
            integrations = (service or {}).get("service", {}).get("integrations") or []
            self._service_keys[service_id] = None if service is None else {
                i.get("integration_key") for i in integrations if isinstance(i, dict)}
        keys = self._service_keys[service_id]
        return keys is not None and _key(previous) in keys


def _key(route: Route | PreviousKey) -> str:
    return route.routing_key.get_secret_value()


def _unique(keys: Sequence[PreviousKey], *, exclude: str) -> list[PreviousKey]:
    seen = {exclude}
    unique = []
    for previous in keys:
        if _key(previous) not in seen:
            seen.add(_key(previous))
            unique.append(previous)
    return unique


def _shown(keys: Sequence[PreviousKey]) -> str:
    return ", ".join(last4(_key(previous)) for previous in keys)


def _with_previous_keys(routes: RoutesFile, previous: dict[str, list[PreviousKey]]) -> RoutesFile:
    """`routes` with these previous keys, version 2 where a route needs it, validated
    again as the bridge will read it."""
    updated = {name: route.model_copy(update={"previous_routing_keys": tuple(previous[name])})
               for name, route in routes.routes.items()}
    candidate = routes.model_copy(update={"routes": updated,
                                          "version": lowest_version(updated.values())})
    return parse_routes(routes_to_json(candidate), "the routes file to write")
