"""Field rules of the REST API subset: what PagerDuty refuses with 400 "Invalid Input Provided".

Each function takes the unwrapped request object (and the directory, for references
and name uniqueness) and returns the human-readable `errors` PagerDuty would list.
Pure: nothing is written here. Messages are PagerDuty's where known ("Name has
already been taken"); the others follow their style.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.directory import Directory

URGENCY_VALUES = ("high", "low", "severity_based")
# PagerDuty computes warning/critical/maintenance itself; clients may only set these.
SETTABLE_STATUSES = ("active", "disabled")
ALERT_CREATION = ("create_incidents", "create_alerts_and_incidents")
GROUPING_TYPES = (None, "time", "intelligent", "content_based")
# 0 asks PagerDuty to pick the recommended timeout (OpenAPI: AutoPauseNotificationsParameters).
AUTO_PAUSE_TIMEOUTS = (None, 0, 120, 180, 300, 600, 900)
ASSIGNMENT_STRATEGIES = ("assign_to_everyone", "round_robin")
TARGET_TYPES = {
    "user_reference": "users",
    "user": "users",
    "schedule_reference": "schedules",
    "schedule": "schedules",
}
INTEGRATION_TYPES = (
    "events_api_v2_inbound_integration",
    "generic_events_api_inbound_integration",
    "generic_email_inbound_integration",
    "aws_cloudwatch_inbound_integration",
    "nagios_inbound_integration",
)
NAMED_TIMES = ("support_hours_start", "support_hours_end")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")


def escalation_policy_errors(
    body: dict[str, Any], directory: Directory, current_id: str | None = None
) -> list[str]:
    errors = name_errors(body, directory, "escalation_policies", current_id)
    rules = body.get("escalation_rules")
    if not isinstance(rules, list) or not rules:
        errors.append("Escalation rules must contain at least one rule")
        rules = []
    for number, rule in enumerate(rules, start=1):
        errors += _rule_errors(rule, number, directory)
    loops = body.get("num_loops", 0)
    if not isinstance(loops, int) or isinstance(loops, bool) or not 0 <= loops <= 9:
        errors.append("Num loops must be an integer between 0 and 9")
    errors += _reference_list_errors(body.get("teams"), "teams", directory, "Team")
    return errors


def service_errors(
    body: dict[str, Any], directory: Directory, current_id: str | None = None
) -> list[str]:
    errors = name_errors(body, directory, "services", current_id)
    policy = body.get("escalation_policy")
    if not isinstance(policy, dict) or not policy.get("id"):
        errors.append("Escalation policy must be specified")
    elif directory.get("escalation_policies", str(policy["id"])) is None:
        errors.append(f"Escalation policy {policy['id']} not found")
    rule = body.get("incident_urgency_rule")
    hours = body.get("support_hours")
    if rule is not None:
        errors += _urgency_rule_errors(rule, hours)
    if hours is not None:
        errors += _support_hours_errors(hours)
    errors += _scheduled_action_errors(body.get("scheduled_actions"), rule)
    for name in ("auto_resolve_timeout", "acknowledgement_timeout"):
        value = body.get(name)
        # PagerDuty: "Setting this field to 0, null (or unset in POST request) will disable".
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            errors.append(f"{_label(name)} must be a positive number of seconds or null")
    if body.get("alert_creation", ALERT_CREATION[1]) not in ALERT_CREATION:
        errors.append("Alert creation must be one of: " + ", ".join(ALERT_CREATION))
    if body.get("status", "active") not in SETTABLE_STATUSES:
        errors.append("Status must be active or disabled")
    errors += _grouping_errors(body.get("alert_grouping_parameters"))
    errors += _auto_pause_errors(body.get("auto_pause_notifications_parameters"))
    errors += _reference_list_errors(body.get("teams"), "teams", directory, "Team")
    return errors


def integration_errors(body: dict[str, Any], directory: Directory) -> list[str]:
    errors = []
    vendor = body.get("vendor")
    kind = body.get("type")
    if vendor is None and kind not in INTEGRATION_TYPES:
        errors.append("Type must be one of: " + ", ".join(INTEGRATION_TYPES))
    if vendor is not None:
        if not isinstance(vendor, dict) or not vendor.get("id"):
            errors.append("Vendor must be a vendor reference with an id")
        elif directory.get("vendors", str(vendor["id"])) is None:
            errors.append(f"Vendor {vendor['id']} not found")
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        errors.append("Name cannot be blank")
    return errors


GROUPING_SETTING_TYPES = ("content_based", "content_based_intelligent", "intelligent", "time")
# Types whose setting may hold only one service: content_based_intelligent (OpenAPI) and
# time (the provider refuses more before sending).
SINGLE_SERVICE_TYPES = ("content_based_intelligent", "time")
AGGREGATES = ("all", "any")


def alert_grouping_setting_errors(
    body: dict[str, Any], directory: Directory, current_id: str | None = None
) -> list[str]:
    """`POST/PUT /alert_grouping_settings`: type, per-type config, services. Seconds
    throughout; 0 means "until resolved" (timeout) or "recommended" (time_window)."""
    errors = []
    for field in ("name", "description"):
        if body.get(field) is not None and not isinstance(body[field], str):
            errors.append(f"{_label(field)} must be a string or null")
    kind = body.get("type")
    if kind not in GROUPING_SETTING_TYPES:
        errors.append("Type must be one of: " + ", ".join(GROUPING_SETTING_TYPES))
    config = body.get("config")
    if not isinstance(config, dict):
        errors.append("Config must be an object")
    elif kind in GROUPING_SETTING_TYPES:
        errors += _grouping_config_errors(kind, config)
    errors += _grouping_services_errors(body.get("services"), kind, directory, current_id)
    return errors


def _grouping_config_errors(kind: str, config: dict[str, Any]) -> list[str]:
    errors = []
    if kind == "time":
        timeout = config.get("timeout", 0)
        if not _is_int(timeout) or not (timeout == 0 or 60 <= timeout <= 86400):
            errors.append("Config timeout must be 0 or 60..86400 seconds")
        return errors
    window = config.get("time_window", 0)
    longest = 86400 if kind == "content_based" else 3600
    if not _is_int(window) or not (window == 0 or 300 <= window <= 3600 or window == longest):
        allowed = "0, 300..3600 or 86400" if kind == "content_based" else "0 or 300..3600"
        errors.append(f"Config time_window must be {allowed} seconds")
    if kind == "intelligent":
        fields = config.get("iag_fields", ["summary"])
        if not _strings(fields):
            errors.append("Config iag_fields must be a list of strings")
        return errors
    if config.get("aggregate") not in AGGREGATES:
        errors.append("Config aggregate must be all or any")
    if not _strings(config.get("fields")) or not config["fields"]:
        errors.append("Config fields must be a non-empty list of strings")
    return errors


def _grouping_services_errors(
    services: Any, kind: Any, directory: Directory, current_id: str | None
) -> list[str]:
    if not isinstance(services, list) or not services:
        return ["Services must be a list of at least one service reference"]
    errors = []
    ids = [s.get("id") if isinstance(s, dict) else None for s in services]
    if kind in SINGLE_SERVICE_TYPES and len(ids) > 1:
        errors.append(f"A setting of type {kind} allows only one service")
    for service_id in ids:
        if not isinstance(service_id, str) or directory.get("services", service_id) is None:
            errors.append(f"Service {service_id} not found")
            continue
        other = directory.grouping_setting_of(service_id)
        if other is not None and other["id"] != current_id:
            errors.append(
                f"Service {service_id} already belongs to alert grouping setting {other['id']}"
            )
    return errors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def name_errors(
    body: dict[str, Any], directory: Directory, collection: str, current_id: str | None
) -> list[str]:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        return ["Name cannot be empty"]
    if len(name) > 255:
        return ["Name is too long (maximum is 255 characters)"]
    for other in directory.list(collection):
        if other["id"] != current_id and other["name"].lower() == name.lower():
            return ["Name has already been taken"]
    return []


def _rule_errors(rule: Any, number: int, directory: Directory) -> list[str]:
    where = f"Escalation rule {number}"
    if not isinstance(rule, dict):
        return [f"{where} must be an object"]
    errors = []
    delay = rule.get("escalation_delay_in_minutes")
    if not isinstance(delay, int) or isinstance(delay, bool) or delay < 1:
        errors.append(f"{where}: escalation delay in minutes must be at least 1")
    targets = rule.get("targets")
    if not isinstance(targets, list) or not targets:
        errors.append(f"{where} must have at least one target")
        targets = []
    for target in targets:
        if not isinstance(target, dict) or target.get("type") not in TARGET_TYPES:
            errors.append(f"{where}: target type must be user_reference or schedule_reference")
        elif directory.get(TARGET_TYPES[target["type"]], str(target.get("id"))) is None:
            errors.append(f"{where}: target {target.get('id')} not found")
    strategy = rule.get("escalation_rule_assignment_strategy")
    if strategy is not None:
        value = strategy.get("type") if isinstance(strategy, dict) else strategy
        if value not in ASSIGNMENT_STRATEGIES:
            errors.append(f"{where}: assignment strategy must be assign_to_everyone or round_robin")
    return errors


def _urgency_rule_errors(rule: Any, hours: Any) -> list[str]:
    if not isinstance(rule, dict):
        return ["Incident urgency rule must be an object"]
    kind = rule.get("type")
    if kind == "constant":
        if rule.get("urgency") not in URGENCY_VALUES:
            return ["Incident urgency rule urgency must be one of: high, low, severity_based"]
        return []
    if kind == "use_support_hours":
        errors = []
        for branch in ("during_support_hours", "outside_support_hours"):
            part = rule.get(branch)
            if not isinstance(part, dict) or part.get("urgency") not in URGENCY_VALUES:
                errors.append(
                    f"Incident urgency rule {branch} must have an urgency of high, low "
                    "or severity_based"
                )
        if hours is None:
            errors.append("Support hours must be specified when the urgency rule uses them")
        return errors
    return ["Incident urgency rule type must be constant or use_support_hours"]


def _support_hours_errors(hours: Any) -> list[str]:
    if not isinstance(hours, dict):
        return ["Support hours must be an object"]
    errors = []
    if hours.get("type") != "fixed_time_per_day":
        errors.append("Support hours type must be fixed_time_per_day")
    try:
        ZoneInfo(str(hours.get("time_zone")))
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(
            f"Support hours time zone {hours.get('time_zone')!r} is not a valid time zone"
        )
    days = hours.get("days_of_week")
    if (
        not isinstance(days, list)
        or not days
        or any(not isinstance(d, int) or not 1 <= d <= 7 for d in days)
    ):
        errors.append("Support hours days of week must be a list of 1 (Monday) to 7 (Sunday)")
    start, end = hours.get("start_time"), hours.get("end_time")
    for label, value in (("start", start), ("end", end)):
        if not isinstance(value, str) or not _TIME.match(value):
            errors.append(f"Support hours {label} time must look like HH:MM:SS")
    both_valid = all(isinstance(v, str) and _TIME.match(v) for v in (start, end))
    if both_valid and start >= end:
        errors.append("Support hours start time must be before end time")
    return errors


def _scheduled_action_errors(actions: Any, rule: Any) -> list[str]:
    if not actions:
        return []
    if not isinstance(actions, list):
        return ["Scheduled actions must be a list"]
    errors = []
    if not isinstance(rule, dict) or rule.get("type") != "use_support_hours":
        errors.append("Scheduled actions require an urgency rule that uses support hours")
    for action in actions:
        at = action.get("at") if isinstance(action, dict) else None
        if (
            not isinstance(action, dict)
            or action.get("type") != "urgency_change"
            or action.get("to_urgency") != "high"
            or not isinstance(at, dict)
            or at.get("type") != "named_time"
            or at.get("name") not in NAMED_TIMES
        ):
            errors.append(
                "Scheduled action must be an urgency_change to high at a named_time "
                "(support_hours_start or support_hours_end)"
            )
    return errors


def _grouping_errors(params: Any) -> list[str]:
    if params is None:
        return []
    if not isinstance(params, dict) or params.get("type") not in GROUPING_TYPES:
        return ["Alert grouping parameters type must be time, intelligent, content_based or null"]
    config = params.get("config") or {}
    if params.get("type") == "time" and not isinstance(config.get("timeout", 0), int):
        return ["Alert grouping parameters config timeout must be a number of minutes"]
    return []


def _auto_pause_errors(params: Any) -> list[str]:
    if params is None:
        return []
    if not isinstance(params, dict) or not isinstance(params.get("enabled", False), bool):
        return ["Auto pause notifications parameters must have a boolean enabled"]
    if params.get("timeout") not in AUTO_PAUSE_TIMEOUTS:
        return ["Auto pause notifications timeout must be one of 0, 120, 180, 300, 600, 900"]
    return []


def _reference_list_errors(
    refs: Any, collection: str, directory: Directory, label: str
) -> list[str]:
    if refs is None:
        return []
    if not isinstance(refs, list):
        return [f"{label}s must be a list of references"]
    return [
        f"{label} {ref.get('id') if isinstance(ref, dict) else ref} not found"
        for ref in refs
        if not isinstance(ref, dict) or directory.get(collection, str(ref.get("id"))) is None
    ]


def _label(field: str) -> str:
    return field.replace("_", " ").capitalize()
