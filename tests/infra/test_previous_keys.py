"""Carrying a route's old keys into the routes file the hand-off writes, and dropping
them again once PagerDuty (the sandbox's REST API here) says their integration is gone."""

from __future__ import annotations

import httpx
import pytest

from contract.routes_file import PreviousKey, RoutesFile
from infra.pagerduty_api import MAX_TRIES, PagerDutyApi, PagerDutyApiError
from infra.previous_keys import (
    PagerDutyIntegrations,
    carry_previous_keys,
    check_previous_keys,
    forget_previous_keys,
)
from sandbox.server import PagerDutySandbox

K1, K2, K3 = ("1" * 28 + "key1"), ("2" * 28 + "key2"), ("3" * 28 + "key3")
OTHER = "9" * 28 + "oth9"


def routes(key: str = K1, *previous: str, name: str = "web", service_id: str = "PWEB",
           **more: str) -> RoutesFile:
    def route(routing_key: str, earlier: tuple[str, ...] = ()) -> dict:
        return {"service_name": "Web", "service_id": service_id,
                "integration_name": "Apica-Web", "routing_key": routing_key,
                **({"previous_routing_keys": [{"routing_key": k} for k in earlier]}
                   if earlier else {})}

    return RoutesFile.model_validate({
        "version": 2 if previous else 1, "stack": "t",
        "routes": {name: route(key, previous), **{n: route(k) for n, k in more.items()}}})


def previous_of(file: RoutesFile, name: str = "web") -> list[str]:
    return [p.routing_key.get_secret_value() for p in file.routes[name].previous_routing_keys]


@pytest.mark.parametrize(
    ("old", "new", "previous", "notes"),
    [
        # Nothing to write over, or the key did not change: nothing carried.
        (None, routes(K2), [], []),
        (routes(K1), routes(K1), [], []),
        # A changed key: the old one becomes the newest previous key.
        (routes(K1), routes(K2), [K1], [
            "route web: key changed from ...key1 to ...key2; ...key1 kept as a previous key, "
            "so resolves of incidents opened through it still reach it"]),
        # Earlier previous keys stay behind it.
        (routes(K2, K1), routes(K3), [K2, K1], [
            "route web: key changed from ...key2 to ...key3; ...key2 kept as a previous key, "
            "so resolves of incidents opened through it still reach it"]),
        # Back to an earlier key: it is current again, not also a previous one.
        (routes(K2, K1), routes(K1), [K2], [
            "route web: key changed from ...key2 to ...key1; ...key2 kept as a previous key, "
            "so resolves of incidents opened through it still reach it"]),
        # The same key unchanged keeps what the old file listed.
        (routes(K2, K1), routes(K2), [K1], []),
        # A route that is gone is said so.
        (routes(K1, other=OTHER), routes(K1), [], [
            "route other is no longer in the routes file: the bridge dead-letters what is "
            "still queued for it (route_removed)"]),
    ],
)
def test_a_changed_key_is_carried_as_a_previous_key(old, new, previous, notes):
    carried = carry_previous_keys(old, new)
    assert previous_of(carried.routes) == previous
    assert list(carried.notes) == notes
    assert carried.routes.version == (2 if previous else 1)


def test_previous_keys_are_bounded_newest_first():
    eleven = [f"{i:028d}old{i % 10}" for i in range(11)]
    old = routes(eleven[0], *eleven[1:10])  # 1 current + 9 previous
    carried = carry_previous_keys(old, routes(eleven[10]))
    assert previous_of(carried.routes) == eleven[:10]
    again = carry_previous_keys(carried.routes, routes(K1))
    assert previous_of(again.routes) == [eleven[10], *eleven[:9]]
    assert again.notes[-1] == ("route web: more than 10 previous keys; the oldest dropped: "
                               "...old9")


def test_forget_previous_keys_writes_none_and_says_which():
    forgotten = forget_previous_keys(routes(K3, K2, K1))
    assert (previous_of(forgotten.routes), forgotten.routes.version) == ([], 1)
    assert forgotten.notes == ("route web: previous keys ...key2, ...key1 forgotten",)


