"""The gRPC edge: Pulumi's ResourceProvider service over the stand-in's resource types.

RPCs the engine (CLI v3.274) calls and this answers: Handshake (secrets taken,
resource references and output values not), GetPluginInfo, CheckConfig, DiffConfig,
Configure (GET /abilities unless skipCredentialsValidation), Check, Diff, Create and
Update (with `preview`: the plan, "known after apply" for computed values, no REST
call), Read (a 404 answers an empty id: the resource is gone), Delete, Invoke (the
look-ups), GetSchema (a minimal schema), Attach and Cancel. Anything else answers
UNIMPLEMENTED, which the engine tolerates for this provider's use. Each RPC is
logged at debug level with the REST calls.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, empty_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc, status_pb2

from sandbox.pulumi_provider import PACKAGE, PROVIDER_VERSION, STAND_IN, labelled
from sandbox.pulumi_provider.alert_grouping_setting import AlertGroupingSetting
from sandbox.pulumi_provider.config import (
    ConfigError,
    ProviderConfig,
    checked_config,
    config_failures,
    provider_config,
)
from sandbox.pulumi_provider.engine_log import EngineLog
from sandbox.pulumi_provider.escalation_policy import EscalationPolicy
from sandbox.pulumi_provider.lookups import LOOKUPS
from sandbox.pulumi_provider.plan import changes, planned
from sandbox.pulumi_provider.properties import (
    PropertyError,
    Secret,
    conceal_like,
    decode,
    encode,
    has_secret,
    reveal,
)
from sandbox.pulumi_provider.resource_type import Api, PartialCreate, ProviderError, ResourceType
from sandbox.pulumi_provider.rest import CALL_LOG, Connection, RestClient, RestError
from sandbox.pulumi_provider.retry import RetryableError, Timing, retry_for
from sandbox.pulumi_provider.schema import Failure, Schema, autoname, check_values, with_defaults
from sandbox.pulumi_provider.service import Service
from sandbox.pulumi_provider.service_integration import ServiceIntegration

RESOURCE_TYPES: dict[str, ResourceType] = {
    kind.token: kind
    for kind in (EscalationPolicy(), Service(), ServiceIntegration(), AlertGroupingSetting())
}
# Enough for the engine to know the package; the SDK in the program carries the real schema.
SCHEMA_JSON = json.dumps(
    {
        "name": PACKAGE,
        "version": PROVIDER_VERSION,
        "description": STAND_IN,
        "resources": {},
        "functions": {},
    }
)
_DIFF_KINDS = {
    ("add", False): provider_pb2.PropertyDiff.ADD,
    ("add", True): provider_pb2.PropertyDiff.ADD_REPLACE,
    ("delete", False): provider_pb2.PropertyDiff.DELETE,
    ("delete", True): provider_pb2.PropertyDiff.DELETE_REPLACE,
    ("update", False): provider_pb2.PropertyDiff.UPDATE,
    ("update", True): provider_pb2.PropertyDiff.UPDATE_REPLACE,
}
_CREDENTIALS_SECONDS = 120

Handler = TypeVar("Handler", bound=Callable[..., Any])


def _rpc(handler: Handler) -> Handler:
    """Log the call; turn failures into one labelled gRPC error the engine shows."""

    @functools.wraps(handler)
    def answer(self: StandInProvider, request: Any, context: grpc.ServicerContext) -> Any:
        what = getattr(request, "type", "") or getattr(request, "tok", "")
        CALL_LOG.debug(labelled(f"rpc {handler.__name__} {what}".rstrip()))
        try:
            return handler(self, request, context)
        except PartialCreate as partial:
            context.abort_with_status(_init_failed(partial))
        except (ProviderError, RestError, ConfigError, PropertyError) as error:
            context.abort(grpc.StatusCode.UNKNOWN, labelled(str(error)))
        except Exception as error:  # a bug here: the engine must still get an answer
            traceback.print_exc(file=sys.stderr)
            context.abort(
                grpc.StatusCode.INTERNAL,
                labelled(f"internal error in {handler.__name__}: {type(error).__name__}: {error}"),
            )

    return answer  # type: ignore[return-value]


class StandInProvider(provider_pb2_grpc.ResourceProviderServicer):
    """One provider process: configured once, then serving resource and look-up calls."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        timing: Timing | None = None,
        engine_log: EngineLog | None = None,
    ) -> None:
        self._env = os.environ if env is None else env
        self._timing = timing or Timing()
        self._log = engine_log or EngineLog()
        self._lock = threading.Lock()
        self._api: Api | None = None
        self._config: ProviderConfig | None = None
        self._heimweh_checked = False

    # -- plumbing ------------------------------------------------------------------

    @_rpc
    def Handshake(self, request: Any, context: Any) -> provider_pb2.ProviderHandshakeResponse:
        self._log.connect(request.engine_address)
        return provider_pb2.ProviderHandshakeResponse(
            accept_secrets=True, accept_resources=False, accept_outputs=False
        )

    @_rpc
    def Attach(self, request: Any, context: Any) -> empty_pb2.Empty:
        self._log.connect(request.address)
        return empty_pb2.Empty()

    @_rpc
    def GetPluginInfo(self, request: Any, context: Any) -> plugin_pb2.PluginInfo:
        return plugin_pb2.PluginInfo(version=PROVIDER_VERSION)

    @_rpc
    def GetSchema(self, request: Any, context: Any) -> provider_pb2.GetSchemaResponse:
        return provider_pb2.GetSchemaResponse(schema=SCHEMA_JSON)

    @_rpc
    def Cancel(self, request: Any, context: Any) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    # -- provider configuration ----------------------------------------------------

    @_rpc
    def CheckConfig(self, request: Any, context: Any) -> provider_pb2.CheckResponse:
        news = decode(request.news)
        return provider_pb2.CheckResponse(
            inputs=encode(checked_config(news)), failures=_failures(config_failures(news))
        )

    @_rpc
    def DiffConfig(self, request: Any, context: Any) -> provider_pb2.DiffResponse:
        olds, news = reveal(decode(request.olds)), reveal(decode(request.news))
        changed = sorted(
            key
            for key in set(olds) | set(news)
            if key != "version" and olds.get(key) != news.get(key)
        )
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME
            if changed
            else provider_pb2.DiffResponse.DIFF_NONE,
            diffs=changed,
        )

    @_rpc
    def Configure(self, request: Any, context: Any) -> provider_pb2.ConfigureResponse:
        args = (
            decode(request.args) if request.HasField("args") else _from_variables(request.variables)
        )
        config = provider_config(args, self._env)
        connection = Connection(config.api_url, config.token)
        api = Api(
            sdkv2=RestClient(connection, "heimweh", self._timing),
            framework=RestClient(connection, "go-pagerduty", self._timing),
            timing=self._timing,
            warn=self._log.warning,
        )
        if not config.skip_credentials_validation:
            _check_credentials_framework(api)
        with self._lock:
            self._api, self._config = api, config
        self._log.info("", "this is not the real pulumi-resource-pagerduty; see docs/sandbox.md")
        return provider_pb2.ConfigureResponse(
            acceptSecrets=True, supportsPreview=True, acceptResources=False, acceptOutputs=False
        )

    # -- resources -----------------------------------------------------------------

    @_rpc
    def Check(self, request: Any, context: Any) -> provider_pb2.CheckResponse:
        kind = _kind(request.type or request.urn)
        news, olds = decode(request.news), decode(request.olds)
        inputs = with_defaults(kind.schema, news)
        if "name" in kind.schema and inputs.get("name") is None:
            previous = reveal(olds.get("name"))
            inputs["name"] = autoname(_urn_name(request.urn), request.randomSeed, previous)
        plain = reveal(inputs)
        failures = check_values(kind.schema, plain) + kind.check(plain)
        for name, note in kind.deprecated.items():
            if plain.get(name) not in (None, ""):
                self._log.warning(
                    request.urn, f'verification warning: property "{name}" is deprecated: {note}'
                )
        return provider_pb2.CheckResponse(inputs=encode(inputs), failures=_failures(failures))

    @_rpc
    def Diff(self, request: Any, context: Any) -> provider_pb2.DiffResponse:
        kind = _kind(request.type or request.urn)
        olds = reveal(decode(request.olds))
        plan = self._plan(kind, reveal(decode(request.news)), olds, list(request.ignoreChanges))
        found = changes(kind.schema, plan, olds, kind.zero_is_null)
        extra = set(kind.replaces(plan, olds))
        detailed, replaces = {}, []
        for change in found:
            replace = change.replace or change.name in extra
            detailed[change.name] = provider_pb2.PropertyDiff(
                kind=_DIFF_KINDS[(change.kind, replace)], inputDiff=False
            )
            if replace:
                replaces.append(change.name)
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME
            if found
            else provider_pb2.DiffResponse.DIFF_NONE,
            diffs=[change.name for change in found],
            replaces=replaces,
            detailedDiff=detailed,
            hasDetailedDiff=True,
            deleteBeforeReplace=False,
        )

    @_rpc
    def Create(self, request: Any, context: Any) -> provider_pb2.CreateResponse:
        kind = _kind(request.type or request.urn)
        given = decode(request.properties)
        plan = self._plan(kind, reveal(given), None, [])
        if request.preview:
            return provider_pb2.CreateResponse(properties=encode(conceal_like(plan, given)))
        resource_id, outputs = kind.create(self._api_for(kind), plan, request.urn)
        return provider_pb2.CreateResponse(
            id=resource_id, properties=encode(conceal_like(outputs, given))
        )

    @_rpc
    def Read(self, request: Any, context: Any) -> provider_pb2.ReadResponse:
        kind = _kind(request.type or request.urn)
        stored, old_inputs = decode(request.properties), decode(request.inputs)
        outputs = kind.read(self._api_for(kind), request.id, reveal(stored))
        if outputs is None:
            return provider_pb2.ReadResponse(id="")
        inputs = _inputs_after_refresh(kind.schema, reveal(old_inputs), outputs)
        return provider_pb2.ReadResponse(
            id=request.id,
            properties=encode(conceal_like(outputs, stored)),
            inputs=encode(conceal_like(inputs, old_inputs)),
        )

    @_rpc
    def Update(self, request: Any, context: Any) -> provider_pb2.UpdateResponse:
        kind = _kind(request.type or request.urn)
        olds, given = reveal(decode(request.olds)), decode(request.news)
        plan = self._plan(kind, reveal(given), olds, list(request.ignoreChanges))
        if request.preview:
            preview = {**plan, "id": request.id}
            return provider_pb2.UpdateResponse(properties=encode(conceal_like(preview, given)))
        outputs = kind.update(self._api_for(kind), request.id, plan, olds, request.urn)
        return provider_pb2.UpdateResponse(properties=encode(conceal_like(outputs, given)))

    @_rpc
    def Delete(self, request: Any, context: Any) -> empty_pb2.Empty:
        kind = _kind(request.type or request.urn)
        kind.delete(self._api_for(kind), request.id, reveal(decode(request.properties)))
        return empty_pb2.Empty()

    @_rpc
    def Invoke(self, request: Any, context: Any) -> provider_pb2.InvokeResponse:
        lookup = LOOKUPS.get(request.tok)
        if lookup is None:
            raise ProviderError(f"the stand-in has no look-up {request.tok}")
        given = decode(request.args)
        result = lookup(self._api_for(None), reveal(given))
        if has_secret(given):
            result = {key: Secret(value) for key, value in result.items()}
        return provider_pb2.InvokeResponse(**{"return": encode(result)})

    # -- helpers -------------------------------------------------------------------

    def _plan(
        self,
        kind: ResourceType,
        news: dict[str, Any],
        olds: dict[str, Any] | None,
        ignore_changes: list[str],
    ) -> dict[str, Any]:
        plan = kind.adjust_plan(planned(kind.schema, news, olds), olds)
        for name in ignore_changes:
            if olds is not None and name in kind.schema:
                plan[name] = olds.get(name)
        problems = kind.plan_problems(plan, olds)
        if problems:
            raise ProviderError("; ".join(problems))
        return plan

    def _api_for(self, kind: ResourceType | None) -> Api:
        """The configured API; SDKv2 resources first check the token once (lazily, as
        the real SDKv2 half does)."""
        with self._lock:
            api, config = self._api, self._config
            check = (
                kind is not None
                and kind.zero_is_null
                and not self._heimweh_checked
                and config is not None
                and not config.skip_credentials_validation
            )
            if check:
                self._heimweh_checked = True
        if api is None:
            raise ProviderError("the provider was not configured (no Configure call came)")
        if check:
            try:
                api.sdkv2.get("/abilities")
            except RestError as error:
                with self._lock:
                    self._heimweh_checked = False
                raise ProviderError(
                    f"{error}\nNo valid credentials found for PagerDuty provider."
                ) from None
        return api


