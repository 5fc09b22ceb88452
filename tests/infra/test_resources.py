"""infra.resources (and the infra/__main__ entry): the program's graph under Pulumi's mocks.

Graph tests run the program through `infra.preview.preview_program`, which records
every registration (type, logical name, parent, protect, inputs) and look-up.
Output tests use `@pulumi.runtime.test` and return their `Output.all(...).apply(check)`.
"""

from __future__ import annotations

import asyncio
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest

from contract.routes_file import parse_routes
from infra.mock_runtime import as_python, close_event_loops, run_under_mocks, set_fresh_mocks
from infra.model import (
    AlertGrouping,
    ExistingPolicy,
    ExistingService,
    NewService,
    Rule,
    Stack,
    SupportHours,
    Target,
    UrgencyRule,
)
from infra.plan import service_args
from infra.preview import Preview, PreviewMocks, Registration, preview_program
from infra.resources import COMPONENT_TYPE, ProgramError, require_exact_vendor, run_program

from .conftest import RecordingMocks, integration, new_policy, resolved_stack
from .conftest import new_service as resolved_service

POLICY = "pagerduty:index/escalationPolicy:EscalationPolicy"
SERVICE = "pagerduty:index/service:Service"
INTEGRATION = "pagerduty:index/serviceIntegration:ServiceIntegration"
GROUPING = "pagerduty:index/alertGroupingSetting:AlertGroupingSetting"
MAIN = Path(__file__).resolve().parents[2] / "infra"


# -- stacks -------------------------------------------------------------------------


def check_id(key: str) -> int:
    # Distinct per key: the routes file refuses one check routed to two services.
    return sum(ord(char) for char in key)


def new_service(key: str = "web", **overrides: Any) -> NewService:
    """A service with a check of its own and no acknowledgement timeout."""
    routed = integration(f"Apica-{key.title()}", check_ids=(check_id(key),))
    return resolved_service(
        key, **{"acknowledgement_timeout": None, "integration": routed, **overrides}
    )


ONCALL = new_policy(
    description="Primary then secondary",
    num_loops=2,
    team="Web",
    rules=(
        Rule(
            delay_minutes=15,
            assignment="round_robin",
            targets=(
                Target(type="user", ref="ann@example.com"),
                Target(type="schedule", ref="Web primary"),
            ),
        ),
        Rule(
            delay_minutes=30,
            assignment="assign_to_everyone",
            targets=(Target(type="user", ref="ann@example.com"),),
        ),
    ),
)


def stack_of(*services: NewService | ExistingService, **overrides: Any) -> Stack:
    return resolved_stack(*services, **{"escalation_policies": {"oncall": ONCALL}, **overrides})


def offline(stack: Stack, mocks: PreviewMocks | None = None) -> Preview:
    return preview_program(lambda: run_program(stack, "test"), mocks, "test")


def graph(preview: Preview) -> set[tuple[str, str, str | None, bool]]:
    return {(r.type, r.name, r.parent, r.protect) for r in preview.registrations}


def one(preview: Preview, name: str) -> Registration:
    (found,) = [r for r in preview.registrations if r.name == name]
    return found


# -- graph --------------------------------------------------------------------------


def test_exact_graph_of_new_policy_and_services() -> None:
    preview = offline(stack_of(new_service("web"), new_service("api", protect=False)))
    assert graph(preview) == {
        (POLICY, "policy-oncall", None, True),
        (COMPONENT_TYPE, "web", None, False),
        (SERVICE, "service-web", "web", True),
        (INTEGRATION, "service-web-apica", "web", True),
        (COMPONENT_TYPE, "api", None, False),
        (SERVICE, "service-api", "api", False),
        (INTEGRATION, "service-api-apica", "api", False),
    }
    assert {(x.kind, x.name) for x in preview.lookups} == {
        ("user", "ann@example.com"),
        ("schedule", "Web primary"),
        ("team", "Web"),
        ("vendor", "Apica"),
    }


