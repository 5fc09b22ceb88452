"""What every resource type of the stand-in has, and what its REST calls are given.

A `ResourceType` is Terraform's resource: its schema (under the SDK's property
names), its plan-time checks (ValidateConfig, CustomizeDiff), extra replace rules,
and create/read/update/delete as REST calls. Values here are plain (secrets
revealed); the server wraps and unwraps them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from sandbox.pulumi_provider.properties import UNKNOWN
from sandbox.pulumi_provider.rest import RestClient, RestError
from sandbox.pulumi_provider.retry import RetryableError, Timing, retry_for
from sandbox.pulumi_provider.schema import Failure, Schema


class ProviderError(Exception):
    """A failed operation, with the text the user sees (the server labels it)."""


class PartialCreate(ProviderError):
    """The object was created but reading it back failed: Pulumi must still record it."""

    def __init__(self, message: str, resource_id: str, outputs: dict[str, Any]) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.outputs = outputs


@dataclass(frozen=True)
class Api:
    """The two Go clients' ways of calling PagerDuty, the waits, and warnings for the user."""

    sdkv2: RestClient
    framework: RestClient
    timing: Timing
    # (urn, message): a warning shown under the resource, as Terraform's warnings are.
    warn: Callable[[str, str], None]


class ResourceType:
    token: ClassVar[str]
    schema: ClassVar[Schema]
    # SDKv2 resources cannot tell unset from zero values; the plugin framework can.
    zero_is_null: ClassVar[bool] = True
    # Terraform's `Deprecated` message per property, shown when the program sets one.
    deprecated: ClassVar[dict[str, str]] = {}

    def check(self, inputs: dict[str, Any]) -> list[Failure]:
        """Checks beyond the schema's (ConflictsWith, ValidateConfig)."""
        return []

    def plan_problems(self, plan: dict[str, Any], prior: dict[str, Any] | None) -> list[str]:
        """Terraform's CustomizeDiff / ModifyPlan errors: they fail the preview or the update."""
        return []

    def adjust_plan(self, plan: dict[str, Any], prior: dict[str, Any] | None) -> dict[str, Any]:
        """ModifyPlan's changes to the plan (defaults only the server's plan knows)."""
        return plan

    def replaces(self, plan: dict[str, Any], prior: dict[str, Any]) -> list[str]:
        """Properties that replace the resource beyond ForceNew (RequiresReplaceIf)."""
        return []

    def create(self, api: Api, plan: dict[str, Any], urn: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def fetch(
        self, api: Api, resource_id: str, prior: dict[str, Any], gone_is_error: bool
    ) -> dict[str, Any] | None:
        """GET the object and make its state over `prior`; None when it is gone."""
        raise NotImplementedError

    def read(self, api: Api, resource_id: str, state: dict[str, Any]) -> dict[str, Any] | None:
        """The refreshed state, or None when PagerDuty no longer has the object."""
        return self.fetch(api, resource_id, state, gone_is_error=False)

    def read_created(
        self, api: Api, resource_id: str, plan: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """A create's read-back: a 404 right after the POST is retried, not taken as gone."""
        return read_back(
            resource_id,
            plan,
            lambda: self.fetch(api, resource_id, strip_unknowns(plan), gone_is_error=True),
        )

    def update(
        self, api: Api, resource_id: str, plan: dict[str, Any], prior: dict[str, Any], urn: str
    ) -> dict[str, Any]:
        raise NotImplementedError

    def delete(self, api: Api, resource_id: str, state: dict[str, Any]) -> None:
        raise NotImplementedError


def read_retrying(
    client: RestClient,
    timing: Timing,
    path: str,
    seconds: float,
    gone_is_error: bool,
    params: list[tuple[str, str]] | None = None,
    stop: tuple[int, ...] = (400,),
    pause: float = 0.0,
) -> Any:
    """A GET retried as the real reads are: `stop` statuses fail at once; a 404 means the
    object is gone (None), unless it was just created (`gone_is_error`: then it is retried
    like anything else, for `seconds`, `pause` more between tries)."""

    def attempt() -> Any:
        try:
            return client.get(path, params)
        except RestError as error:
            if error.status in stop:
                raise
            if error.not_found and not gone_is_error:
                return None
            if pause:
                timing.sleep(pause)
            raise RetryableError(error) from None

    return retry_for(seconds, attempt, timing)


def call_retrying(
    client: RestClient,
    timing: Timing,
    method: str,
    path: str,
    seconds: float,
    retry: Callable[[RestError], bool],
    body: Any = None,
    pause: float = 0.0,
    done: Callable[[RestError], bool] = lambda _error: False,
) -> Any:
    """A call in one of the resources' `retry.Retry` loops: errors `retry` picks are tried
    again (`pause` first) for `seconds`, errors `done` picks count as success (None)."""

    def attempt() -> Any:
        try:
            return client.call(method, path, body=body)
        except RestError as error:
            if done(error):
                return None
            if not retry(error):
                raise
            if pause:
                timing.sleep(pause)
            raise RetryableError(error) from None

    return retry_for(seconds, attempt, timing)


def delete_unless_gone(client: RestClient, path: str) -> None:
    """DELETE, taking a 404 as already done."""
    try:
        client.call("DELETE", path)
    except RestError as error:
        if not error.not_found:
            raise


def read_back(
    resource_id: str, plan: dict[str, Any], fetch: Callable[[], dict[str, Any] | None]
) -> tuple[str, dict[str, Any]]:
    """A create's read-back; if it fails the object still exists, so Pulumi must record it."""
    try:
        state = fetch()
    except (RestError, ProviderError) as error:
        raise PartialCreate(
            f"created {resource_id}, but reading it back failed: {error}",
            resource_id,
            {**strip_unknowns(plan), "id": resource_id},
        ) from None
    if state is None:
        raise PartialCreate(
            f"created {resource_id}, but PagerDuty does not show it",
            resource_id,
            {**strip_unknowns(plan), "id": resource_id},
        )
    return resource_id, state


def known(value: Any) -> Any:
    """None for a value only known after apply (a create's computed attributes)."""
    return None if value is UNKNOWN else value


def set_value(value: Any) -> Any:
    """Terraform's `GetOk`: the value if set to something other than its zero value."""
    value = known(value)
    if value in (None, "", [], {}) or value is False:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return None
    return value


def strip_unknowns(value: Any) -> Any:
    """A plan with its "known after apply" values as nothing (what a real create sees)."""
    if isinstance(value, dict):
        return {k: strip_unknowns(v) for k, v in value.items() if v is not UNKNOWN}
    if isinstance(value, list):
        return [strip_unknowns(v) for v in value]
    return value
