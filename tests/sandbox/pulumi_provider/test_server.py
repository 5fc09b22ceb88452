"""The ResourceProvider service over gRPC on loopback, as the engine calls it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import engine_pb2, provider_pb2, provider_pb2_grpc, status_pb2

from sandbox.pulumi_provider import STAND_IN
from sandbox.pulumi_provider.engine_log import EngineLog
from sandbox.pulumi_provider.properties import SECRET_SIG, SIG, UNKNOWN, Secret, decode, encode
from sandbox.pulumi_provider.resource_type import PartialCreate
from sandbox.pulumi_provider.rest import CALL_LOG
from sandbox.pulumi_provider.server import StandInProvider, _init_failed
from sandbox.server import PagerDutySandbox
from tests.sandbox.pulumi_provider.conftest import FakeEngine, FakeTime, vendor_id

PROJECT = "urn:pulumi:dev::probe::"
POLICY = "pagerduty:index/escalationPolicy:EscalationPolicy"
SERVICE = "pagerduty:index/service:Service"
INTEGRATION = "pagerduty:index/serviceIntegration:ServiceIntegration"


def urn(token: str, name: str) -> str:
    return f"{PROJECT}{token}::{name}"


@pytest.fixture
def stub(
    engine: tuple[FakeEngine, str], fake_time: FakeTime
) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    log = EngineLog()
    log.connect(engine[1])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(
        StandInProvider(env={}, timing=fake_time.timing, engine_log=log), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield provider_pb2_grpc.ResourceProviderStub(channel)
    server.stop(None)


@pytest.fixture
def configured(stub: Any, pd: PagerDutySandbox) -> Any:
    stub.Configure(
        provider_pb2.ConfigureRequest(
            args=encode({"token": Secret(pd.token), "apiUrlOverride": pd.url})
        )
    )
    return stub


@pytest.fixture
def rest_calls(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.DEBUG, logger=CALL_LOG.name)

    def made() -> list[str]:
        # Calls made while fixtures set up (Configure) count too.
        logged = caplog.get_records("setup") + caplog.get_records("call")
        records = [
            json.loads(r.getMessage().split(": rest ", 1)[1])
            for r in logged
            if ": rest " in r.getMessage()
        ]
        return [f"{r['client']} {r['method']} {r['path']}" for r in records]

    return made


def failure_of(call: Any, *args: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call(*args)
    return error.value


def test_plugin_plumbing(stub: Any):
    handshake = stub.Handshake(provider_pb2.ProviderHandshakeRequest(engine_address="x"))
    assert (handshake.accept_secrets, handshake.accept_resources, handshake.accept_outputs) == (
        True,
        False,
        False,
    )
    assert stub.GetPluginInfo(empty_pb2.Empty()).version == "4.37.0"
    schema = json.loads(stub.GetSchema(provider_pb2.GetSchemaRequest()).schema)
    assert (schema["name"], schema["version"], schema["description"]) == (
        "pagerduty",
        "4.37.0",
        STAND_IN,
    )
    stub.Cancel(empty_pb2.Empty())
    unimplemented = failure_of(stub.Parameterize, provider_pb2.ParameterizeRequest())
    assert unimplemented.code() == grpc.StatusCode.UNIMPLEMENTED


def test_provider_config_check_and_diff(stub: Any):
    checked = stub.CheckConfig(
        provider_pb2.CheckRequest(
            urn=PROJECT + "pulumi:providers:pagerduty::default",
            news=encode(
                {"token": Secret("t"), "skipCredentialsValidation": "true", "version": "4.37.0"}
            ),
        )
    )
    assert decode(checked.inputs) == {
        "token": Secret("t"),
        "skipCredentialsValidation": True,
        "version": "4.37.0",
    }
    bad = stub.CheckConfig(provider_pb2.CheckRequest(news=encode({"insecureTls": "maybe"})))
    assert [(f.property, f.reason) for f in bad.failures] == [
        ("insecureTls", f"{STAND_IN}: insecureTls must be true or false, not 'maybe'")
    ]
    same = stub.DiffConfig(
        provider_pb2.DiffRequest(
            olds=encode({"token": Secret("t"), "version": "4.36.0"}),
            news=encode({"token": Secret("t"), "version": "4.37.0"}),
        )
    )
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE
    moved = stub.DiffConfig(
        provider_pb2.DiffRequest(
            olds=encode({"apiUrlOverride": "http://a"}), news=encode({"apiUrlOverride": "http://b"})
        )
    )
    assert (moved.changes, list(moved.diffs), list(moved.replaces)) == (
        provider_pb2.DiffResponse.DIFF_SOME,
        ["apiUrlOverride"],
        [],
    )


def test_configure_checks_the_token_unless_told_not_to(
    stub: Any, pd: PagerDutySandbox, engine: tuple[FakeEngine, str], rest_calls: Any
):
    wrong = failure_of(
        stub.Configure,
        provider_pb2.ConfigureRequest(
            args=encode({"token": Secret("wrong"), "apiUrlOverride": pd.url})
        ),
    )
    assert wrong.details().startswith(
        f"{STAND_IN}: Failed to validate credentials with GET /abilities: HTTP response failed "
        "with status code 401, message: Authentication failed (code: 2006)"
    )
    skipped = stub.Configure(
        provider_pb2.ConfigureRequest(
            args=encode(
                {"token": "wrong", "apiUrlOverride": pd.url, "skipCredentialsValidation": True}
            )
        )
    )
    assert skipped.acceptSecrets and skipped.supportsPreview and not skipped.acceptResources
    assert rest_calls() == ["go-pagerduty GET /abilities"]
    assert engine[0].messages(engine_pb2.INFO) == [
        ("", f"{STAND_IN}: this is not the real pulumi-resource-pagerduty; see docs/sandbox.md")
    ]


def test_resource_calls_need_a_configured_provider(stub: Any):
    error = failure_of(
        stub.Create,
        provider_pb2.CreateRequest(
            urn=urn(POLICY, "p"), type=POLICY, properties=encode({"name": "x", "rules": []})
        ),
    )
    assert (
        error.details() == f"{STAND_IN}: the provider was not configured (no Configure call came)"
    )


def test_check_fills_defaults_names_and_reports_labelled_failures(
    configured: Any, engine: tuple[FakeEngine, str]
):
    checked = configured.Check(
        provider_pb2.CheckRequest(
            urn=urn(SERVICE, "checkout"),
            type=SERVICE,
            randomSeed=b"seed",
            news=encode(
                {
                    "escalationPolicy": UNKNOWN,
                    "numLoops": 1.0,
                    "alertGroupingParameters": {"type": "time"},
                }
            ),
        )
    )
    inputs = decode(checked.inputs)
    assert inputs["name"].startswith("checkout-") and len(inputs["name"]) == 16
    assert (inputs["description"], inputs["autoResolveTimeout"]) == ("Managed by Pulumi", "14400")
    assert inputs["escalationPolicy"] is UNKNOWN and list(checked.failures) == []
    assert engine[0].messages(engine_pb2.WARNING) == [
        (
            urn(SERVICE, "checkout"),
            f'{STAND_IN}: verification warning: property "alertGroupingParameters" is deprecated: '
            "Use a resource pagerduty_alert_grouping_setting instead.",
        )
    ]
    kept = configured.Check(
        provider_pb2.CheckRequest(
            urn=urn(POLICY, "p"),
            type=POLICY,
            olds=encode({"name": "Given Before"}),
            news=encode({"rules": [{"escalationDelayInMinutes": 0, "targets": [{"id": "U"}]}]}),
        )
    )
    assert decode(kept.inputs)["name"] == "Given Before"
    assert [(f.property, f.reason) for f in kept.failures] == [
        (
            "rules[0].escalationDelayInMinutes",
            f"{STAND_IN}: expected escalation_delay_in_minutes to be at least (1), got 0",
        )
    ]


def test_diff_says_update_or_replace_per_property(configured: Any):
    state = {
        "id": "PINT001",
        "name": "Apica-Checkout",
        "service": "PSVC001",
        "vendor": "PVEND01",
        "type": "",
        "integrationKey": "k" * 32,
    }

    def diff(news: dict[str, Any]) -> provider_pb2.DiffResponse:
        return configured.Diff(
            provider_pb2.DiffRequest(
                id="PINT001",
                urn=urn(INTEGRATION, "i"),
                type=INTEGRATION,
                olds=encode(state),
                old_inputs=encode({}),
                news=encode(news),
            )
        )

    same = diff({"name": "Apica-Checkout", "service": "PSVC001", "vendor": "PVEND01"})
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE and same.hasDetailedDiff
    renamed = diff(
        {"name": Secret("Apica-Checkout-API"), "service": "PSVC001", "vendor": "PVEND01"}
    )
    assert (list(renamed.diffs), list(renamed.replaces)) == (["name"], [])
    assert renamed.detailedDiff["name"].kind == provider_pb2.PropertyDiff.UPDATE
    moved = diff({"name": "Apica-Checkout", "service": UNKNOWN, "vendor": "PVEND02"})
    assert sorted(moved.replaces) == ["service", "vendor"] and not moved.deleteBeforeReplace
    assert moved.detailedDiff["vendor"].kind == provider_pb2.PropertyDiff.UPDATE_REPLACE
    ignored = configured.Diff(
        provider_pb2.DiffRequest(
            id="PINT001",
            urn=urn(INTEGRATION, "i"),
            type=INTEGRATION,
            olds=encode(state),
            news=encode({"name": "Other", "service": "PSVC001", "vendor": "PVEND01"}),
            ignoreChanges=["name"],
        )
    )
    assert ignored.changes == provider_pb2.DiffResponse.DIFF_NONE


def test_a_plan_terraform_refuses_fails_the_diff(configured: Any):
    error = failure_of(
        configured.Diff,
        provider_pb2.DiffRequest(
            id="PSVC001",
            urn=urn(SERVICE, "s"),
            type=SERVICE,
            olds=encode({"name": "S", "escalationPolicy": "P"}),
            news=encode(
                {
                    "name": "S",
                    "escalationPolicy": "P",
                    "incidentUrgencyRule": {"type": "use_support_hours"},
                }
            ),
        ),
    )
    assert error.details() == (
        f"{STAND_IN}: when using type = use_support_hours in incident_urgency_rule you must "
        "specify exactly one (otherwise optional) support_hours block"
    )


def test_preview_creates_nothing_and_leaves_computed_values_unknown(
    rest_calls: Any, configured: Any, pd: PagerDutySandbox
):
    preview = configured.Create(
        provider_pb2.CreateRequest(
            urn=urn(SERVICE, "s"),
            type=SERVICE,
            preview=True,
            properties=encode(
                {"name": Secret("Checkout"), "escalationPolicy": UNKNOWN, "description": "d"}
            ),
        )
    )
    outputs = decode(preview.properties)
    assert preview.id == "" and outputs["name"] == Secret("Checkout")
    assert outputs["htmlUrl"] is UNKNOWN and outputs["incidentUrgencyRule"] is UNKNOWN
    assert outputs["escalationPolicy"] is UNKNOWN and "supportHours" not in outputs
    assert pd.state.services() == [] and rest_calls() == ["go-pagerduty GET /abilities"]


def test_create_read_update_delete_through_grpc(
    rest_calls: Any, configured: Any, pd: PagerDutySandbox, user: dict[str, Any]
):
    inputs = {
        "name": "Ops",
        "description": "Managed by Pulumi",
        "rules": [
            {
                "escalationDelayInMinutes": 5,
                "targets": [{"type": "user_reference", "id": Secret(user["id"])}],
            }
        ],
    }
    created = configured.Create(
        provider_pb2.CreateRequest(urn=urn(POLICY, "p"), type=POLICY, properties=encode(inputs))
    )
    outputs = decode(created.properties)
    assert pd.state.directory.get("escalation_policies", created.id)["name"] == "Ops"
    assert isinstance(outputs["rules"], Secret)  # a secret target id keeps its list secret
    # The SDKv2 half checked the token once, lazily, before its first call.
    assert rest_calls()[1:3] == ["heimweh GET /abilities", "heimweh POST /escalation_policies"]

    read = configured.Read(
        provider_pb2.ReadRequest(
            id=created.id,
            urn=urn(POLICY, "p"),
            type=POLICY,
            properties=created.properties,
            inputs=encode(inputs),
        )
    )
    assert read.id == created.id and decode(read.inputs)["name"] == "Ops"

    updated = configured.Update(
        provider_pb2.UpdateRequest(
            id=created.id,
            urn=urn(POLICY, "p"),
            type=POLICY,
            olds=created.properties,
            news=encode({**inputs, "name": "Ops 2"}),
        )
    )
    assert decode(updated.properties)["name"] == "Ops 2"
    preview = configured.Update(
        provider_pb2.UpdateRequest(
            id=created.id,
            urn=urn(POLICY, "p"),
            type=POLICY,
            olds=updated.properties,
            news=encode({**inputs, "name": "Ops 3"}),
            preview=True,
        )
    )
    assert decode(preview.properties)["name"] == "Ops 3"
    assert pd.state.directory.get("escalation_policies", created.id)["name"] == "Ops 2"

    configured.Delete(
        provider_pb2.DeleteRequest(
            id=created.id, urn=urn(POLICY, "p"), type=POLICY, properties=updated.properties
        )
    )
    gone = configured.Read(
        provider_pb2.ReadRequest(
            id=created.id, urn=urn(POLICY, "p"), type=POLICY, properties=updated.properties
        )
    )
    assert gone.id == ""
    assert rest_calls().count("heimweh GET /abilities") == 1


def test_invoke_answers_look_ups_and_keeps_secret_arguments_secret(
    configured: Any, pd: PagerDutySandbox
):
    answer = configured.Invoke(
        provider_pb2.InvokeRequest(
            tok="pagerduty:index/getVendor:getVendor", args=encode({"name": "Apica"})
        )
    )
    assert decode(getattr(answer, "return")) == {
        "id": vendor_id(pd, "Apica"),
        "name": "Apica",
        "type": "",
    }
    secret = configured.Invoke(
        provider_pb2.InvokeRequest(
            tok="pagerduty:index/getVendor:getVendor", args=encode({"name": Secret("Apica")})
        )
    )
    assert getattr(secret, "return")["id"][SIG] == SECRET_SIG
    missing = failure_of(
        configured.Invoke,
        provider_pb2.InvokeRequest(
            tok="pagerduty:index/getVendor:getVendor", args=encode({"name": "Nobody"})
        ),
    )
    assert missing.details() == f"{STAND_IN}: Unable to locate any vendor with the name: Nobody"
    other = failure_of(
        configured.Invoke, provider_pb2.InvokeRequest(tok="pagerduty:index/getLicense:getLicense")
    )
    assert (
        other.details() == f"{STAND_IN}: the stand-in has no look-up "
        "pagerduty:index/getLicense:getLicense"
    )
    unknown_type = failure_of(
        configured.Check,
        provider_pb2.CheckRequest(
            urn=urn("pagerduty:index/team:Team", "t"), type="pagerduty:index/team:Team"
        ),
    )
    assert unknown_type.details() == (
        f"{STAND_IN}: the stand-in does not implement pagerduty:index/team:Team"
    )


def test_a_partial_create_carries_the_id_for_the_engine():
    status = _init_failed(
        PartialCreate(
            "created P1, but reading it back failed: 500", "P1", {"id": "P1", "name": "x"}
        )
    )
    assert status.code == grpc.StatusCode.UNKNOWN
    ((key, value),) = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    detail = provider_pb2.ErrorResourceInitFailed()
    assert status_pb2.Status.FromString(value).details[0].Unpack(detail)
    assert detail.id == "P1" and decode(detail.properties) == {"id": "P1", "name": "x"}
    assert list(detail.reasons) == [f"{STAND_IN}: created P1, but reading it back failed: 500"]