def test_policy_inputs_reference_looked_up_users_schedules_team() -> None:
    policy = one(offline(stack_of(new_service())), "policy-oncall")
    assert policy.inputs == {
        "name": "On-call",
        "description": "Primary then secondary",
        "num_loops": 2,
        "teams": "${team:Web}",
        "rules": [
            {
                "escalation_delay_in_minutes": 15,
                "escalation_rule_assignment_strategy": {"type": "round_robin"},
                "targets": [
                    {"type": "user_reference", "id": "${user:ann@example.com}"},
                    {"type": "schedule_reference", "id": "${schedule:Web primary}"},
                ],
            },
            {
                "escalation_delay_in_minutes": 30,
                "escalation_rule_assignment_strategy": {"type": "assign_to_everyone"},
                "targets": [{"type": "user_reference", "id": "${user:ann@example.com}"}],
            },
        ],
    }


def test_service_and_integration_inputs() -> None:
    preview = offline(stack_of(new_service()))
    assert one(preview, "service-web").inputs == {
        "name": "Web",
        "description": "Managed by Pulumi",
        "escalation_policy": "${policy-oncall.id}",
        "incident_urgency_rule": {"type": "constant", "urgency": "severity_based"},
        "auto_resolve_timeout": "14400",
        "acknowledgement_timeout": "null",
        "auto_pause_notifications_parameters": {"enabled": False},
    }
    assert one(preview, "service-web-apica").inputs == {
        "name": "Apica-Web",
        "service": "${service-web.id}",
        "vendor": "${vendor:Apica}",
    }


def test_grouping_is_an_unprotected_setting_of_the_service() -> None:
    grouped = new_service(alert_grouping=AlertGrouping(type="time", timeout=15))
    preview = offline(stack_of(grouped))
    setting = one(preview, "service-web-grouping")
    assert (setting.type, setting.parent, setting.protect) == (GROUPING, "web", False)
    assert setting.inputs == {
        "name": "Web",
        "description": "Alert grouping of Web (time, window set), managed by apica-pagerduty",
        "type": "time",
        "config": {"timeout": 900},  # 15m in the setting's seconds
        "services": ["${service-web.id}"],
    }
    assert "alert_grouping_parameters" not in one(preview, "service-web").inputs


def test_constant_urgency_services_ignore_support_hours() -> None:
    hours = UrgencyRule(
        type="use_support_hours",
        during_support_hours="high",
        outside_support_hours="low",
        support_hours=SupportHours(
            time_zone="UTC", days_of_week=(1,), start_time="09:00:00", end_time="17:00:00"
        ),
    )
    stack = stack_of(new_service("web"), new_service("api", urgency=hours))
    run = run_under_mocks(lambda: run_program(stack, "test"), PreviewMocks(), "test")
    ignored = {r.request.name: list(r.request.ignoreChanges) for r in run.registrations}
    assert ignored["service-web"] == ["supportHours"]
    assert ignored["service-api"] == []


def test_each_look_up_is_invoked_once() -> None:
    mocks = RecordingMocks()
    offline(stack_of(new_service("web"), new_service("api")), mocks)
    assert len(mocks.calls) == len(set(mocks.calls)) == 4


def test_existing_service_gets_only_an_integration() -> None:
    legacy = ExistingService(key="legacy", name="Legacy", integration=integration("Apica-L"))
    preview = offline(stack_of(legacy, escalation_policies={}))
    assert graph(preview) == {
        (COMPONENT_TYPE, "legacy", None, False),
        (INTEGRATION, "service-legacy-apica", "legacy", False),
    }
    assert one(preview, "service-legacy-apica").inputs["service"] == "${service:Legacy}"
    assert ("service", "Legacy") in {(x.kind, x.name) for x in preview.lookups}


