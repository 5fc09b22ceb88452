"""`pagerduty:index/service:Service`: terraform-provider-pagerduty's
`resource_pagerduty_service.go` (SDKv2, heimweh client).

POST, wait 0.5 s, then GET with `include[]=auto_pause_notifications_parameters`
(retried for 2 minutes on anything but 400, a 404 too); PUT sends the whole body,
then the same GET; DELETE takes a 404 as done, then waits 1 s. The read sets only
what the answer has: a field PagerDuty leaves out keeps its value in state (so
support hours a PUT could not clear stay, the perpetual diff the real provider has).
Nothing replaces a service.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.pulumi_provider.resource_type import (
    Api,
    ProviderError,
    ResourceType,
    delete_unless_gone,
    known,
    read_retrying,
    set_value,
    strip_unknowns,
)
from sandbox.pulumi_provider.rest import RestError
from sandbox.pulumi_provider.schema import (
    Failure,
    Schema,
    allowed_name,
    boolean,
    int_in,
    integer,
    list_of,
    obj,
    one_of,
    output,
    string,
)

INCLUDE = [("include[]", "auto_pause_notifications_parameters")]


def _time_window(value: Any, _tf_name: str) -> list[str]:
    """`validateTimeWindow`."""
    if 300 <= value <= 3600 or value == 86400:
        return []
    return [
        "Alert grouping time window value must be between 300 and 3600 or exactly 86400(86400 "
        f"is supported only for content-based alert grouping), current setting is {value}"
    ]


def _time_zone(value: Any, _tf_name: str) -> list[str]:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return [
            f'"{value}" is a not valid input. Please refer to the list of allowed Time Zone '
            "values at https://developer.pagerduty.com/docs/1afe25e9c94cb-types#time-zone"
        ]
    return []


_URGENCY_TYPE = obj({"type": string(), "urgency": string()})

SCHEMA: Schema = {
    "name": string(validators=(allowed_name(special_chars=False),)),
    "htmlUrl": output(),
    "description": string(default="Managed by Pulumi"),
    "alertCreation": string(
        suppress_diff=True,
        validators=(one_of("create_alerts_and_incidents", "create_incidents"),),
    ),
    "alertGrouping": string(computed=True, validators=(one_of("time", "intelligent", "rules"),)),
    "alertGroupingTimeout": string(computed=True),
    "alertGroupingParameters": obj(
        {
            "type": string(validators=(one_of("time", "intelligent", "content_based"),)),
            "config": obj(
                {
                    "timeout": integer(),
                    "fields": list_of(string()),
                    "aggregate": string(validators=(one_of("all", "any"),)),
                    "timeWindow": integer(computed=True, validators=(_time_window,)),
                },
                computed=True,
            ),
        }
    ),
    "autoPauseNotificationsParameters": obj(
        {
            "enabled": boolean(computed=True),
            "timeout": integer(
                computed=True, tf_name="timeout", validators=(int_in(120, 180, 300, 600, 900),)
            ),
        },
        computed=True,
    ),
    "autoResolveTimeout": string(default="14400"),
    "lastIncidentTimestamp": output(),
    "createdAt": output(),
    "status": output(),
    "acknowledgementTimeout": string(default="1800"),
    "escalationPolicy": string(required=True),
    "incidentUrgencyRule": obj(
        {
            "type": string(required=True),
            "urgency": string(),
            "duringSupportHours": _URGENCY_TYPE,
            "outsideSupportHours": _URGENCY_TYPE,
        },
        computed=True,
    ),
    "supportHours": obj(
        {
            "type": string(),
            "timeZone": string(validators=(_time_zone,)),
            "startTime": string(),
            "endTime": string(),
            "daysOfWeeks": list_of(integer(), max_items=7),
        }
    ),
    "scheduledActions": list_of(
        obj(
            {
                "type": string(),
                "toUrgency": string(),
                "ats": list_of(obj({"type": string(), "name": string()})),
            }
        )
    ),
    "type": output(),
    "responsePlay": string(computed=True),
}

DEPRECATED = {
    "alertGrouping": "Use `alertGroupingParameters.type`",
    "alertGroupingTimeout": "Use `alertGroupingParameters.config.timeout`",
    "alertGroupingParameters": "Use a resource pagerduty_alert_grouping_setting instead.",
}
GROUPING_REMOVED_WARNING = (
    "Deleting alert_grouping_parameters might delete an alert_grouping_setting depending on it, "
    "please run terraform plan and apply again after these changes are applied in order to "
    "ensure Alert Grouping Settings are up and running"
)


def service_body(plan: dict[str, Any], prior: dict[str, Any] | None) -> dict[str, Any]:
    """`buildServiceStruct` as heimweh marshals it: `auto_resolve_timeout`,
    `acknowledgement_timeout` and `response_play` always present (no omitempty)."""
    plan = strip_unknowns(plan)
    prior = prior or {}
    service: dict[str, Any] = {"name": plan.get("name")}
    if set_value(plan.get("description")):
        service["description"] = plan["description"]
    service["auto_resolve_timeout"] = _seconds(plan.get("autoResolveTimeout"))
    service["acknowledgement_timeout"] = _seconds(plan.get("acknowledgementTimeout"))
    if set_value(plan.get("alertCreation")):
        service["alert_creation"] = plan["alertCreation"]
    grouping = set_value(plan.get("alertGrouping"))
    if grouping and grouping not in ("content_based_intelligent", "rules"):
        service["alert_grouping"] = grouping
    timeout = _seconds(plan.get("alertGroupingTimeout"))
    if timeout is not None:
        service["alert_grouping_timeout"] = timeout
    parameters = plan.get("alertGroupingParameters")
    if isinstance(parameters, dict):
        service["alert_grouping_parameters"] = _grouping_body(parameters)
    elif any(
        plan.get(name) != prior.get(name)
        for name in ("alertGrouping", "alertGroupingTimeout", "alertGroupingParameters")
    ):
        service["alert_grouping_parameters"] = {"type": None}
    pause = set_value(plan.get("autoPauseNotificationsParameters"))
    if pause:
        enabled = bool(pause.get("enabled"))
        service["auto_pause_notifications_parameters"] = {
            "enabled": enabled,
            "timeout": (pause.get("timeout") or 0) if enabled else None,
        }
    if set_value(plan.get("escalationPolicy")):
        service["escalation_policy"] = {
            "id": plan["escalationPolicy"],
            "type": "escalation_policy_reference",
        }
    rule = set_value(plan.get("incidentUrgencyRule"))
    if rule:
        service["incident_urgency_rule"] = _urgency_rule_body(rule)
        if rule.get("type") == "use_support_hours":
            # make([]*ScheduledAction, 1): one nil action unless actions are configured.
            service["scheduled_actions"] = [None]
    actions = set_value(plan.get("scheduledActions"))
    if actions:
        service["scheduled_actions"] = [_action_body(action) for action in actions]
    hours = set_value(plan.get("supportHours"))
    if hours:
        service["support_hours"] = _omit_empty(
            {
                "type": hours.get("type"),
                "time_zone": hours.get("timeZone"),
                "start_time": hours.get("startTime"),
                "end_time": hours.get("endTime"),
                "days_of_week": hours.get("daysOfWeeks"),
            }
        )
    play = set_value(plan.get("responsePlay"))
    service["response_play"] = (
        {"id": play, "type": "response_play_reference"} if play and play != "null" else None
    )
    return {"service": service}


def _seconds(value: Any) -> int | None:
    """A timeout string ("null" disables it) as the API's seconds."""
    value = set_value(value)
    if value is None or value == "null":
        return None
    try:
        return int(value)
    except ValueError:
        raise ProviderError(f'strconv.Atoi: parsing "{value}": invalid syntax') from None


