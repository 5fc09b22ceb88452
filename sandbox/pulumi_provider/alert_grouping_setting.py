"""`pagerduty:index/alertGroupingSetting:AlertGroupingSetting`: terraform-provider-pagerduty's
`pagerdutyplugin/resource_pagerduty_alert_grouping_setting.go` (plugin framework,
PagerDuty/go-pagerduty client).

POST (retried for 2 minutes except on a 400; after a 400 the settings already
holding those services are named), then GET (a 404 retried for 2 minutes); an
update first lists `?service_ids[]=...` to refuse services another setting holds,
then PUTs and keeps the PUT's answer; DELETE takes a 404 as done. `config` is sent
whole for its type (`{"timeout": 0}` when a time setting leaves it unset). A change
of `services` that keeps none of the old ones replaces the setting.
"""

from __future__ import annotations

from typing import Any

from sandbox.pulumi_provider.properties import UNKNOWN
from sandbox.pulumi_provider.resource_type import (
    Api,
    ProviderError,
    ResourceType,
    call_retrying,
    delete_unless_gone,
    read_retrying,
    strip_unknowns,
)
from sandbox.pulumi_provider.rest import RestError
from sandbox.pulumi_provider.schema import (
    Failure,
    Schema,
    integer,
    list_of,
    none_of,
    obj,
    one_of,
    set_of,
    string,
)

TYPES = ("content_based", "content_based_intelligent", "intelligent", "time")
CONTENT_TYPES = ("content_based", "content_based_intelligent")

SCHEMA: Schema = {
    "name": string(),
    "description": string(computed=True, default="Managed by Terraform"),
    "type": string(required=True, validators=(one_of(*TYPES),)),
    "services": set_of(string(), required=True, min_items=1),
    # A nested block: left out, the stored config stands (stand-in simplification).
    "config": obj(
        {
            "timeout": integer(computed=True, validators=(none_of(0),)),
            "iagFields": list_of(string(), computed=True),
            "timeWindow": integer(computed=True, validators=(none_of(0),)),
            "aggregate": string(),
            "fields": set_of(string()),
        },
        computed=True,
    ),
}


def setting_body(plan: dict[str, Any]) -> dict[str, Any]:
    """`buildPagerdutyAlertGroupingSetting` as go-pagerduty marshals it."""
    plan = strip_unknowns(plan)
    setting: dict[str, Any] = {}
    if plan.get("id"):
        setting["id"] = plan["id"]
    if plan.get("name"):
        setting["name"] = plan["name"]
    if plan.get("description"):
        setting["description"] = plan["description"]
    kind = plan.get("type") or ""
    if kind:
        setting["type"] = kind
    config = plan.get("config") or {}
    if kind in CONTENT_TYPES:
        setting["config"] = {
            "time_window": config.get("timeWindow") or 0,
            "aggregate": config.get("aggregate") or "",
            "fields": list(config.get("fields") or []),
        }
    elif kind == "intelligent":
        setting["config"] = {
            "time_window": config.get("timeWindow") or 0,
            "iag_fields": list(config.get("iagFields") or []),
        }
    elif kind == "time":
        setting["config"] = {"timeout": config.get("timeout") or 0}
    setting["services"] = [{"id": service_id} for service_id in plan.get("services") or []]
    return {"alert_grouping_setting": setting}


def setting_state(setting: dict[str, Any]) -> dict[str, Any]:
    """`flattenAlertGroupingSetting`: config decoded by type, the other keys null."""
    kind = setting.get("type") or ""
    config = setting.get("config") if isinstance(setting.get("config"), dict) else {}
    shown: dict[str, Any] = {
        "timeout": None,
        "timeWindow": None,
        "aggregate": None,
        "fields": None,
        "iagFields": None,
    }
    if kind in CONTENT_TYPES:
        shown.update(
            timeWindow=config.get("time_window") or 0,
            aggregate=config.get("aggregate") or "",
            fields=list(config.get("fields") or []),
        )
    elif kind == "intelligent":
        shown.update(
            timeWindow=config.get("time_window") or 0,
            iagFields=list(config.get("iag_fields") or []),
        )
    elif kind == "time":
        shown.update(timeout=config.get("timeout") or 0)
    return {
        "id": setting.get("id"),
        "name": setting.get("name") or None,
        "description": setting.get("description") or "",
        "type": kind,
        "config": shown,
        "services": [service.get("id") for service in setting.get("services") or []],
    }


