"""Everything the sandbox knows, behind one lock: the account's objects, incidents, events
(alert events and change events).

The HTTP handlers and the test thread both read and write it, so every public
method takes the lock and returns copies. Objects are stored in PagerDuty's REST
shapes (see `sandbox.directory`); incident behaviour lives in `sandbox.incidents`.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from sandbox.clock import Clock, iso, system_clock
from sandbox.directory import Directory
from sandbox.ids import new_object_id
from sandbox.incidents import IncidentBook


class SandboxState:
    """The sandbox's PagerDuty account. Seed it in-process; the HTTP APIs use it too."""

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.directory = Directory(clock)
        self._incidents = IncidentBook()
        self._events: list[dict[str, Any]] = []
        self._change_requests: list[dict[str, Any]] = []
        self._change_events: list[dict[str, Any]] = []

    # -- seeding (the same objects the REST API creates) --------------------------------

    def create_service(self, name: str, urgency: str = "high", **fields: Any) -> dict[str, Any]:
        """A service; `urgency` is high, low or severity_based unless
        `incident_urgency_rule=` gives a full rule. Other REST fields pass through."""
        with self.lock:
            return copy.deepcopy(self.directory.create_service(name, urgency=urgency, **fields))

    def add_integration(
        self,
        service_id: str,
        name: str = "Events API V2",
        type: str = "events_api_v2_inbound_integration",
        vendor_id: str | None = None,
    ) -> dict[str, Any]:
        """An integration on the service, with a generated 32-character `integration_key`."""
        with self.lock:
            return copy.deepcopy(
                self.directory.add_integration(service_id, name, type=type, vendor_id=vendor_id)
            )

    def add_user(self, email: str, name: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.directory.add_user(email, name, **fields))

    def add_schedule(self, name: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.directory.add_schedule(name, **fields))

    def add_team(self, name: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.directory.add_team(name, **fields))

    def add_vendor(self, name: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.directory.add_vendor(name, **fields))

    def create_escalation_policy(self, name: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.directory.create_escalation_policy(name, **fields))

    def services(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.directory.list("services"))

    # -- the Events API -------------------------------------------------------------------

    def apply_event(self, event: dict[str, Any], dedup_key: str) -> bool:
        """Apply a valid event; False when it is dropped, as PagerDuty drops it: unknown
        routing key, or a disabled service."""
        with self.lock:
            found = self.directory.integration_by_key(event["routing_key"])
            if found is None:
                return False
            integration, service = found
            if service.get("status") == "disabled":
                return False  # PagerDuty opens nothing on a disabled service
            now = self.clock()
            self._incidents.run_scheduled_actions(self._services_by_id(), now)
            self._incidents.apply(event, dedup_key, service, integration["id"], now)
            return True

    def record_event(self, status: int, body: Any) -> None:
        """Log one POST to /v2/enqueue with the status it was answered."""
        with self.lock:
            self._events.append(
                {"status": status, "body": copy.deepcopy(body), "received_at": iso(self.clock())}
            )

    def incidents(
        self, service_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Incidents, oldest first, optionally only one service's or one status's."""
        with self.lock:
            # Scheduled urgency changes happen on PagerDuty's clock; here, when looked at.
            self._incidents.run_scheduled_actions(self._services_by_id(), self.clock())
            found = self._incidents.all()
        return [
            i
            for i in found
            if (service_id is None or i["service_id"] == service_id)
            and (status is None or i["status"] == status)
        ]

    def events(self) -> list[dict[str, Any]]:
        """Every event POSTed to /v2/enqueue, in order: `{"status", "body", "received_at"}`."""
        with self.lock:
            return copy.deepcopy(self._events)

    # -- change events (/v2/change/enqueue): shown with the service, never an incident ----

    def apply_change_event(self, event: dict[str, Any]) -> bool:
        """Keep a valid change event on its service; False when dropped (unknown key)."""
        with self.lock:
            found = self.directory.integration_by_key(event["routing_key"])
            if found is None:
                return False
            integration, service = found
            payload = event["payload"]
            self._change_events.append(
                {
                    "id": new_object_id(),
                    "type": "change_event",
                    "service_id": service["id"],
                    "service_name": service["name"],
                    "integration_id": integration["id"],
                    "summary": payload["summary"],
                    "source": payload.get("source"),
                    "timestamp": payload.get("timestamp") or iso(self.clock()),
                    "custom_details": copy.deepcopy(payload.get("custom_details") or {}),
                    "links": copy.deepcopy(event.get("links") or []),
                    "received_at": iso(self.clock()),
                }
            )
            return True

    def record_change_request(self, status: int, body: Any) -> None:
        """Log one POST to /v2/change/enqueue with the status it was answered."""
        with self.lock:
            self._change_requests.append(
                {"status": status, "body": copy.deepcopy(body), "received_at": iso(self.clock())}
            )

    def change_events(self, service_id: str | None = None) -> list[dict[str, Any]]:
        """Accepted change events, oldest first, optionally only one service's."""
        with self.lock:
            found = copy.deepcopy(self._change_events)
        return [e for e in found if service_id is None or e["service_id"] == service_id]

    def change_requests(self) -> list[dict[str, Any]]:
        """Every POST to /v2/change/enqueue, in order: `{"status", "body", "received_at"}`."""
        with self.lock:
            return copy.deepcopy(self._change_requests)

    def _services_by_id(self) -> dict[str, dict[str, Any]]:
        return {s["id"]: s for s in self.directory.list("services")}

    def reset_activity(self) -> None:
        """Forget incidents and events (alert and change), keep the account's objects."""
        with self.lock:
            self._incidents.clear()
            self._events.clear()
            self._change_requests.clear()
            self._change_events.clear()
