"""The look-ups against the sandbox: exact and partial matching, paging, first pages only."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from sandbox.pulumi_provider.lookups import (
    LOOKUPS,
    get_escalation_policy,
    get_schedule,
    get_service,
    get_team,
    get_user,
    get_vendor,
)
from sandbox.pulumi_provider.resource_type import Api, ProviderError
from sandbox.pulumi_provider.rest import CALL_LOG
from sandbox.server import PagerDutySandbox


@pytest.fixture
def calls(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.DEBUG, logger=CALL_LOG.name)

    def made() -> list[str]:
        records = [
            json.loads(r.getMessage().split(": rest ", 1)[1])
            for r in caplog.records
            if ": rest " in r.getMessage()
        ]
        return [f"{r['path']}?{r['query']}" for r in records]

    return made


def test_every_token_the_sdk_invokes_has_a_look_up():
    assert sorted(LOOKUPS) == [
        f"pagerduty:index/{name}:{name}"
        for name in (
            "getEscalationPolicy",
            "getSchedule",
            "getService",
            "getTeam",
            "getUser",
            "getVendor",
        )
    ]


def test_vendor_exact_match_ignores_case_and_beats_an_earlier_partial_one(
    pd: PagerDutySandbox, api: Api, calls: Any
):
    pd.state.add_vendor("Azeta Tools")
    for number in range(110):
        pd.state.add_vendor(f"Filler {number:03}")
    zeta = pd.state.add_vendor("Zeta")
    found = get_vendor(api, {"name": "zeta"})
    assert found == {"id": zeta["id"], "name": "Zeta", "type": ""}
    assert calls() == ["/vendors?limit=100", "/vendors?limit=100&offset=100"]
    assert get_vendor(api, {"name": "apica"})["name"] == "Apica"
    # No exact name: the first partial match, silently.
    assert get_vendor(api, {"name": "cloud"})["name"] == "Amazon CloudWatch"


def test_vendor_not_found_and_a_name_that_is_no_pattern(api: Api):
    with pytest.raises(ProviderError, match=r"^Unable to locate any vendor with the name: Nobody$"):
        get_vendor(api, {"name": "Nobody"})
    with pytest.raises(ProviderError, match=re.escape("the vendor name 'Apica (' is not a valid")):
        get_vendor(api, {"name": "Apica ("})


def test_user_schedule_and_team_match_exactly_on_the_first_page(
    pd: PagerDutySandbox, api: Api, calls: Any
):
    alice = pd.state.add_user("alice@example.com", "Alice", job_title="SRE")
    pd.state.add_user("alice@example.com.au", "Alice AU")
    assert get_user(api, {"email": "alice@example.com"}) == {
        "id": alice["id"],
        "name": "Alice",
        "email": "alice@example.com",
        "description": "",
        "jobTitle": "SRE",
        "role": "user",
        "timeZone": "UTC",
    }
    with pytest.raises(
        ProviderError, match=r"Unable to locate any user with the email: Alice@example\.com"
    ):
        get_user(api, {"email": "Alice@example.com"})
    primary = pd.state.add_schedule("Platform Primary")
    assert get_schedule(api, {"name": "Platform Primary"})["id"] == primary["id"]
    with pytest.raises(
        ProviderError, match="Unable to locate any schedule with the name: platform primary"
    ):
        get_schedule(api, {"name": "platform primary"})
    team = pd.state.add_team("Platform", description="The platform team")
    assert get_team(api, {"name": "Platform"}) == {
        "id": team["id"],
        "name": "Platform",
        "description": "The platform team",
        "parent": None,
        "defaultRole": "",
    }
    with pytest.raises(ProviderError, match=r"^Unable to locate any team with name: Plat$"):
        get_team(api, {"name": "Plat"})
    assert calls()[:2] == ["/users?query=alice%40example.com", "/users?query=Alice%40example.com"]


def test_service_pages_until_the_exact_name(pd: PagerDutySandbox, api: Api, calls: Any):
    policy = pd.state.create_escalation_policy("Ops", teams=[])
    for number in range(105):
        pd.state.create_service(name=f"Ops A {number:03}", escalation_policy_id=policy["id"])
    wanted = pd.state.create_service(name="Ops Z", escalation_policy_id=policy["id"])
    found = get_service(api, {"name": "Ops Z"})
    assert found["id"] == wanted["id"] and found["escalationPolicy"] == policy["id"]
    assert found["autoResolveTimeout"] == 14400 and found["teams"] == []
    with pytest.raises(ProviderError, match="Unable to locate any service with the name: Ops"):
        get_service(api, {"name": "Ops"})
    assert calls()[-2:] == [
        "/services?include%5B%5D=teams&limit=100&query=Ops",
        "/services?include%5B%5D=teams&limit=100&offset=100&query=Ops",
    ]


def test_escalation_policy_reads_one_page_and_says_when_the_real_one_would_loop(
    pd: PagerDutySandbox, api: Api, calls: Any
):
    team = pd.state.add_team("Platform")
    wanted = pd.state.create_escalation_policy(
        "SRE", teams=[pd.state.directory.reference("teams", team)]
    )
    assert get_escalation_policy(api, {"name": "SRE"}) == {
        "id": wanted["id"],
        "name": "SRE",
        "description": "",
        "teams": [team["id"]],
    }
    for number in range(30):
        pd.state.create_escalation_policy(f"Ops Team {number:02}")
    with pytest.raises(ProviderError, match="would read that page forever"):
        get_escalation_policy(api, {"name": "Ops Team"})
    assert calls()[-1] == "/escalation_policies?include%5B%5D=teams&query=Ops+Team"
    with pytest.raises(ProviderError, match="Missing required argument 'name'"):
        get_escalation_policy(api, {})
