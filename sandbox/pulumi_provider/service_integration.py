"""`pagerduty:index/serviceIntegration:ServiceIntegration`: terraform-provider-pagerduty's
`resource_pagerduty_service_integration.go` (SDKv2, heimweh client).

POST `/services/{service}/integrations` (`type: service_integration` with a vendor,
or the given type; a 400 is retried for 2 minutes), then GET (a 404 retried for 2
minutes); PUT sends the whole body, the stored `integration_key` included, and reads
nothing back; DELETE fails on any error, a 404 too. `service`, `type`, `vendor` and
`emailFilters` are ForceNew: changing one makes a new integration, with a new key.
The key is not marked secret here, as in the real provider; programs wrap it.
"""

from __future__ import annotations

from typing import Any

from sandbox.pulumi_provider.resource_type import (
    Api,
    ProviderError,
    ResourceType,
    call_retrying,
    read_retrying,
    set_value,
    strip_unknowns,
)
from sandbox.pulumi_provider.schema import (
    Failure,
    Schema,
    list_of,
    obj,
    one_of,
    output,
    string,
)

# allowedIntegrationTypes: what `type` may name instead of a vendor.
INTEGRATION_TYPES = (
    "app_event_transform_inbound_integration",
    "aws_cloudwatch_inbound_integration",
    "cloudkick_inbound_integration",
    "event_transformer_api_inbound_integration",
    "events_api_v2_inbound_integration",
    "generic_email_inbound_integration",
    "generic_events_api_inbound_integration",
    "keynote_inbound_integration",
    "nagios_inbound_integration",
    "pingdom_inbound_integration",
    "sql_monitor_inbound_integration",
)
EMAIL_NEEDS_ADDRESS = (
    "integration_email attribute must be set for an integration type "
    "generic_email_inbound_integration"
)
KEY_INPUT_DEPRECATED = (
    "Argument is deprecated. Assignments or updates to this attribute are not supported by "
    "Service Integrations API, it is a read-only value. Input support will be dropped in "
    "upcomming major release"
)
_FILTER_FIELDS = {
    "subjectMode": "subject_mode",
    "subjectRegex": "subject_regex",
    "bodyMode": "body_mode",
    "bodyRegex": "body_regex",
    "fromEmailMode": "from_email_mode",
    "fromEmailRegex": "from_email_regex",
}
_MODES = one_of("always", "match", "no-match")

SCHEMA: Schema = {
    "name": string(),
    "service": string(required=True, force_new=True),
    "type": string(computed=True, force_new=True, validators=(one_of(*INTEGRATION_TYPES),)),
    "vendor": string(computed=True, force_new=True),
    "integrationKey": string(computed=True),
    "integrationEmail": string(computed=True),
    "htmlUrl": output(),
    "emailIncidentCreation": string(computed=True),
    "emailFilterMode": string(computed=True),
    "emailParsingFallback": string(computed=True),
    # Email parsers are not modelled by the stand-in (Check refuses them).
    "emailParsers": list_of(obj({})),
    "emailFilters": list_of(
        obj(
            {
                "id": output(),
                **{
                    name: string(validators=(_MODES,) if name.endswith("Mode") else ())
                    for name in _FILTER_FIELDS
                },
            }
        ),
        computed=True,
        force_new=True,
    ),
}


def integration_body(plan: dict[str, Any]) -> dict[str, Any]:
    """`buildServiceIntegrationStruct` as heimweh marshals it (omitempty fields left out)."""
    plan = strip_unknowns(plan)
    integration: dict[str, Any] = {}
    if set_value(plan.get("name")):
        integration["name"] = plan["name"]
    integration["type"] = set_value(plan.get("type")) or "service_integration"
    integration["service"] = {"id": plan.get("service"), "type": "service"}
    for name, key in (
        ("integrationKey", "integration_key"),
        ("integrationEmail", "integration_email"),
        ("emailIncidentCreation", "email_incident_creation"),
        ("emailFilterMode", "email_filter_mode"),
        ("emailParsingFallback", "email_parsing_fallback"),
    ):
        if set_value(plan.get(name)):
            integration[key] = plan[name]
    if set_value(plan.get("vendor")):
        integration["vendor"] = {"id": plan["vendor"], "type": "vendor"}
    filters = set_value(plan.get("emailFilters"))
    if filters:
        integration["email_filters"] = [
            {
                key: value
                for key, value in (
                    ("id", item.get("id")),
                    *((_FILTER_FIELDS[name], item.get(name)) for name in _FILTER_FIELDS),
                )
                if set_value(value)
            }
            for item in filters
        ]
    if integration["type"] == "generic_email_inbound_integration" and not integration.get(
        "integration_email"
    ):
        raise ProviderError(EMAIL_NEEDS_ADDRESS)
    return {"integration": integration}