def test_windows_keep_version_3_when_keys_are_carried_or_forgotten():
    window = {"name": "deploy", "time_zone": "UTC",
              "weekly": {"days": ["sat"], "start": "22:00", "end": "23:00"}}
    data = routes(K2).model_dump(mode="json", context={"reveal_secrets": True})
    data["version"] = 3
    data["routes"]["web"]["maintenance"] = [window]
    held = RoutesFile.model_validate(data)
    carried = carry_previous_keys(routes(K1), held)
    assert (previous_of(carried.routes), carried.routes.version) == ([K1], 3)
    assert forget_previous_keys(carried.routes).routes.version == 3


def test_without_a_token_previous_keys_are_kept_and_said_unverified():
    checked = check_previous_keys(routes(K3, K2), None)
    assert previous_of(checked.routes) == [K2]
    assert checked.notes == (
        "route web: previous keys ...key2 kept, not verified (PAGERDUTY_TOKEN is not set); "
        "drop them with --forget-previous-keys once `apica-pd outbox` shows no incidents "
        "open on them",)


class Answers:
    """Integrations that answer from a table: True, False or a PagerDutyApiError."""

    def __init__(self, **answers: object) -> None:
        self.answers = answers

    def exists(self, service_id: str, previous: PreviousKey) -> bool:
        answer = self.answers[previous.routing_key.get_secret_value()[-4:]]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_previous_keys_pagerduty_no_longer_has_are_dropped():
    checked = check_previous_keys(routes(K3, K2, K1), Answers(
        key2=False, key1=PagerDutyApiError("GET /x: answered 503", 503)))
    assert previous_of(checked.routes) == [K1]
    assert checked.notes == (
        "route web: previous key ...key2 dropped: its integration no longer exists in "
        "PagerDuty (resolve what was opened through it by hand)",
        "route web: could not verify previous key ...key1 (GET /x: answered 503); kept",
    )


# -- against the sandbox's REST API ------------------------------------------------------


@pytest.fixture(scope="module")
def pd():
    with PagerDutySandbox(events_per_minute=None) as server:
        yield server


@pytest.fixture
def service(pd):
    service = pd.state.create_service(name=f"Web {len(pd.state.services())}")
    kept = pd.state.add_integration(service["id"], name="Apica-Web-2")
    gone = pd.state.add_integration(service["id"], name="Apica-Web")
    deleted = httpx.delete(f"{pd.api_url}/services/{service['id']}/integrations/{gone['id']}",
                           headers={"Authorization": f"Token token={pd.token}"}, timeout=5)
    assert deleted.status_code == 204
    return service, kept, gone


def previous_key(integration: dict, with_id: bool) -> PreviousKey:
    return PreviousKey(routing_key=integration["integration_key"],
                       integration_id=integration["id"] if with_id else None)


@pytest.mark.parametrize("with_id", [True, False])
def test_the_rest_api_tells_an_existing_integration_from_a_deleted_one(pd, service, with_id):
    """By integration id (GET /services/{id}/integrations/{id}) when the routes file has
    it, else by key among the service's integrations (the program does not write ids
    yet)."""
    svc, kept, gone = service
    integrations = PagerDutyIntegrations(PagerDutyApi(pd.api_url, pd.token))
    assert integrations.exists(svc["id"], previous_key(kept, with_id)) is True
    assert integrations.exists(svc["id"], previous_key(gone, with_id)) is False
    assert integrations.exists("PNOSUCH", previous_key(kept, with_id)) is False


def test_a_wrong_token_is_a_lookup_failure_not_a_deletion(pd, service):
    svc, kept, _ = service
    integrations = PagerDutyIntegrations(PagerDutyApi(pd.api_url, "wrong"))
    with pytest.raises(PagerDutyApiError) as caught:
        integrations.exists(svc["id"], previous_key(kept, True))
    assert caught.value.status == 401
    assert str(caught.value).startswith(
        f"GET /services/{svc['id']}/integrations/{kept['id']}: answered 401 "
        "(Authentication failed): PagerDuty refused the token")


def test_an_unreachable_api_is_a_lookup_failure():
    api = PagerDutyApi("http://127.0.0.1:9", "t", sleep=lambda _: None)
    with pytest.raises(PagerDutyApiError) as caught:
        PagerDutyIntegrations(api).exists("PWEB", PreviousKey(routing_key=K1))
    assert str(caught.value) == (
        f"GET /services/PWEB: cannot reach http://127.0.0.1:9 (ConnectionError) after "
        f"{MAX_TRIES} tries; check --api-url and the network")
