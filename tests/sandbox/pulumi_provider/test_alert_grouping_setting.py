"""AlertGroupingSetting: config by type, ValidateConfig, ModifyPlan, the replace rule, REST flow."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.pulumi_provider.alert_grouping_setting import (
    AlertGroupingSetting,
    setting_body,
    setting_state,
)
from sandbox.pulumi_provider.plan import changes, planned
from sandbox.pulumi_provider.resource_type import Api, ProviderError
from sandbox.pulumi_provider.schema import Failure, with_defaults
from sandbox.server import PagerDutySandbox

SETTING = AlertGroupingSetting()


def plan_of(config: dict[str, Any], prior: dict[str, Any] | None = None) -> dict[str, Any]:
    plan = planned(SETTING.schema, with_defaults(SETTING.schema, config), prior)
    return SETTING.adjust_plan(plan, prior)


@pytest.fixture
def services(pd: PagerDutySandbox) -> list[str]:
    return [pd.state.create_service(name=name)["id"] for name in ("Checkout", "Search")]


def test_config_is_sent_whole_for_its_type():
    def config_sent(kind: str, config: dict[str, Any] | None) -> Any:
        return setting_body(plan_of({"type": kind, "services": ["P1"], "config": config}))[
            "alert_grouping_setting"
        ]["config"]

    assert config_sent("time", None) == {"timeout": 0}
    assert config_sent("time", {"timeout": 300}) == {"timeout": 300}
    assert config_sent("intelligent", None) == {"time_window": 0, "iag_fields": ["summary"]}
    assert config_sent("content_based", {"aggregate": "any", "fields": ["source"]}) == {
        "time_window": 0,
        "aggregate": "any",
        "fields": ["source"],
    }
    body = setting_body(plan_of({"type": "time", "services": ["P1"], "name": "Checkout"}))
    assert body == {
        "alert_grouping_setting": {
            "name": "Checkout",
            "description": "Managed by Terraform",
            "type": "time",
            "config": {"timeout": 0},
            "services": [{"id": "P1"}],
        }
    }


def test_the_state_decodes_config_by_type():
    answer = {
        "id": "PAGS001",
        "name": "",
        "description": "d",
        "type": "intelligent",
        "config": {"time_window": 300, "iag_fields": ["summary"], "timeout": 9},
        "services": [{"id": "P1"}],
    }
    assert setting_state(answer) == {
        "id": "PAGS001",
        "name": None,
        "description": "d",
        "type": "intelligent",
        "config": {
            "timeout": None,
            "timeWindow": 300,
            "aggregate": None,
            "fields": None,
            "iagFields": ["summary"],
        },
        "services": ["P1"],
    }


def test_validate_config():
    assert SETTING.check({"type": "time", "services": ["P1", "P2"]}) == [
        Failure("services", 'Setting of type "time" allows for only one service in the array')
    ]
    assert SETTING.check(
        {"type": "content_based", "services": ["P1"], "config": {"timeout": 60}}
    ) == [
        Failure("config.fields", "'fields' cannot be blank"),
        Failure("config.aggregate", "'aggregate' cannot be blank"),
        Failure(
            "config.timeout",
            '\'timeout\' is only applicable when type is "time", got "content_based"',
        ),
    ]


def test_services_replace_only_when_none_is_kept():
    state = {"services": ["P1", "P2"]}
    assert SETTING.replaces({"services": ["P2", "P1"]}, state) == []
    assert SETTING.replaces({"services": ["P2", "P3"]}, state) == []
    assert SETTING.replaces({"services": ["P3"]}, state) == ["services"]


def test_create_update_delete_on_the_sandbox(pd: PagerDutySandbox, api: Api, services: list[str]):
    config = {
        "name": "Checkout grouping",
        "type": "time",
        "services": services[:1],
        "config": {"timeout": 300},
    }
    setting_id, state = SETTING.create(api, plan_of(config), "urn:ags")
    assert state["config"]["timeout"] == 300
    assert changes(SETTING.schema, plan_of(config, state), state, zero_is_null=False) == []
    assert pd.state.directory.grouping_setting_of(services[0])["id"] == setting_id

    longer = {**config, "config": {"timeout": 600}}
    after = SETTING.update(api, setting_id, plan_of(longer, state), state, "urn:ags")
    assert after["config"]["timeout"] == 600

    other, _ = SETTING.create(api, plan_of({"type": "time", "services": services[1:]}), "urn:o")
    moved = {**longer, "services": services[1:]}
    with pytest.raises(ProviderError) as refused:
        SETTING.update(api, setting_id, plan_of(moved, after), after, "urn:ags")
    assert str(refused.value) == (
        "services[0]: This service is associated to another alert grouping setting: "
        f"Alert grouping setting id={other}"
    )

    SETTING.delete(api, setting_id, after)
    assert SETTING.read(api, setting_id, after) is None
    SETTING.delete(api, setting_id, after)  # a 404 is done


def test_a_refused_create_names_the_setting_holding_the_service(api: Api, services: list[str]):
    first, _ = SETTING.create(
        api, plan_of({"name": "First", "type": "time", "services": services[:1]}), "urn:a"
    )
    with pytest.raises(ProviderError) as refused:
        SETTING.create(
            api, plan_of({"name": "Second", "type": "time", "services": services[:1]}), "urn:b"
        )
    message = str(refused.value)
    assert message.startswith(
        "Error creating PagerDuty alert grouping setting Second: HTTP "
        "response failed with status code 400"
    )
    assert message.endswith(
        "; services[0]: This service is associated to another alert grouping setting: "
        f'Alert grouping setting "First" [id={first}]'
    )
