"""Which PagerDuty events one ASM alert becomes, given the check's open alerts (pure).

PagerDuty fixes an incident's urgency when it opens (service urgency
`severity_based`: critical/error high, warning/info low). A check that goes W -> F
must not stay a low-urgency incident, so each check gets two dedup keys, one per
urgency class, and the bridge remembers which of them are open:

- trigger, high class: trigger the high key (merged if that incident is still
  open, a new high-urgency incident if PagerDuty closed it); if the low key is
  open, resolve it *after* the high trigger (someone is paged before the old
  incident closes).
- trigger, low class: always the low key, even while the high key is believed
  open. The bridge never learns that PagerDuty closed an incident (auto-resolve
  timeout, a person resolving it), so a low-class trigger sent to the high key
  could open a *new* high-key incident at low urgency, and a later high-class
  trigger would merge into it and never page high. Only high-class severities
  ever touch the high key.
- resolve: resolve every open key; if none is known open, resolve both (resolves
  are idempotent and PagerDuty drops unknown keys, so this is always safe).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from contract.vocabulary import HIGH_URGENCY_SEVERITIES, MAX_DEDUP_KEY, Action, Urgency

DEDUP_PREFIX = "apica-asm"
# Resolve order when both are open: high first, it is the one paging.
_URGENCY_ORDER: tuple[Urgency, ...] = ("high", "low")


@dataclass(frozen=True)
class Step:
    """One Events API event to send, in order."""

    action: Action
    urgency: Urgency
    dedup_key: str


@dataclass(frozen=True)
class EscalationSteps:
    """The events one alert becomes, and the check's open urgency classes once sent."""

    steps: tuple[Step, ...]
    open_after: frozenset[Urgency]


def urgency_class(pd_severity: str) -> Urgency:
    """The urgency PagerDuty gives an incident opened at this severity."""
    return "high" if pd_severity in HIGH_URGENCY_SEVERITIES else "low"


def dedup_key(route_name: str, check_key: str, urgency: Urgency) -> str:
    """`apica-asm:<route>:<check_key>:<urgency>`, the check part hashed if too long."""
    key = f"{DEDUP_PREFIX}:{route_name}:{check_key}:{urgency}"
    if len(key) <= MAX_DEDUP_KEY:
        return key
    # Long check names would overflow 255 chars; a digest stays stable per check.
    digest = hashlib.sha256(check_key.encode("utf-8")).hexdigest()
    return f"{DEDUP_PREFIX}:{route_name}:sha256-{digest}:{urgency}"


def steps_for(
    route_name: str,
    check_key: str,
    action: Action,
    pd_severity: str,
    open_now: frozenset[Urgency],
) -> EscalationSteps:
    """The events for one alert and the check's open keys once they are delivered."""

    def step(act: Action, urgency: Urgency) -> Step:
        return Step(act, urgency, dedup_key(route_name, check_key, urgency))

    if action == "resolve":
        targets = [u for u in _URGENCY_ORDER if u in open_now] or list(_URGENCY_ORDER)
        return EscalationSteps(tuple(step("resolve", u) for u in targets), frozenset())
    if urgency_class(pd_severity) == "high":
        steps = [step("trigger", "high")]
        if "low" in open_now:
            steps.append(step("resolve", "low"))
        return EscalationSteps(tuple(steps), frozenset({"high"}))
    return EscalationSteps((step("trigger", "low"),), open_now | {"low"})
