"""Change budgets: `diff --check` blocks a change that touches too much of a stack at once.

octoDNS's safety thresholds, for PagerDuty: a one-line edit of `defaults` can re-point
hundreds of services, and nothing in it is destructive. Pure: two resolved stacks and
their `StackDiff` in, a `BudgetVerdict` out. Three budgets, each a share of what the
old version of the stack has:

* services changed: services whose PagerDuty service, Apica integration or route
  changes, is replaced, renamed or removed (additions change nothing that exists);
* checks re-routed: routed check ids, GUIDs and tags that end up on another route
  (or on none);
* escalation policies changed: policies changed, replaced, renamed or removed.

A budget applies only when the old stack has at least `min_existing` of the things
(so one change in a small stack is never blocked) and trips when the share is more
than its percentage. The new version of the stack file sets the budget
(`change_budget:`) and may allow exceeding it (`allow_mass_change: true`); so may the
flag `--allow-mass-change`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from contract.vocabulary import tag_claim_parts
from infra.diff import StackDiff
from infra.model import ChangeBudget, Stack

BudgetName = Literal["services_changed", "checks_rerouted", "policies_changed"]
#: How each budget reads in messages: (what changes, what it is counted among).
BUDGET_WORDS: dict[BudgetName, tuple[str, str]] = {
    "services_changed": ("services changed", "existing services"),
    "checks_rerouted": ("checks re-routed", "routed checks"),
    "policies_changed": ("escalation policies changed", "existing escalation policies"),
}
FLAG = "--allow-mass-change"
FIELD = "allow_mass_change"

_SERVICE_SUBJECTS = frozenset({"service", "integration", "route"})


@dataclass(frozen=True)
class BudgetCheck:
    """One budget measured: `changed` of `existing`, against `limit` percent."""

    name: BudgetName
    changed: int
    existing: int
    limit: int  # percent
    min_existing: int

    @property
    def applies(self) -> bool:
        return self.existing >= self.min_existing

    @property
    def share(self) -> float:
        """Percent of the existing things that change (0 when there are none)."""
        return 100.0 * self.changed / self.existing if self.existing else 0.0

    @property
    def tripped(self) -> bool:
        # Whole numbers: 30 of 100 is within 30%, 31 is not; no float rounding decides.
        return self.applies and self.changed * 100 > self.limit * self.existing


@dataclass(frozen=True)
class BudgetVerdict:
    """The budgets of one change, and what (if anything) allows exceeding them."""

    checks: tuple[BudgetCheck, ...]
    #: `FIELD` (the new file allows it) or `FLAG`; None when nothing allows a mass change.
    allowed_by: str | None

    @property
    def tripped(self) -> tuple[BudgetCheck, ...]:
        return tuple(check for check in self.checks if check.tripped)

    @property
    def ok(self) -> bool:
        return not self.tripped or self.allowed_by is not None

    @property
    def stale_allow(self) -> bool:
        """The file allows a mass change that this change is not: remove the entry."""
        return self.allowed_by == FIELD and not self.tripped


def check_budget(
    old: Stack | None, new: Stack | None, diff: StackDiff, *, allow_flag: bool = False
) -> BudgetVerdict:
    """Measure `diff` (from `old` to `new`) against the new file's change budget."""
    budget = new.change_budget if new is not None else ChangeBudget()
    old_services = set(old.services) if old else set()
    old_policies = set(old.escalation_policies) if old else set()
    services = _keys_touched(diff, _SERVICE_SUBJECTS, old_services)
    policies = _keys_touched(diff, frozenset({"escalation_policy"}), old_policies)
    before, after = _claims(old), _claims(new)
    rerouted = sum(1 for claim, route in before.items() if after.get(claim) != route)
    checks = (
        BudgetCheck("services_changed", len(services), len(old_services),
                    budget.services_changed, budget.min_existing),
        BudgetCheck("checks_rerouted", rerouted, len(before),
                    budget.checks_rerouted, budget.min_existing),
        BudgetCheck("policies_changed", len(policies), len(old_policies),
                    budget.policies_changed, budget.min_existing),
    )
    allowed_by = None
    if allow_flag:
        allowed_by = FLAG
    elif new is not None and new.allow_mass_change:
        allowed_by = FIELD
    return BudgetVerdict(checks, allowed_by)


def _keys_touched(diff: StackDiff, subjects: Iterable[str], existing: set[str]) -> set[str]:
    """Keys of the old stack that some change of these subjects touches (renames by old key)."""
    return {
        change.old_key or change.key
        for change in diff.changes
        if change.subject in subjects and (change.old_key or change.key) in existing
    }


def _claims(stack: Stack | None) -> dict[tuple[str, object], str]:
    """Every routed check claim -> its route, normalised as the bridge matches claims."""
    claims: dict[tuple[str, object], str] = {}
    for key, service in (stack.services if stack else {}).items():
        integration = service.integration
        if integration is None:
            continue
        for check_id in integration.check_ids:
            claims[("id", check_id)] = key
        for guid in integration.check_guids:
            claims[("guid", guid.casefold())] = key
        for tag in integration.check_tags:
            claims[("tag", tag_claim_parts(tag))] = key
    return claims