def _grouping_body(parameters: dict[str, Any]) -> dict[str, Any]:
    """`expandAlertGroupingParameters`: `type` always sent (null when unset), config by type."""
    kind = set_value(parameters.get("type"))
    body: dict[str, Any] = {"type": kind}
    config = parameters.get("config")
    if isinstance(config, dict):
        sent: dict[str, Any] = {}
        if kind == "time":
            sent["timeout"] = config.get("timeout") or 0
        if kind in ("intelligent", "content_based"):
            sent["time_window"] = config.get("timeWindow") or 0
        if kind == "content_based":
            if config.get("fields"):
                sent["fields"] = list(config["fields"])
            sent["aggregate"] = config.get("aggregate") or ""
        body["config"] = sent
    return body


def _urgency_rule_body(rule: dict[str, Any]) -> dict[str, Any]:
    body = _omit_empty({"type": rule.get("type"), "urgency": rule.get("urgency")})
    for branch, key in (
        ("duringSupportHours", "during_support_hours"),
        ("outsideSupportHours", "outside_support_hours"),
    ):
        part = rule.get(branch)
        if isinstance(part, dict):
            body[key] = _omit_empty({"type": part.get("type"), "urgency": part.get("urgency")})
    return body


def _action_body(action: dict[str, Any]) -> dict[str, Any]:
    body = _omit_empty({"type": action.get("type"), "to_urgency": action.get("toUrgency")})
    ats = action.get("ats") or []
    if ats and isinstance(ats[0], dict):
        body["at"] = {"type": ats[0].get("type") or "", "name": ats[0].get("name") or ""}
    return body


