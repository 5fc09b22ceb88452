"""Incident behaviour behind `/v2/enqueue`: open, merge, acknowledge, resolve.

One alert per incident, keyed by (routing key, dedup key) while open, as PagerDuty
does: a second trigger with the same key adds a log entry to the open incident
(its urgency stays what it was at open; only a service's scheduled action at
support-hours start raises low to high); a resolve closes it; after that the same
key opens a new incident. Resolving or acknowledging an unknown or closed key is
accepted and changes nothing. Not thread-safe: `SandboxState` holds the lock.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from sandbox.clock import iso
from sandbox.ids import new_object_id
from sandbox.urgency import incident_urgency, support_hours_started_between

_ALERT_FIELDS = ("summary", "severity", "source", "component", "group", "class", "custom_details")


class IncidentBook:
    """All incidents, oldest first, and the index of open ones."""

    def __init__(self) -> None:
        self._incidents: list[dict[str, Any]] = []
        self._open: dict[tuple[str, str], dict[str, Any]] = {}

    def apply(
        self,
        event: dict[str, Any],
        dedup_key: str,
        service: dict[str, Any],
        integration_id: str,
        now: datetime,
    ) -> None:
        """Apply a valid event (its routing key owned by `service`) at time `now`."""
        index = (event["routing_key"], dedup_key)
        incident = self._open.get(index)
        action = event["event_action"]
        if action == "trigger":
            if incident is None:
                self._open[index] = self._open_incident(
                    event, dedup_key, service, integration_id, now
                )
            else:
                incident["log_entries"].append(_log("trigger", now, event["payload"]))
        elif incident is not None and action == "acknowledge":
            if incident["status"] == "triggered":
                incident["status"] = "acknowledged"
                incident["acknowledged_at"] = iso(now)
            incident["log_entries"].append(_log("acknowledge", now))
        elif incident is not None and action == "resolve":
            incident["status"] = "resolved"
            incident["resolved_at"] = iso(now)
            incident["alerts"][0]["status"] = "resolved"
            incident["log_entries"].append(_log("resolve", now))
            del self._open[index]

    def run_scheduled_actions(self, services: dict[str, dict[str, Any]], now: datetime) -> None:
        """Raise open low-urgency incidents to high where the service's scheduled action
        `urgency_change` at `support_hours_start` has come since they opened."""
        for incident in self._open.values():
            service = services.get(incident["service_id"])
            if incident["urgency"] != "low" or service is None or not service.get("support_hours"):
                continue
            if not any(_raises_at_start(a) for a in service.get("scheduled_actions") or ()):
                continue
            since = datetime.fromisoformat(incident["created_at"].replace("Z", "+00:00"))
            if support_hours_started_between(service["support_hours"], since, now):
                incident["urgency"] = "high"
                incident["log_entries"].append(_log("urgency_change", now))

    def all(self) -> list[dict[str, Any]]:
        """Deep copies, so callers on other threads never see a half-applied event."""
        return copy.deepcopy(self._incidents)

    def clear(self) -> None:
        self._incidents.clear()
        self._open.clear()

    def _open_incident(
        self,
        event: dict[str, Any],
        dedup_key: str,
        service: dict[str, Any],
        integration_id: str,
        now: datetime,
    ) -> dict[str, Any]:
        payload = event["payload"]
        alert = {name: payload.get(name) for name in _ALERT_FIELDS}
        alert.update(
            custom_details=payload.get("custom_details") or {},
            links=list(event.get("links") or []),
            images=list(event.get("images") or []),
            client=event.get("client"),
            client_url=event.get("client_url"),
            timestamp=payload.get("timestamp") or iso(now),
            status="triggered",
        )
        incident = {
            "id": new_object_id(),
            "type": "incident",
            "incident_number": len(self._incidents) + 1,
            "title": payload["summary"],
            "service_id": service["id"],
            "service_name": service["name"],
            "integration_id": integration_id,
            "urgency": incident_urgency(
                service["incident_urgency_rule"],
                service.get("support_hours"),
                payload["severity"],
                now,
            ),
            "status": "triggered",
            "incident_key": dedup_key,
            "created_at": iso(now),
            "acknowledged_at": None,
            "resolved_at": None,
            "alerts": [alert],
            "log_entries": [_log("trigger", now, payload)],
        }
        self._incidents.append(incident)
        return incident


def _raises_at_start(action: dict[str, Any]) -> bool:
    at = action.get("at") or {}
    return (
        action.get("type") == "urgency_change"
        and action.get("to_urgency") == "high"
        and at.get("name") == "support_hours_start"
    )


def _log(kind: str, now: datetime, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": f"{kind}_log_entry", "created_at": iso(now)}
    if payload is not None:
        entry["summary"] = payload.get("summary")
        entry["severity"] = payload.get("severity")
    return entry