def test_existing_policy_is_looked_up_not_created() -> None:
    stack = stack_of(
        new_service(), escalation_policies={"oncall": ExistingPolicy(key="oncall", name="Ops")}
    )
    preview = offline(stack)
    assert POLICY not in {r.type for r in preview.registrations}
    assert one(preview, "service-web").inputs["escalation_policy"] == "${escalation_policy:Ops}"


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="constant-urgency"),
        pytest.param(
            {
                "urgency": UrgencyRule(
                    type="use_support_hours",
                    during_support_hours="high",
                    outside_support_hours="low",
                    support_hours=SupportHours(
                        time_zone="America/Lima",
                        days_of_week=(1, 2, 3, 4, 5),
                        start_time="09:00:00",
                        end_time="17:00:00",
                    ),
                    raise_at_support_hours_start=True,
                ),
                "alert_grouping": AlertGrouping(
                    type="content_based", aggregate="any", fields=("summary",)
                ),
                "auto_pause_timeout": 120,
            },
            id="support-hours-grouping-auto-pause",
        ),
    ],
)
def test_a_service_is_registered_with_the_plans_arguments(overrides: dict[str, Any]) -> None:
    # infra.plan pins each argument's value; here: all of them reach the provider as planned.
    service = new_service(**overrides)
    inputs = one(offline(stack_of(service)), "service-web").inputs
    planned = as_python(service_args(service))  # as the mocks see it: unset values dropped
    provider_default = {"description": "Managed by Pulumi"}  # pulumi-pagerduty's, for None
    assert inputs == {**provider_default, **planned, "escalation_policy": "${policy-oncall.id}"}


def test_vendor_override_skips_the_look_up() -> None:
    service = new_service(integration=integration("Apica-Web", vendor_id="PAPICA1"))
    preview = offline(stack_of(service))
    assert one(preview, "service-web-apica").inputs["vendor"] == "PAPICA1"
    assert "vendor" not in {x.kind for x in preview.lookups}


def test_events_api_v2_integration_has_a_type_and_no_vendor_look_up() -> None:
    plain = new_service(integration=integration("Apica-Web", type="events_api_v2"))
    preview = offline(stack_of(plain))
    assert one(preview, "service-web-apica").inputs == {
        "name": "Apica-Web",
        "service": "${service-web.id}",
        "type": "events_api_v2_inbound_integration",
    }
    assert "vendor" not in {x.kind for x in preview.lookups}


def test_ambiguous_vendor_look_up_fails_with_the_fix() -> None:
    with pytest.raises(ProgramError, match=r"apica\.vendor_id") as caught:
        account = {"vendor": ["Datadog", "Apica Synthetic Monitoring"]}
        offline(stack_of(new_service()), PreviewMocks(account))
    assert "'Apica Synthetic Monitoring'" in str(caught.value)


@pytest.mark.parametrize("name", ["Apica", "apica", "APICA"])
def test_vendor_name_matches_case_insensitively(name: str) -> None:
    found = type("Vendor", (), {"id": "PV1", "name": name})()
    assert require_exact_vendor(found) == "PV1"


def test_invalid_routes_file_fails_the_program_without_showing_the_key() -> None:
    with pytest.raises(ProgramError, match="routing_key") as caught:
        offline(stack_of(new_service()), RecordingMocks(key="short-key-1234"))
    assert "short-key" not in str(caught.value)


def test_outputs_keys_and_routes_are_secret() -> None:
    preview = offline(stack_of(new_service()))
    outputs = {o.name: o for o in preview.outputs}
    assert outputs["integration_keys"].secret and outputs["bridge_routes"].secret
    assert outputs["services"].secret is False
    assert outputs["services"].value == {
        "web": {
            "id": "${service-web.id}",
            "name": "Web",
            "url": outputs["services"].value["web"]["url"],
        }
    }
    assert outputs["services"].value["web"]["url"].startswith("https://")


# -- adoption: import_ instead of create ---------------------------------------------