def _omit_empty(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if set_value(value) is not None}


def service_state(service: dict[str, Any], prior: dict[str, Any]) -> dict[str, Any]:
    """`flattenService`: what a GET sets over `prior` (the plan, or the old state)."""
    policy = service.get("escalation_policy")
    if not isinstance(policy, dict):
        raise ProviderError(f"service {service.get('id')}: the API answered no escalation_policy")
    state = dict(prior)
    state.update(
        {
            "id": service.get("id"),
            "name": service.get("name") or "",
            "type": service.get("type") or "",
            "htmlUrl": service.get("html_url") or "",
            "createdAt": service.get("created_at") or "",
            "escalationPolicy": policy.get("id"),
            "description": service.get("description") or "",
            "alertCreation": service.get("alert_creation") or "",
            "autoResolveTimeout": _timeout_text(service.get("auto_resolve_timeout")),
            "acknowledgementTimeout": _timeout_text(service.get("acknowledgement_timeout")),
            "alertGroupingTimeout": _timeout_text(service.get("alert_grouping_timeout")),
        }
    )
    grouping = service.get("alert_grouping")
    if grouping:
        state["alertGrouping"] = None if grouping == "rules" else grouping
    parameters = service.get("alert_grouping_parameters")
    if (
        parameters is not None
        and not set_value(state.get("alertGrouping"))
        and set_value(prior.get("alertGroupingParameters")) is not None
    ):
        state["alertGroupingParameters"] = _grouping_state(parameters)
    pause = service.get("auto_pause_notifications_parameters")
    if pause is not None:
        enabled = bool(pause.get("enabled"))
        timeout = pause.get("timeout")
        if not enabled:
            # Disabled with no timeout shows as 120; disabled with one, as Go's zero.
            timeout = 120 if timeout is None else 0
        state["autoPauseNotificationsParameters"] = {"enabled": enabled, "timeout": timeout}
    rule = service.get("incident_urgency_rule")
    if rule is not None:
        state["incidentUrgencyRule"] = _urgency_rule_state(rule)
    hours = service.get("support_hours")
    if hours is not None:
        state["supportHours"] = _omit_empty(
            {
                "type": hours.get("type"),
                "timeZone": hours.get("time_zone"),
                "startTime": hours.get("start_time"),
                "endTime": hours.get("end_time"),
                "daysOfWeeks": hours.get("days_of_week"),
            }
        )
    actions = service.get("scheduled_actions")
    if actions is not None:
        state["scheduledActions"] = [_action_state(service, action) for action in actions]
    play = service.get("response_play")
    if isinstance(play, dict):
        state["responsePlay"] = play.get("id")
    return state


def _timeout_text(seconds: Any) -> str:
    return "null" if seconds is None else str(seconds)


def _grouping_state(parameters: dict[str, Any]) -> dict[str, Any]:
    kind, config = parameters.get("type"), parameters.get("config")
    if kind is None and config is None:
        return {}
    state: dict[str, Any] = {"type": kind or "", "config": None}
    if isinstance(config, dict):
        state["config"] = {
            "aggregate": config.get("aggregate"),
            "fields": config.get("fields"),
            "timeout": config.get("timeout"),
            "timeWindow": config.get("time_window"),
        }
    return state


