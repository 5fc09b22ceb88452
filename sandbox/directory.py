"""The sandbox account's objects, stored in PagerDuty REST API v2 shapes.

Collections are keyed by the REST path segment (`services`, `escalation_policies`,
`users`, ...). This module builds and links objects; it does not validate client
input (the REST layer does) and it is not thread-safe (`SandboxState` locks).
"""

from __future__ import annotations

from typing import Any

from sandbox.clock import Clock, iso
from sandbox.ids import new_integration_key, new_object_id
from sandbox.urgency import constant_rule

KINDS = {
    "services": "service",
    "escalation_policies": "escalation_policy",
    "users": "user",
    "schedules": "schedule",
    "teams": "team",
    "vendors": "vendor",
    "integrations": "integration",
    "alert_grouping_settings": "alert_grouping_setting",
}
# Seeded like a real account's vendor catalogue; "Apica" is the one this product uses.
DEFAULT_VENDORS = ("Apica", "Amazon CloudWatch", "Datadog", "Nagios", "Prometheus")
SERVICE_DEFAULTS: dict[str, Any] = {
    "description": None,
    "status": "active",
    "auto_resolve_timeout": 14400,
    "acknowledgement_timeout": 1800,
    "alert_creation": "create_alerts_and_incidents",
    "alert_grouping_parameters": {"type": None, "config": None},
    "auto_pause_notifications_parameters": {"enabled": False, "timeout": None},
    "support_hours": None,
    "scheduled_actions": [],
    "response_play": None,
}
# Reference types (`service_reference`, ...) -> the collection of the object they name.
REFERENCE_COLLECTIONS = {f"{kind}_reference": collection for collection, kind in KINDS.items()}


