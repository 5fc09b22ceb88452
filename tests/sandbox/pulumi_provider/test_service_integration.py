"""ServiceIntegration: the body, the state from a GET, ForceNew, and the REST flow."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.pulumi_provider.plan import changes, planned
from sandbox.pulumi_provider.resource_type import Api, ProviderError
from sandbox.pulumi_provider.rest import RestError
from sandbox.pulumi_provider.schema import Failure, with_defaults
from sandbox.pulumi_provider.service_integration import (
    EMAIL_NEEDS_ADDRESS,
    ServiceIntegration,
    integration_body,
    integration_state,
)
from sandbox.server import PagerDutySandbox
from tests.sandbox.pulumi_provider.conftest import FakeTime, vendor_id

INTEGRATION = ServiceIntegration()


def plan_of(config: dict[str, Any], prior: dict[str, Any] | None = None) -> dict[str, Any]:
    return planned(INTEGRATION.schema, with_defaults(INTEGRATION.schema, config), prior)


@pytest.fixture
def service_id(pd: PagerDutySandbox) -> str:
    return pd.state.create_service(name="Checkout")["id"]


def test_a_vendor_integration_is_sent_as_service_integration():
    body = integration_body(
        plan_of({"name": "Apica-Checkout", "service": "PSVC001", "vendor": "PVEND01"})
    )
    assert body == {
        "integration": {
            "name": "Apica-Checkout",
            "type": "service_integration",
            "service": {"id": "PSVC001", "type": "service"},
            "vendor": {"id": "PVEND01", "type": "vendor"},
        }
    }
    typed = integration_body(
        plan_of({"service": "PSVC001", "type": "events_api_v2_inbound_integration"})
    )
    assert typed["integration"]["type"] == "events_api_v2_inbound_integration"
    with pytest.raises(ProviderError, match=EMAIL_NEEDS_ADDRESS):
        integration_body(plan_of({"service": "P", "type": "generic_email_inbound_integration"}))


def test_the_state_sets_vendor_or_type_never_both():
    answer = {
        "id": "PINT001",
        "name": "Apica-Checkout",
        "type": "events_api_v2_inbound_integration",
        "service": {"id": "PSVC001"},
        "vendor": {"id": "PVEND01"},
        "integration_key": "k" * 32,
        "html_url": "http://x/services/PSVC001/integrations/PINT001",
        "integration_email": "",
    }
    state = integration_state(answer, {"type": ""})
    assert (state["vendor"], state["type"], state["integrationKey"]) == ("PVEND01", "", "k" * 32)
    assert "integrationEmail" not in state
    typed = integration_state({**answer, "vendor": None}, {})
    assert typed["type"] == "events_api_v2_inbound_integration" and "vendor" not in typed


def test_check_refuses_type_with_vendor_and_email_parsers():
    assert INTEGRATION.check(
        {
            "service": "P",
            "type": "nagios_inbound_integration",
            "vendor": "V",
            "emailParsers": [{"action": "trigger"}],
        }
    ) == [
        Failure("type", '"type": conflicts with vendor'),
        Failure("vendor", '"vendor": conflicts with type'),
        Failure("emailParsers", "emailParsers are not supported by the stand-in"),
    ]


def test_create_update_replace_and_delete_on_the_sandbox(
    pd: PagerDutySandbox, api: Api, service_id: str
):
    apica = vendor_id(pd, "Apica")
    config = {"name": "Apica-Checkout", "service": service_id, "vendor": apica}
    integration_id, state = INTEGRATION.create(api, plan_of(config), "urn:int")
    stored = pd.state.directory.get("integrations", integration_id)
    assert state["integrationKey"] == stored["integration_key"]
    assert state["vendor"] == apica and state["htmlUrl"] == stored["html_url"]

    renamed = {**config, "name": "Apica-Checkout-API"}
    plan = plan_of(renamed, state)
    assert [c.name for c in changes(INTEGRATION.schema, plan, state, True)] == ["name"]
    after = INTEGRATION.update(api, integration_id, plan, state, "urn:int")
    assert stored["name"] == "Apica-Checkout-API"
    assert after["integrationKey"] == stored["integration_key"]

    datadog = {**renamed, "vendor": vendor_id(pd, "Datadog")}
    replace = changes(INTEGRATION.schema, plan_of(datadog, after), after, True)
    assert [(c.name, c.replace) for c in replace] == [("vendor", True)]

    INTEGRATION.delete(api, integration_id, after)
    assert INTEGRATION.read(api, integration_id, after) is None
    # The real provider has no not-found handling on delete: a 404 fails it.
    with pytest.raises(RestError) as error:
        INTEGRATION.delete(api, integration_id, after)
    assert error.value.not_found


def test_a_refused_create_is_retried_for_two_minutes(
    api: Api, service_id: str, fake_time: FakeTime
):
    with pytest.raises(RestError, match="Vendor PNOVEND not found"):
        INTEGRATION.create(api, plan_of({"service": service_id, "vendor": "PNOVEND"}), "urn:int")
    assert 110 <= sum(fake_time.sleeps) <= 120
