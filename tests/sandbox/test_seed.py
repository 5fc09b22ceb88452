"""Seeding the account from plain data."""

from __future__ import annotations

import pytest

from sandbox.clock import ManualClock
from sandbox.seed import SeedError, apply_seed
from sandbox.state import SandboxState

SEED = {
    "users": [{"email": "alice@example.com", "name": "Alice"}],
    "schedules": [{"name": "Platform Primary", "time_zone": "Europe/Berlin"}],
    "teams": [{"name": "Platform"}],
    "vendors": [{"name": "Apica Synthetic", "id": "PAPICA1"}],
    "escalation_policies": [{"name": "SRE Escalation"}],
    "services": [{"name": "Legacy Web", "urgency": "low", "escalation_policy": "SRE Escalation"}],
}


def test_everything_listed_is_created_and_linked():
    state = SandboxState(ManualClock())
    created = apply_seed(state, SEED)
    assert {kind: len(objects) for kind, objects in created.items()} == {
        "users": 1,
        "schedules": 1,
        "teams": 1,
        "vendors": 1,
        "escalation_policies": 1,
        "services": 1,
    }
    assert state.directory.get("vendors", "PAPICA1")["name"] == "Apica Synthetic"
    [service] = state.services()
    assert service["escalation_policy"]["summary"] == "SRE Escalation"
    assert service["incident_urgency_rule"] == {"type": "constant", "urgency": "low"}


def test_a_seed_must_be_an_object():
    with pytest.raises(SeedError, match="must be a JSON object"):
        apply_seed(SandboxState(ManualClock()), [])


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"robots": []}, r"unknown kinds \['robots'\]"),
        ({"users": {}}, "users must be a list"),
        ({"users": [{"name": "No Mail"}]}, r"users\[0\] needs an email"),
        ({"schedules": [{}]}, r"schedules\[0\] needs a name"),
        ({"services": [{"name": "S", "urgency": "loud"}]}, "urgency must be high, low or"),
        ({"services": [{"name": "S", "escalation_policy": "Nope"}]}, "'Nope' is not seeded"),
    ],
)
def test_bad_seeds_change_nothing(doc, message):
    state = SandboxState(ManualClock())
    with pytest.raises(SeedError, match=message):
        # The valid team listed first must not be created either.
        apply_seed(state, {"teams": [{"name": "T"}], **doc})
    assert state.directory.list("teams") == []