def adopted_stack() -> Stack:
    web = new_service(
        adopt="PSVC001",
        integration=integration("Apica-Web", vendor_id="PAPICA1", adopt="PSVC001.PINT001"),
    )
    quiet = new_service("quiet", adopt="PSVC002", integration=None)
    return stack_of(
        web, quiet, escalation_policies={"oncall": ONCALL.model_copy(update={"adopt": "PPOL001"})}
    )


def test_adopted_resources_are_registered_with_their_import_ids() -> None:
    preview = offline(adopted_stack())
    assert {(r.name, r.import_id) for r in preview.registrations if r.custom} == {
        ("policy-oncall", "PPOL001"),
        ("service-web", "PSVC001"),
        ("service-web-apica", "PSVC001.PINT001"),
        ("service-quiet", "PSVC002"),
    }
    assert preview.creates == ()
    # The adopted ids are what later resources refer to (the engine's ids after import).
    assert one(preview, "service-web").inputs["escalation_policy"] == "${policy-oncall.id}"
    assert one(preview, "service-web").id == "PSVC001"
    assert one(preview, "service-web-apica").id == "PINT001"


def test_a_service_without_integration_is_adopted_but_no_route() -> None:
    preview = offline(adopted_stack())
    assert [r.name for r in preview.registrations if r.parent == "quiet"] == ["service-quiet"]
    outputs = {o.name: o for o in preview.outputs}
    assert sorted(outputs["services"].value) == ["quiet", "web"]


@pulumi.runtime.test
def test_routes_leave_out_services_without_integration(mocked: None) -> Any:
    deployed = run_program(adopted_stack())

    def check(values: list[Any]) -> None:
        routes_text, quiet_key = values
        assert set(parse_routes(routes_text, "bridge_routes").routes) == {"web"}
        assert quiet_key is None

    return pulumi.Output.all(
        deployed.bridge_routes, deployed.services["quiet"].integration_key
    ).apply(check)


def test_nothing_is_imported_without_adopt() -> None:
    preview = offline(stack_of(new_service()))
    assert preview.imports == ()
    created = {r.name for r in preview.creates}
    assert created == {"policy-oncall", "service-web", "service-web-apica"}


# -- outputs with @pulumi.runtime.test ----------------------------------------------


@pytest.fixture
def mocked() -> Iterator[None]:
    set_fresh_mocks(PreviewMocks(), "test")
    yield
    close_event_loops()


@pulumi.runtime.test
def test_bridge_routes_validate_with_the_bridge_model(mocked: None) -> Any:
    legacy = ExistingService(key="legacy", name="Legacy", integration=integration("Apica-L"))
    deployed = run_program(stack_of(new_service(), legacy, catch_all="legacy"))

    def check(values: list[Any]) -> None:
        routes_text, web_key, web_id, web_integration = values
        routes = parse_routes(routes_text, "bridge_routes")
        assert routes.stack == "test"
        assert routes.catch_all == "legacy"
        assert set(routes.routes) == {"web", "legacy"}
        assert routes.routes["web"].routing_key.get_secret_value() == web_key
        assert routes.routes["web"].service_id == web_id
        assert routes.routes["web"].integration_id == web_integration
        assert routes.routes["web"].check_ids == (check_id("web"),)
        assert routes.routes["legacy"].service_url is None

    return pulumi.Output.all(
        deployed.bridge_routes,
        deployed.services["web"].integration_key,
        deployed.services["web"].service_id,
        deployed.services["web"].integration_id,
    ).apply(check)


@pulumi.runtime.test
def test_integration_keys_and_routes_are_secret_outputs(mocked: None) -> Any:
    deployed = run_program(stack_of(new_service()))

    async def check() -> None:
        assert await deployed.bridge_routes.is_secret()
        assert await deployed.services["web"].integration_key.is_secret()
        assert not await deployed.services["web"].service_id.is_secret()

    return asyncio.ensure_future(check())


# -- the entry point ----------------------------------------------------------------


