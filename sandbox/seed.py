"""Seeding the sandbox's account from plain data (a JSON file or `POST /sandbox/seed`).

    {"users": [{"email": "alice@example.com", "name": "Alice"}],
     "schedules": [{"name": "Platform Primary", "time_zone": "Europe/Berlin"}],
     "teams": [{"name": "Platform"}],
     "vendors": [{"name": "Apica Synthetic", "id": "PAPICA1"}],
     "escalation_policies": [{"name": "SRE Escalation"}],
     "services": [{"name": "Legacy Web", "urgency": "high"}]}

Existing objects the stack file refers to (`existing:`, `user:`, `schedule:`) have
to be in the account before the program runs; this is how out-of-process users
(the demo, benchmarks) put them there. Every entry needs a name (users: email too).
"""

from __future__ import annotations

from typing import Any

from sandbox.state import SandboxState

# Order matters: services may name a policy seeded just before them.
KINDS = ("users", "schedules", "teams", "vendors", "escalation_policies", "services")


class SeedError(ValueError):
    """A seed document that cannot be applied; nothing of it was applied."""


def apply_seed(state: SandboxState, doc: Any) -> dict[str, list[dict[str, Any]]]:
    """Create everything `doc` lists; returns the created objects by kind."""
    created: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    with state.lock:
        # Checked whole before anything is created, so a bad seed changes nothing.
        _check(doc, {p["name"] for p in state.directory.list("escalation_policies")})
        for kind in KINDS:
            for entry in doc.get(kind, ()):
                created[kind].append(_create(state, kind, dict(entry)))
    return created


def _create(state: SandboxState, kind: str, entry: dict[str, Any]) -> dict[str, Any]:
    name = entry.pop("name")
    if kind == "users":
        return state.add_user(entry.pop("email"), name, **entry)
    if kind == "schedules":
        return state.add_schedule(name, **entry)
    if kind == "teams":
        return state.add_team(name, **entry)
    if kind == "vendors":
        return state.add_vendor(name, **entry)
    if kind == "escalation_policies":
        return state.create_escalation_policy(name, **entry)
    policy = entry.pop("escalation_policy", None)
    if policy is not None:
        entry["escalation_policy_id"] = _policy_id(state, policy)
    return state.create_service(name, **entry)


def _policy_id(state: SandboxState, name: str) -> str:
    # _check made sure the policy exists by the time services are created.
    return next(p["id"] for p in state.directory.list("escalation_policies") if p["name"] == name)


def _check(doc: Any, existing_policies: set[str]) -> None:
    if not isinstance(doc, dict):
        raise SeedError("a seed document must be a JSON object")
    unknown = sorted(set(doc) - set(KINDS))
    if unknown:
        raise SeedError(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
    policies = {p.get("name") for p in doc.get("escalation_policies", ()) if isinstance(p, dict)}
    for kind in KINDS:
        entries = doc.get(kind, [])
        if not isinstance(entries, list):
            raise SeedError(f"{kind} must be a list")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not entry.get("name"):
                raise SeedError(f"{kind}[{index}] needs a name")
            if kind == "users" and not entry.get("email"):
                raise SeedError(f"users[{index}] needs an email")
            if kind == "services" and entry.get("urgency", "high") not in (
                "high",
                "low",
                "severity_based",
            ):
                raise SeedError(f"services[{index}]: urgency must be high, low or severity_based")
    for index, entry in enumerate(doc.get("services", [])):
        wanted = entry.get("escalation_policy")
        if wanted is not None and wanted not in policies | existing_policies:
            raise SeedError(f"services[{index}]: escalation policy {wanted!r} is not seeded")
