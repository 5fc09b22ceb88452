"""infra.change_budget: real stack texts, loaded by the real loader, measured against budgets."""

from __future__ import annotations

import pytest

from infra.change_budget import FIELD, FLAG, BudgetCheck, BudgetVerdict, check_budget
from infra.diff import diff_stacks
from infra.model import Stack
from infra.validate import parse_stack

from .conftest import many_services_text as stack_text


def load(text: str) -> Stack:
    return parse_stack(text, "stack.yaml")


def verdict(old: str | None, new: str | None, *, flag: bool = False) -> BudgetVerdict:
    before = load(old) if old is not None else None
    after = load(new) if new is not None else None
    return check_budget(before, after, diff_stacks(before, after), allow_flag=flag)


def measured(result: BudgetVerdict) -> dict[str, tuple[int, int, bool]]:
    return {c.name: (c.changed, c.existing, c.tripped) for c in result.checks}


def test_a_one_line_defaults_change_that_repoints_every_service_is_blocked() -> None:
    result = verdict(stack_text(300), stack_text(300, policy="night"))
    assert measured(result) == {
        "services_changed": (300, 300, True),
        "checks_rerouted": (0, 300, False),
        "policies_changed": (0, 2, False),
    }
    assert (result.ok, result.allowed_by) == (False, None)


def test_changes_within_the_budget_pass() -> None:
    old = stack_text(20)
    new = old.replace("    name: Service 3\n", "    name: Service 3\n    urgency: high\n")
    result = verdict(old, new)
    assert measured(result)["services_changed"] == (1, 20, False)
    assert result.ok and not result.stale_allow


@pytest.mark.parametrize(
    ("changed", "tripped"),
    [(3, False), (4, True)],  # 3 of 10 is 30%, within; 4 is more
)
def test_the_budget_is_a_share_of_the_existing_services(changed: int, tripped: bool) -> None:
    old = stack_text(10)
    new = old
    for index in range(changed):
        new = new.replace(f"name: Service {index}\n", f"name: Service {index} (renamed)\n")
    assert verdict(old, new).checks[0].tripped is tripped


def test_small_stacks_are_never_blocked() -> None:
    result = verdict(stack_text(9), stack_text(9, policy="night"))
    assert measured(result)["services_changed"] == (9, 9, False)
    assert not result.checks[0].applies and result.ok


def test_checks_moved_to_another_route_count_as_rerouted() -> None:
    old = stack_text(10)
    # Checks 0-3 all go to s9: four of ten checks re-routed (40% > 30%).
    new = old
    for index in range(4):
        new = new.replace(f"checks: {{ids: [{index}]}}", "checks: {}")
    new = new.replace("checks: {ids: [9]}", "checks: {ids: [9, 0, 1, 2, 3]}")
    result = verdict(old, new)
    assert measured(result)["checks_rerouted"] == (4, 10, True)


def test_removed_and_renamed_routes_reroute_their_checks() -> None:
    old = stack_text(10)
    new = old.replace("  s0:\n", "  first:\n").replace("  s1:\n    name: Service 1\n", "")
    new = new.replace("    integration: {checks: {ids: [1]}}\n", "", 1)
    result = verdict(old, new)
    assert measured(result)["checks_rerouted"] == (2, 10, False)
    assert measured(result)["services_changed"] == (2, 10, False)


def test_added_services_change_nothing_that_exists() -> None:
    result = verdict(stack_text(10), stack_text(40))
    assert measured(result)["services_changed"] == (0, 10, False)
    assert result.ok


def test_a_new_stack_file_has_nothing_to_budget() -> None:
    result = verdict(None, stack_text(50))
    assert all(not check.applies for check in result.checks)


def test_policies_budget() -> None:
    policies = "".join(
        f"  p{i}:\n    name: P{i}\n"
        "    rules: [{delay: 30m, targets: [{user: a@example.com}]}]\n"
        for i in range(10)
    )
    old = stack_text(1, checks=False).replace(
        "escalation_policies:\n", "escalation_policies:\n" + policies
    )
    new = old
    for index in range(4):
        new = new.replace(f"    name: P{index}\n", f"    name: P{index}\n    loops: 2\n")
    result = verdict(old, new)
    assert measured(result)["policies_changed"] == (4, 12, True)


def test_the_new_file_sets_the_budget() -> None:
    tail = "change_budget: {services_changed: 100%, min_existing: 3}\n"
    result = verdict(stack_text(300), stack_text(300, policy="night", tail=tail))
    assert result.ok and result.checks[0].limit == 100
    tight = "change_budget: {min_existing: 3}\n"
    strict = verdict(stack_text(3), stack_text(3, policy="night", tail=tight))
    assert measured(strict)["services_changed"] == (3, 3, True)


def test_allowed_by_the_file_or_the_flag() -> None:
    old, new = stack_text(300), stack_text(300, policy="night")
    by_file = verdict(old, stack_text(300, policy="night", tail="allow_mass_change: true\n"))
    assert (by_file.ok, by_file.allowed_by, by_file.stale_allow) == (True, FIELD, False)
    by_flag = verdict(old, new, flag=True)
    assert (by_flag.ok, by_flag.allowed_by) == (True, FLAG)


def test_an_allowance_nothing_needs_is_stale() -> None:
    result = verdict(stack_text(10), stack_text(10, tail="allow_mass_change: true\n"))
    assert result.stale_allow and result.ok


def test_shares_are_exact() -> None:
    check = BudgetCheck("services_changed", 1, 3, 33, 1)
    assert check.tripped  # 33.33...% > 33%, decided in whole numbers
    assert f"{check.share:.1f}" == "33.3"
    assert BudgetCheck("services_changed", 0, 0, 30, 0).share == 0.0