def _check_credentials_framework(api: Api) -> None:
    """The framework half's check at Configure: auth errors stop at once, others retry."""

    def attempt() -> None:
        try:
            api.framework.get("/abilities")
        except RestError as error:
            if error.status in (401, 403):
                raise
            raise RetryableError(error) from None

    try:
        retry_for(_CREDENTIALS_SECONDS, attempt, api.timing)
    except RestError as error:
        raise ProviderError(
            f"Failed to validate credentials with GET /abilities: {error}"
        ) from None


def _kind(type_or_urn: str) -> ResourceType:
    token = type_or_urn.rsplit("::", 2)[-2] if type_or_urn.startswith("urn:") else type_or_urn
    kind = RESOURCE_TYPES.get(token)
    if kind is None:
        raise ProviderError(f"the stand-in does not implement {token}")
    return kind


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _failures(failures: list[Failure]) -> list[provider_pb2.CheckFailure]:
    return [provider_pb2.CheckFailure(property=f.path, reason=labelled(f.reason)) for f in failures]


def _from_variables(variables: Mapping[str, str]) -> dict[str, Any]:
    """Old engines send `pagerduty:config:token`-style strings instead of `args`."""
    prefix = f"{PACKAGE}:config:"
    return {key[len(prefix) :]: value for key, value in variables.items() if key.startswith(prefix)}