def integration_state(integration: dict[str, Any], prior: dict[str, Any]) -> dict[str, Any]:
    """`fetchPagerDutyServiceIntegration`: a vendor integration sets `vendor`, any other
    sets `type`; empty strings in the answer leave the state's value."""
    state = dict(prior)
    state["id"] = integration.get("id")
    state["name"] = integration.get("name") or ""
    vendor = integration.get("vendor")
    if isinstance(vendor, dict):
        state["vendor"] = vendor.get("id")
    else:
        state["type"] = integration.get("type") or ""
    service = integration.get("service")
    if isinstance(service, dict):
        state["service"] = service.get("id")
    for key, name in (
        ("integration_key", "integrationKey"),
        ("integration_email", "integrationEmail"),
        ("email_incident_creation", "emailIncidentCreation"),
        ("email_filter_mode", "emailFilterMode"),
        ("email_parsing_fallback", "emailParsingFallback"),
        ("html_url", "htmlUrl"),
    ):
        if integration.get(key):
            state[name] = integration[key]
    filters = integration.get("email_filters")
    if filters is not None:
        state["emailFilters"] = [
            {
                "id": item.get("id") or "",
                **{n: item.get(k) or "" for n, k in _FILTER_FIELDS.items()},
            }
            for item in filters
        ]
    return state


class ServiceIntegration(ResourceType):
    token = "pagerduty:index/serviceIntegration:ServiceIntegration"
    schema = SCHEMA
    deprecated = {"integrationKey": KEY_INPUT_DEPRECATED}

    def check(self, inputs: dict[str, Any]) -> list[Failure]:
        failures = []
        if inputs.get("type") is not None and inputs.get("vendor") is not None:
            failures.append(Failure("type", '"type": conflicts with vendor'))
            failures.append(Failure("vendor", '"vendor": conflicts with type'))
        if inputs.get("emailParsers"):
            failures.append(
                Failure("emailParsers", "emailParsers are not supported by the stand-in")
            )
        return failures

    def plan_problems(self, plan: dict[str, Any], prior: dict[str, Any] | None) -> list[str]:
        email = plan.get("integrationEmail")
        if plan.get("type") == "generic_email_inbound_integration" and email in (None, ""):
            return [EMAIL_NEEDS_ADDRESS]
        return []

    def create(self, api: Api, plan: dict[str, Any], urn: str) -> tuple[str, dict[str, Any]]:
        body = integration_body(plan)
        service_id = body["integration"]["service"]["id"]

        # A 400 is retried for 2 minutes (the service may still be settling).
        created = call_retrying(
            api.sdkv2,
            api.timing,
            "POST",
            f"/services/{service_id}/integrations",
            120,
            retry=lambda error: error.bad_request,
            body=body,
        )["integration"]
        return self.read_created(api, created["id"], plan)

    def fetch(
        self, api: Api, resource_id: str, prior: dict[str, Any], gone_is_error: bool
    ) -> dict[str, Any] | None:
        path = f"/services/{prior.get('service')}/integrations/{resource_id}"
        answer = read_retrying(api.sdkv2, api.timing, path, 120, gone_is_error)
        return None if answer is None else integration_state(answer["integration"], prior)

    def update(
        self, api: Api, resource_id: str, plan: dict[str, Any], prior: dict[str, Any], urn: str
    ) -> dict[str, Any]:
        body = integration_body(plan)
        service_id = body["integration"]["service"]["id"]
        api.sdkv2.call("PUT", f"/services/{service_id}/integrations/{resource_id}", body=body)
        return {**strip_unknowns(plan), "id": resource_id}

    def delete(self, api: Api, resource_id: str, state: dict[str, Any]) -> None:
        # No not-found handling in the real provider: a 404 fails the delete too.
        api.sdkv2.call("DELETE", f"/services/{state.get('service')}/integrations/{resource_id}")
