"""infra.preview: the real program under mocks, collected as data for review."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi.runtime.mocks import MockResourceArgs

from infra.preview import Preview, PreviewMocks, preview_stack_file
from infra.provider_lookups import LookupNotFound

from .conftest import EXAMPLE, RecordingMocks


@pytest.fixture(scope="module")
def example_preview() -> Preview:
    return preview_stack_file(EXAMPLE)


def test_example_registrations_have_parents_and_protect(example_preview: Preview) -> None:
    by_name = {r.name: r for r in example_preview.registrations}
    assert example_preview.stack == "example"
    assert by_name["service-checkout"].parent == "checkout"
    assert by_name["service-checkout"].protect is True
    assert by_name["service-status-page"].protect is False
    assert by_name["checkout"].type == "apica-pagerduty:index:ApicaService"
    assert by_name["checkout"].parent is None
    assert by_name["policy-platform-oncall"].parent is None


def test_runner_can_run_again_in_the_same_process(example_preview: Preview) -> None:
    again = preview_stack_file(EXAMPLE)
    assert again.registrations == example_preview.registrations
    assert again.lookups == example_preview.lookups
    assert again.outputs == example_preview.outputs


def test_injected_mocks_are_used(small_stack: Path) -> None:
    mocks = RecordingMocks(own_ids=True)
    preview = preview_stack_file(small_stack, "dev", mocks)
    assert preview.stack == "dev"
    assert "service-web-apica" in mocks.seen
    assert "pagerduty:index/getUser:getUser" in mocks.seen
    policy = next(r for r in preview.registrations if r.name == "policy-oncall")
    assert policy.inputs["rules"][0]["targets"] == [
        {"type": "user_reference", "id": "${user:ann@example.com}"}
    ]
    assert {x.id for x in preview.lookups} <= {f"PX{i}" for i in range(1, len(mocks.seen) + 1)}


def test_invented_ids_do_not_collide_at_scale() -> None:
    # The preview shows ids as what they refer to, so a collision would mislabel a resource.
    mocks = PreviewMocks()
    ids = {
        mocks.new_resource(MockResourceArgs("pagerduty:index/service:Service", f"s-{i}", {}))[0]
        for i in range(20_000)
    }
    assert len(ids) == 20_000


def test_an_account_refuses_a_name_spelt_in_another_case(small_stack: Path) -> None:
    # `pulumi up` would fail on get_user: the provider compares e-mails exactly.
    with pytest.raises(LookupNotFound) as caught:
        preview_stack_file(small_stack, mocks=PreviewMocks({"user": ["Ann@Example.com"]}))
    assert str(caught.value) == (
        "Unable to locate any user with the email: ann@example.com (PagerDuty has "
        "'Ann@Example.com': look-ups match the email exactly, case included; write it as "
        "PagerDuty has it)"
    )


def test_an_account_answers_what_it_holds(small_stack: Path) -> None:
    preview = preview_stack_file(
        small_stack, mocks=PreviewMocks({"user": ["ann@example.com"], "vendor": ["APICA"]})
    )
    assert {(x.kind, x.name) for x in preview.lookups} == {
        ("user", "ann@example.com"),
        ("vendor", "Apica"),
    }