def _inputs_after_refresh(
    schema: Schema, old_inputs: dict[str, Any], outputs: dict[str, Any]
) -> dict[str, Any]:
    """The inputs a refresh records: each input the program gave, as PagerDuty now has it."""
    return {
        name: outputs[name]
        if name in schema and not schema[name].output and name in outputs
        else value
        for name, value in old_inputs.items()
    }


def _init_failed(partial: PartialCreate) -> grpc.Status:
    """A create that made the object but could not read it: the engine records the id."""
    detail = any_pb2.Any()
    detail.Pack(
        provider_pb2.ErrorResourceInitFailed(
            id=partial.resource_id,
            properties=encode(partial.outputs),
            reasons=[labelled(str(partial))],
        )
    )
    status = status_pb2.Status(
        code=grpc.StatusCode.UNKNOWN.value[0], message=labelled(str(partial)), details=[detail]
    )
    return _Status(
        grpc.StatusCode.UNKNOWN,
        labelled(str(partial)),
        (("grpc-status-details-bin", status.SerializeToString()),),
    )


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def serve_forever(engine_address: str | None, out: Any = None) -> None:
    """Serve on a free loopback port, print it (the engine reads one line), wait to be killed."""
    from concurrent import futures

    engine_log = EngineLog()
    if engine_address:
        engine_log.connect(engine_address)
    provider = StandInProvider(engine_log=engine_log)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(provider, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stream = out or sys.stdout
    stream.write(f"{port}\n")
    stream.flush()
    logging.getLogger(__name__).debug(labelled(f"serving on 127.0.0.1:{port}"))
    server.wait_for_termination()
