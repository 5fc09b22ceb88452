"""infra.provider_lookups: what each look-up takes, as terraform-provider-pagerduty decides."""

from __future__ import annotations

import pytest

from infra.provider_lookups import LOOKUP_FIELDS, LOOKUPS, not_found, pick


def vendors(*names: str) -> list[dict[str, str]]:
    return [{"id": f"P{index}", "name": name} for index, name in enumerate(names)]


@pytest.mark.parametrize(
    ("pages", "wanted", "expected"),
    [
        pytest.param([vendors("apica")], "Apica", "apica", id="exact-ignoring-case"),
        pytest.param(
            [vendors("Apica Synthetic", "Apica")],
            "Apica",
            "Apica",
            id="exact-beats-an-earlier-partial",
        ),
        pytest.param(
            [vendors("Apica Synthetic"), vendors("APICA")],
            "Apica",
            "APICA",
            id="exact-on-a-later-page-replaces-a-partial",
        ),
        pytest.param(
            [vendors("Apica"), vendors("Apica Synthetic")],
            "Apica",
            "Apica",
            id="a-later-partial-does-not-replace-an-exact",
        ),
        pytest.param(
            [vendors("Datadog", "My Apica Checks", "Apica Synthetic")],
            "apica",
            "My Apica Checks",
            id="first-partial",
        ),
        # The provider compiles the name as a regular expression, unescaped.
        pytest.param([vendors("Apica")], "Ap.ca", "Apica", id="name-is-a-pattern"),
        pytest.param([vendors("Apica")], "Nagios", None, id="none"),
        pytest.param([vendors("Apica")], "Api(", None, id="invalid-pattern-finds-nothing"),
    ],
)
def test_vendor_rule(pages: list[list[dict[str, str]]], wanted: str, expected: str | None) -> None:
    found = pick("vendor", pages, wanted)
    assert (found["name"] if found else None) == expected


@pytest.mark.parametrize("kind", ["schedule", "team", "escalation_policy", "service"])
def test_names_match_exactly_case_included(kind: str) -> None:
    page = [{"id": "P1", "name": "web primary"}, {"id": "P2", "name": "Web Primary"}]
    assert pick(kind, [page], "Web Primary") == page[1]
    assert pick(kind, [page], "WEB PRIMARY") is None
    assert pick(kind, [page], "Web") is None  # PagerDuty's query is a substring filter


def test_users_match_by_exact_e_mail_across_pages() -> None:
    pages = [[{"id": "P1", "email": "Ann@example.com"}], [{"id": "P2", "email": "ann@example.com"}]]
    assert pick("user", pages, "ann@example.com") == pages[1][0]
    assert pick("user", pages, "ANN@example.com") is None


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("vendor", "Unable to locate any vendor with the name: Ops"),
        ("user", "Unable to locate any user with the email: Ops"),
        ("schedule", "Unable to locate any schedule with the name: Ops"),
        ("escalation_policy", "Unable to locate any escalation policy with the name: Ops"),
        ("service", "Unable to locate any service with the name: Ops"),
        ("team", "Unable to locate any team with name: Ops"),
    ],
)
def test_refusals_are_the_providers_words(kind: str, message: str) -> None:
    assert str(not_found(kind, "Ops", [{"name": "Ops team", "email": "ops@x.io"}])) == message


def test_a_name_that_differs_in_case_is_named() -> None:
    refusal = not_found("schedule", "web primary", [{"name": "Web Primary"}])
    assert str(refusal) == (
        "Unable to locate any schedule with the name: web primary (PagerDuty has "
        "'Web Primary': look-ups match the name exactly, case included; write it as "
        "PagerDuty has it)"
    )


def test_every_look_up_kind_has_a_field_and_a_message() -> None:
    assert set(LOOKUP_FIELDS) == {kind for kind, _ in LOOKUPS.values()}
    for kind in LOOKUP_FIELDS:
        assert str(not_found(kind, "x")).startswith("Unable to locate any ")