class AlertGroupingSetting(ResourceType):
    token = "pagerduty:index/alertGroupingSetting:AlertGroupingSetting"
    schema = SCHEMA
    zero_is_null = False

    def check(self, inputs: dict[str, Any]) -> list[Failure]:
        """`ValidateConfig`."""
        kind = inputs.get("type")
        if not isinstance(kind, str):
            return []
        config = inputs.get("config") if isinstance(inputs.get("config"), dict) else {}
        services = inputs.get("services")
        if kind == "time" and isinstance(services, list) and len(services) > 1:
            return [
                Failure(
                    "services", f'Setting of type "{kind}" allows for only one service in the array'
                )
            ]
        failures = []
        if kind in CONTENT_TYPES:
            for name in ("fields", "aggregate"):
                if config.get(name) is None:
                    failures.append(Failure(f"config.{name}", f"'{name}' cannot be blank"))
        if kind != "time" and config.get("timeout") is not None:
            failures.append(
                Failure(
                    "config.timeout",
                    f'\'timeout\' is only applicable when type is "time", got "{kind}"',
                )
            )
        return failures

    def adjust_plan(self, plan: dict[str, Any], prior: dict[str, Any] | None) -> dict[str, Any]:
        """`ModifyPlan`: an intelligent setting groups on `summary` unless told otherwise."""
        if plan.get("type") != "intelligent":
            return plan
        config = plan.get("config")
        config = dict(config) if isinstance(config, dict) else {}
        if config.get("iagFields") is None or config.get("iagFields") is UNKNOWN:
            config["iagFields"] = ["summary"]
        return {**plan, "config": config}

    def replaces(self, plan: dict[str, Any], prior: dict[str, Any]) -> list[str]:
        """`checkAlertGroupingSettingServicesRequiresReplace`: no old service kept."""
        new, old = plan.get("services"), prior.get("services") or []
        if not isinstance(new, list) or sorted(map(str, new)) == sorted(map(str, old)):
            return []
        return [] if set(old) & set(new) else ["services"]

    def create(self, api: Api, plan: dict[str, Any], urn: str) -> tuple[str, dict[str, Any]]:
        body = setting_body(plan)

        try:
            created = call_retrying(
                api.framework,
                api.timing,
                "POST",
                "/alert_grouping_settings",
                120,
                retry=lambda error: not error.bad_request,
                body=body,
            )["alert_grouping_setting"]
        except RestError as error:
            name = body["alert_grouping_setting"].get("name", "")
            message = f"Error creating PagerDuty alert grouping setting {name}: {error}"
            if error.bad_request:
                message += "".join(f"; {usage}" for usage in self._reused(api, body, None))
            raise ProviderError(message) from None
        return self.read_created(api, created["id"], plan)

    def fetch(
        self, api: Api, resource_id: str, prior: dict[str, Any], gone_is_error: bool
    ) -> dict[str, Any] | None:
        path = f"/alert_grouping_settings/{resource_id}"
        answer = read_retrying(api.framework, api.timing, path, 120, gone_is_error)
        return None if answer is None else setting_state(answer["alert_grouping_setting"])

    def update(
        self, api: Api, resource_id: str, plan: dict[str, Any], prior: dict[str, Any], urn: str
    ) -> dict[str, Any]:
        body = setting_body({**plan, "id": resource_id})
        reused = self._reused(api, body, resource_id)
        if reused:
            raise ProviderError("; ".join(reused))
        try:
            answer = api.framework.call("PUT", f"/alert_grouping_settings/{resource_id}", body=body)
        except RestError as error:
            if error.not_found:
                raise ProviderError(
                    f"alert grouping setting {resource_id} no longer exists in PagerDuty; run "
                    "`pulumi refresh`"
                ) from None
            raise
        return setting_state(answer["alert_grouping_setting"])

    def _reused(self, api: Api, body: dict[str, Any], own_id: str | None) -> list[str]:
        """`validateServicesReuse`: services of this setting that another setting holds."""
        wanted = [s["id"] for s in body["alert_grouping_setting"]["services"]]
        try:
            listed = api.framework.get(
                "/alert_grouping_settings", [("service_ids[]", sid) for sid in wanted]
            )
        except RestError as error:
            if error.not_found:  # go-pagerduty: no settings at all
                return []
            return [f"Unable to obtain list of alert grouping settings: {error}"]
        problems = []
        for other in listed.get("alert_grouping_settings") or []:
            if other.get("id") == own_id:
                continue
            held = {s.get("id") for s in other.get("services") or []}
            by = (
                f'"{other["name"]}" [id={other["id"]}]'
                if other.get("name")
                else (f"id={other.get('id')}")
            )
            problems += [
                f"services[{index}]: This service is associated to another alert grouping "
                f"setting: Alert grouping setting {by}"
                for index, sid in enumerate(wanted)
                if sid in held
            ]
        return problems

    def delete(self, api: Api, resource_id: str, state: dict[str, Any]) -> None:
        delete_unless_gone(api.framework, f"/alert_grouping_settings/{resource_id}")