def test_entry_reads_stack_file_from_config(tmp_path: Path) -> None:
    from infra.__main__ import stack_file_path

    assert stack_file_path(None, "prod", tmp_path) == tmp_path / "stacks" / "prod.yaml"
    assert stack_file_path("other/x.yaml", "prod", tmp_path) == tmp_path / "other" / "x.yaml"
    assert stack_file_path(str(tmp_path / "abs.yaml"), "prod") == tmp_path / "abs.yaml"


def test_entry_turns_a_bad_stack_file_into_a_run_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("services: [\n", encoding="utf-8")
    pulumi.runtime.set_all_config({"apica-pagerduty:stackFile": str(bad)})
    try:
        with pytest.raises(pulumi.RunError, match=r"bad\.yaml:\d+:\d+: "):
            preview_program(lambda: runpy.run_path(str(MAIN), run_name="__main__"))
    finally:
        pulumi.runtime.set_all_config({})


def test_exact_graph_of_the_example_stack() -> None:
    from infra.validate import load_stack

    preview = offline(load_stack(MAIN.parent / "stacks" / "example.yaml"))
    assert graph(preview) == {
        (POLICY, "policy-platform-oncall", None, True),
        (POLICY, "policy-payments-oncall", None, True),
        (COMPONENT_TYPE, "checkout", None, False),
        (SERVICE, "service-checkout", "checkout", True),
        (GROUPING, "service-checkout-grouping", "checkout", False),
        (INTEGRATION, "service-checkout-apica", "checkout", True),
        (COMPONENT_TYPE, "search", None, False),
        (SERVICE, "service-search", "search", True),
        (GROUPING, "service-search-grouping", "search", False),
        (INTEGRATION, "service-search-apica", "search", True),
        (COMPONENT_TYPE, "status-page", None, False),
        (SERVICE, "service-status-page", "status-page", False),
        (GROUPING, "service-status-page-grouping", "status-page", False),
        (INTEGRATION, "service-status-page-apica", "status-page", False),
        (COMPONENT_TYPE, "legacy-web", None, False),
        (INTEGRATION, "service-legacy-web-apica", "legacy-web", False),
    }
    assert {(x.kind, x.name) for x in preview.lookups} == {
        ("escalation_policy", "SRE Escalation"),
        ("schedule", "Payments Primary"),
        ("schedule", "Platform Primary"),
        ("service", "Legacy Web"),
        ("team", "Payments"),
        ("team", "Platform"),
        ("user", "alice@example.com"),
        ("user", "bob@example.com"),
        ("user", "carol@example.com"),
    }
    kinds = {
        r.name: r.inputs.get("vendor") or r.inputs["type"]
        for r in preview.registrations
        if r.type == INTEGRATION
    }
    assert kinds == {
        "service-checkout-apica": "PAPICA1",
        "service-search-apica": "events_api_v2_inbound_integration",
        "service-status-page-apica": "PAPICA1",
        "service-legacy-web-apica": "PAPICA2",
    }


def test_entry_defaults_to_the_stack_named_file() -> None:
    pulumi.runtime.set_all_config({})
    preview = preview_program(
        lambda: runpy.run_path(str(MAIN), run_name="__main__"), stack_name="example"
    )
    assert len(preview.registrations) == 16
    assert {o.name for o in preview.outputs} == {"services", "integration_keys", "bridge_routes"}


def test_entry_uses_the_configured_stack_file(tmp_path: Path) -> None:
    stack_file = tmp_path / "one.yaml"
    stack_file.write_text(
        "escalation_policies:\n  ops: {existing: Ops}\n"
        "services:\n  web: {name: Web, escalation_policy: ops}\n",
        encoding="utf-8",
    )
    pulumi.runtime.set_all_config({"apica-pagerduty:stackFile": str(stack_file)})
    try:
        preview = preview_program(lambda: runpy.run_path(str(MAIN), run_name="__main__"))
    finally:
        pulumi.runtime.set_all_config({})
    assert {r.name for r in preview.registrations} == {"web", "service-web", "service-web-apica"}