class Directory:
    """Objects by collection and id, plus the integration-key index."""

    def __init__(self, clock: Clock, base_url: str = "http://127.0.0.1") -> None:
        self._clock = clock
        self.base_url = base_url
        self._objects: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in KINDS}
        self._by_key: dict[str, str] = {}
        for name in DEFAULT_VENDORS:
            self.add_vendor(name)

    # -- generic -----------------------------------------------------------------

    def get(self, collection: str, object_id: str) -> dict[str, Any] | None:
        return self._objects[collection].get(object_id)

    def list(self, collection: str) -> list[dict[str, Any]]:
        return list(self._objects[collection].values())

    def delete(self, collection: str, object_id: str) -> dict[str, Any] | None:
        found = self._objects[collection].pop(object_id, None)
        if found is not None and collection == "services":
            for ref in found["integrations"]:
                self._forget_integration(ref["id"])
            self._unlink_from_policy(found)
            self.detach_from_grouping(object_id, drop_empty=True)
        if found is not None and collection == "integrations":
            self._forget_integration(object_id, already_popped=found)
        return found

    def rebase(self, base_url: str) -> None:
        """Move every stored URL to `base_url` (the server's port is known only at start)."""
        old, self.base_url = self.base_url, base_url
        for objects in self._objects.values():
            for obj in objects.values():
                _rebase(obj, old, base_url)

    def reference(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": obj["id"],
            "type": f"{KINDS[collection]}_reference",
            "summary": obj.get("summary") or obj.get("name"),
            "self": obj.get("self"),
            "html_url": obj.get("html_url"),
        }

    def refresh_references(self, value: Any) -> Any:
        """`value` (an answer about to be sent) with every reference's `summary`, `self`
        and `html_url` taken from the object it names now: a reference is stored when
        it is made, and the object may have been renamed since."""
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for _, item in items:
            if isinstance(item, dict | list):
                self.refresh_references(item)
        if isinstance(value, dict):
            collection = REFERENCE_COLLECTIONS.get(str(value.get("type")))
            current = self.get(collection, str(value.get("id"))) if collection else None
            if current is not None:
                value.update(
                    summary=current.get("summary") or current.get("name"),
                    self=current.get("self"),
                    html_url=current.get("html_url"),
                )
        return value

    def _store(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj.setdefault("id", new_object_id())
        obj.setdefault("type", KINDS[collection])
        obj.setdefault("summary", obj.get("name"))
        obj["self"] = f"{self.base_url}/{collection}/{obj['id']}"
        obj["html_url"] = f"{self.base_url}/{collection.replace('_', '-')}/{obj['id']}"
        self._objects[collection][obj["id"]] = obj
        return obj

    # -- kinds -------------------------------------------------------------------

    def add_user(self, email: str, name: str, **fields: Any) -> dict[str, Any]:
        user = {"name": name, "email": email, "time_zone": "UTC", "role": "user", **fields}
        return self._store("users", user)

    def add_schedule(self, name: str, **fields: Any) -> dict[str, Any]:
        return self._store("schedules", {"name": name, "time_zone": "UTC", **fields})

    def add_team(self, name: str, **fields: Any) -> dict[str, Any]:
        return self._store("teams", {"name": name, "description": None, **fields})

    def add_vendor(self, name: str, **fields: Any) -> dict[str, Any]:
        vendor = {"name": name, "website_url": None, "description": None, **fields}
        return self._store("vendors", vendor)

    def create_escalation_policy(self, name: str, **fields: Any) -> dict[str, Any]:
        policy = {
            "name": name,
            "description": None,
            "num_loops": 0,
            "on_call_handoff_notifications": "if_has_services",
            "escalation_rules": [],
            "services": [],
            "teams": [],
            **fields,
        }
        return self._store("escalation_policies", policy)

    def default_escalation_policy(self) -> dict[str, Any]:
        """The policy a service seeded without one gets (PagerDuty needs one per service)."""
        for policy in self.list("escalation_policies"):
            if policy["name"] == "Default":
                return policy
        return self.create_escalation_policy("Default")

    def create_service(self, name: str, urgency: str = "high", **fields: Any) -> dict[str, Any]:
        policy_id = fields.pop("escalation_policy_id", None)
        policy = self.get("escalation_policies", policy_id) if policy_id else None
        if policy_id and policy is None:
            raise KeyError(f"no escalation policy {policy_id}")
        policy = policy or self.default_escalation_policy()
        service = {
            "name": name,
            **SERVICE_DEFAULTS,
            "incident_urgency_rule": constant_rule(urgency),
            **fields,
            "escalation_policy": self.reference("escalation_policies", policy),
            "integrations": [],
            "created_at": iso(self._clock()),
        }
        service = self._store("services", service)
        policy["services"].append(self.reference("services", service))
        return service

    def move_service(self, service: dict[str, Any], policy_id: str) -> None:
        """Point `service` at another escalation policy, keeping both sides' links."""
        policy = self._objects["escalation_policies"][policy_id]
        self._unlink_from_policy(service)
        service["escalation_policy"] = self.reference("escalation_policies", policy)
        policy["services"].append(self.reference("services", service))

    def _unlink_from_policy(self, service: dict[str, Any]) -> None:
        old = self._objects["escalation_policies"].get(service["escalation_policy"]["id"])
        if old is not None:
            old["services"] = [r for r in old["services"] if r["id"] != service["id"]]

    def add_integration(
        self,
        service_id: str,
        name: str,
        type: str = "events_api_v2_inbound_integration",
        vendor_id: str | None = None,
    ) -> dict[str, Any]:
        service = self.get("services", service_id)
        if service is None:
            raise KeyError(f"no service {service_id}")
        vendor = self.get("vendors", vendor_id) if vendor_id else None
        if vendor_id and vendor is None:
            raise KeyError(f"no vendor {vendor_id}")
        integration = {
            "name": name,
            "type": type,
            "service": self.reference("services", service),
            "vendor": self.reference("vendors", vendor) if vendor else None,
            "integration_key": new_integration_key(),
            "created_at": iso(self._clock()),
        }
        integration = self._store("integrations", integration)
        # PagerDuty's integration URLs sit under its service.
        nested = f"{self.base_url}/services/{service_id}/integrations/{integration['id']}"
        integration["self"] = integration["html_url"] = nested
        self._by_key[integration["integration_key"]] = integration["id"]
        service["integrations"].append(self.reference("integrations", integration))
        return integration

    def add_alert_grouping_setting(
        self,
        type: str,
        config: dict[str, Any],
        service_ids: list[str],
        name: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A setting grouping alerts of `service_ids` (which must exist) by `type`."""
        now = iso(self._clock())
        setting = {
            "name": name,
            "description": description,
            "type": type,
            "config": config,
            "services": self.service_references(service_ids),
            "created_at": now,
            "updated_at": now,
        }
        return self._store("alert_grouping_settings", setting)

    def service_references(self, service_ids: list[str]) -> list[dict[str, Any]]:
        found = [self._objects["services"].get(i) for i in service_ids]
        missing = [i for i, s in zip(service_ids, found, strict=True) if s is None]
        if missing:
            raise KeyError(f"no service {missing[0]}")
        return [self.reference("services", s) for s in found if s is not None]

    def grouping_setting_of(self, service_id: str) -> dict[str, Any] | None:
        """The alert grouping setting `service_id` belongs to, if any (at most one)."""
        for setting in self._objects["alert_grouping_settings"].values():
            if any(ref["id"] == service_id for ref in setting["services"]):
                return setting
        return None

    def detach_from_grouping(self, service_id: str, drop_empty: bool = False) -> None:
        """Take the service out of its alert grouping setting. With `drop_empty`, a setting
        left without services goes too (PagerDuty deletes it with its last service)."""
        setting = self.grouping_setting_of(service_id)
        if setting is None:
            return
        setting["services"] = [r for r in setting["services"] if r["id"] != service_id]
        if drop_empty and not setting["services"]:
            self._objects["alert_grouping_settings"].pop(setting["id"], None)

    def integration_by_key(self, key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The integration owning routing key `key` and its service, if any."""
        integration_id = self._by_key.get(key)
        if integration_id is None:
            return None
        integration = self._objects["integrations"][integration_id]
        service = self._objects["services"][integration["service"]["id"]]
        return integration, service

    def _forget_integration(
        self, integration_id: str, already_popped: dict[str, Any] | None = None
    ) -> None:
        integration = already_popped or self._objects["integrations"].pop(integration_id, None)
        if integration is None:
            return
        self._by_key.pop(integration["integration_key"], None)
        service = self._objects["services"].get(integration["service"]["id"])
        if service is not None:
            service["integrations"] = [
                r for r in service["integrations"] if r["id"] != integration_id
            ]


def _rebase(value: Any, old: str, new: str) -> None:
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, str) and key in ("self", "html_url") and item.startswith(old):
            value[key] = new + item[len(old) :]
        elif isinstance(item, dict | list):
            _rebase(item, old, new)
