"""infra.account_import: reading the hand-made account from the sandbox's REST API."""

from __future__ import annotations

import pytest

from infra.account_import import Account, ImportSelectionError, Selection, fetch_account
from infra.pagerduty_api import PagerDutyApi
from sandbox.server import PagerDutySandbox

from .conftest import HandMadeAccount


def fetch(pd: PagerDutySandbox, selection: Selection) -> Account:
    return fetch_account(PagerDutyApi(pd.api_url, pd.token), selection)


def names(account: Account) -> list[str]:
    return [service["name"] for service in account.services]


def test_everything(pd: PagerDutySandbox, account: HandMadeAccount) -> None:
    found = fetch(pd, Selection(everything=True))
    assert names(found) == ["Checkout API", "Search", "Status Page"]
    assert sorted(p["name"] for p in found.policies.values()) == [
        "Payments On-call", "Platform On-call",
    ]
    assert found.source == pd.api_url
    assert sorted(u["email"] for u in found.users.values()) == [
        "alice@example.com", "bob@example.com",
    ]
    assert [s["name"] for s in found.schedules.values()] == ["Platform Primary"]
    assert [t["name"] for t in found.teams.values()] == ["Platform"]
    assert [v["name"] for v in found.vendors.values()] == ["Apica"]


def test_rules_come_with_their_assignment_strategies(
    pd: PagerDutySandbox, account: HandMadeAccount
) -> None:
    policy = fetch(pd, Selection(everything=True)).policies[account.ids["Platform On-call"]]
    rules = policy["escalation_rules"]
    assert [r["escalation_delay_in_minutes"] for r in rules] == [30, 15]
    assert [r["escalation_rule_assignment_strategy"]["type"] for r in rules] == [
        "assign_to_everyone", "round_robin",
    ]


def test_integrations_come_whole_but_without_their_keys(
    pd: PagerDutySandbox, account: HandMadeAccount
) -> None:
    found = fetch(pd, Selection(names=("Checkout API",)))
    integrations = found.services[0]["integrations"]
    assert [i["name"] for i in integrations] == ["Apica-Checkout-API", "Deploy hooks"]
    assert all("integration_key" not in i for i in integrations)
    assert integrations[0]["vendor"]["id"] in found.vendors


def test_by_name_exactly_or_ignoring_case(pd: PagerDutySandbox, account: HandMadeAccount) -> None:
    pd.state.create_service("Search Admin")
    found = fetch(pd, Selection(names=("search", "Status Page", "Search")))
    assert names(found) == ["Search", "Status Page"]


def test_by_team_through_its_policies(pd: PagerDutySandbox, account: HandMadeAccount) -> None:
    assert names(fetch(pd, Selection(team="Platform"))) == ["Search", "Status Page"]


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (
            Selection(names=("Serch",)),
            "no service named 'Serch' in PagerDuty (names match exactly, ignoring case)",
        ),
        (
            Selection(names=("Checkout",)),
            "no service named 'Checkout' in PagerDuty (names match exactly, ignoring case); "
            "did you mean 'Checkout API'?",
        ),
        (
            Selection(team="Plat"),
            "no team named 'Plat' in PagerDuty (names match exactly, ignoring case); did you "
            "mean 'Platform'?",
        ),
    ],
)
def test_unknown_names(
    pd: PagerDutySandbox, account: HandMadeAccount, selection: Selection, message: str
) -> None:
    with pytest.raises(ImportSelectionError) as caught:
        fetch(pd, selection)
    assert str(caught.value) == message


def test_alert_grouping_settings_of_the_services(pd: PagerDutySandbox) -> None:
    policy = pd.state.create_escalation_policy("Ops")
    grouped = pd.state.create_service("Grouped", escalation_policy_id=policy["id"])
    own = pd.state.create_service(
        "Own", escalation_policy_id=policy["id"],
        alert_grouping_parameters={"type": "time", "config": {"timeout": 5}},
    )
    with pd.state.lock:
        setting = pd.state.directory.add_alert_grouping_setting(
            "time", {"timeout": 600}, [grouped["id"]], name="Ten minutes"
        )
    found = fetch(pd, Selection(everything=True))
    assert {sid: s["id"] for sid, s in found.grouping_settings.items()} == {
        grouped["id"]: setting["id"]
    }
    assert own["id"] not in found.grouping_settings


def test_selection_describes_itself() -> None:
    assert Selection(everything=True).describe() == "--all"
    assert Selection(team="Platform").describe() == "--team 'Platform'"
    assert Selection(names=("A", "B c")).describe() == "--service 'A' --service 'B c'"