def _urgency_rule_state(rule: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {"type": rule.get("type") or "", "urgency": rule.get("urgency") or ""}
    for key, branch in (
        ("during_support_hours", "duringSupportHours"),
        ("outside_support_hours", "outsideSupportHours"),
    ):
        part = rule.get(key)
        if isinstance(part, dict):
            state[branch] = {"type": part.get("type") or "", "urgency": part.get("urgency") or ""}
    return state


def _action_state(service: dict[str, Any], action: Any) -> dict[str, Any]:
    at = action.get("at") if isinstance(action, dict) else None
    if not isinstance(at, dict):
        # The real provider dereferences `at` here and crashes; say what it tripped on.
        raise ProviderError(
            f"service {service.get('id')}: a scheduled action without `at` in the API's answer"
        )
    return {
        "type": action.get("type") or "",
        "toUrgency": action.get("to_urgency") or "",
        "ats": [{"type": at.get("type") or "", "name": at.get("name") or ""}],
    }


def urgency_problems(plan: dict[str, Any]) -> list[str]:
    """`customizePagerDutyServiceDiff`: what fails the plan of a service."""
    problems = []
    rule = known(plan.get("incidentUrgencyRule"))
    kind = rule.get("type") if isinstance(rule, dict) else None
    if kind == "use_support_hours" and set_value(rule.get("urgency")):  # type: ignore[union-attr]
        problems.append(
            "general urgency cannot be set for a use_support_hours incident urgency rule type"
        )
    if kind == "use_support_hours" and not isinstance(known(plan.get("supportHours")), dict):
        problems.append(
            "when using type = use_support_hours in incident_urgency_rule you must specify "
            "exactly one (otherwise optional) support_hours block"
        )
    parameters = known(plan.get("alertGroupingParameters"))
    if isinstance(parameters, dict) and isinstance(parameters.get("type"), str):
        problems += _grouping_problems(parameters["type"], known(parameters.get("config")) or {})
    return problems


def _grouping_problems(kind: str, config: dict[str, Any]) -> list[str]:
    aggregate = known(config.get("aggregate")) or ""
    fields = known(config.get("fields")) or []
    timeout = known(config.get("timeout")) or 0
    window = known(config.get("timeWindow")) or 0
    if kind == "content_based" and (not aggregate or not fields):
        return [
            'When using Alert grouping parameters configuration of type "content_based" is in '
            'use, attributes "aggregate" and "fields" are required'
        ]
    if window == 86400 and kind and kind != "content_based":
        return [
            'Alert grouping parameters configuration attribute "time_window" with a value of '
            '86400 is only supported by "content-based" type Alert Grouping'
        ]
    if (aggregate or fields) and kind and kind != "content_based":
        return [
            'Alert grouping parameters configuration attributes "aggregate" and "fields" are '
            'only supported by "content_based" type Alert Grouping'
        ]
    if timeout > 0 and kind and kind != "time":
        return [
            'Alert grouping parameters configuration attribute "timeout" is only supported by '
            '"time" type Alert Grouping'
        ]
    if window > 300 and kind and kind not in ("intelligent", "content_based"):
        return [
            'Alert grouping parameters configuration attribute "time_window" is only supported '
            'by "intelligent" and "content-based" type Alert Grouping'
        ]
    return []


class Service(ResourceType):
    token = "pagerduty:index/service:Service"
    schema = SCHEMA
    deprecated = DEPRECATED

    def check(self, inputs: dict[str, Any]) -> list[Failure]:
        if inputs.get("alertGroupingParameters") is None:
            return []
        return [
            Failure(name, f'"{name}": conflicts with alertGroupingParameters')
            for name in ("alertGrouping", "alertGroupingTimeout")
            if inputs.get(name) is not None
        ]

    def plan_problems(self, plan: dict[str, Any], prior: dict[str, Any] | None) -> list[str]:
        return urgency_problems(plan)

    def create(self, api: Api, plan: dict[str, Any], urn: str) -> tuple[str, dict[str, Any]]:
        created = api.sdkv2.call("POST", "/services", body=service_body(plan, None))["service"]
        # "We wait for internal subsystem to sync."
        api.timing.sleep(0.5)
        return self.read_created(api, created["id"], plan)

    def fetch(
        self, api: Api, resource_id: str, prior: dict[str, Any], gone_is_error: bool
    ) -> dict[str, Any] | None:
        path = f"/services/{resource_id}"
        answer = read_retrying(api.sdkv2, api.timing, path, 120, gone_is_error, INCLUDE)
        return None if answer is None else service_state(answer["service"], prior)

    def update(
        self, api: Api, resource_id: str, plan: dict[str, Any], prior: dict[str, Any], urn: str
    ) -> dict[str, Any]:
        try:
            api.sdkv2.call("PUT", f"/services/{resource_id}", body=service_body(plan, prior))
        except RestError as error:
            if error.not_found:
                raise ProviderError(
                    f"service {resource_id} no longer exists in PagerDuty; run `pulumi refresh`"
                ) from None
            raise
        if isinstance(prior.get("alertGroupingParameters"), dict) and not isinstance(
            plan.get("alertGroupingParameters"), dict
        ):
            api.warn(urn, GROUPING_REMOVED_WARNING)
        state = self.fetch(api, resource_id, strip_unknowns(plan), gone_is_error=False)
        if state is None:
            raise ProviderError(f"service {resource_id} disappeared while it was being updated")
        return state

    def delete(self, api: Api, resource_id: str, state: dict[str, Any]) -> None:
        delete_unless_gone(api.sdkv2, f"/services/{resource_id}")
        api.timing.sleep(1.0)  # "giving the API time to catch up"
