"""Offline plan: run the real program under Pulumi's mock runtime and record what it declares.

No Pulumi CLI, no provider plugin, no PagerDuty credentials. `run_program_offline`
sets `pulumi.runtime.set_mocks` with a recording monitor, runs the same
`infra.resources.run_program` that `infra/__main__.py` runs, waits for every
registration and stack output, and returns plain data: each registration (type,
logical name, inputs, parent, protect), each look-up, and the stack outputs with
secrets replaced by `[secret]`. `render_tree` and `to_json` present it for review.

The mock runtime keeps global state (settings, root stack); each run resets it, so
the runner can be called many times in one process.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pulumi
import yaml
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from infra.errors import InfraError

PROJECT = "apica-pagerduty"
SECRET = "[secret]"
_STACK_TYPE = "pulumi:pulumi:Stack"
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")

# Look-up tokens -> (short kind, the argument that names what is looked up).
LOOKUPS: dict[str, tuple[str, str]] = {
    "pagerduty:index/getVendor:getVendor": ("vendor", "name"),
    "pagerduty:index/getUser:getUser": ("user", "email"),
    "pagerduty:index/getSchedule:getSchedule": ("schedule", "name"),
    "pagerduty:index/getEscalationPolicy:getEscalationPolicy": ("escalation_policy", "name"),
    "pagerduty:index/getService:getService": ("service", "name"),
    "pagerduty:index/getTeam:getTeam": ("team", "name"),
}


def _fake_id(*parts: str) -> str:
    # Deterministic per input. Longer than PagerDuty's 7 characters on purpose: the plan
    # maps ids back to what they name, so ids must not collide even for 15,000 resources.
    return "P" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:15].upper()


class PlanMocks(Mocks):
    """Invent ids and integration keys; answer look-ups as if every name existed.

    `vendor_name` is what the Apica vendor look-up answers (tests use it to play an
    account where the look-up is ambiguous).
    """

    def __init__(self, vendor_name: str = "Apica") -> None:
        self.vendor_name = vendor_name

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id = _fake_id(args.typ, args.name)
        outputs = dict(args.inputs)
        if args.typ == "pagerduty:index/service:Service":
            outputs["htmlUrl"] = f"https://example.pagerduty.com/service-directory/{resource_id}"
        elif args.typ == "pagerduty:index/serviceIntegration:ServiceIntegration":
            # 32 hex characters: the shape of a real integration (routing) key.
            outputs["integrationKey"] = hashlib.sha256(args.name.encode()).hexdigest()[:32]
        return resource_id, outputs

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        kind, field_name = LOOKUPS.get(args.token, ("unknown", "name"))
        wanted = str(args.args.get(field_name) or "")
        result: dict[str, Any] = {"id": _fake_id(kind, wanted), field_name: wanted}
        if kind == "vendor":
            result["name"] = self.vendor_name
            result["type"] = "generic_events_api_inbound_integration"
        elif kind == "user":
            result["name"] = wanted.split("@")[0]
        return result, []


@dataclass(frozen=True)
class Registration:
    type: str
    name: str
    parent: str | None  # logical name of the parent resource, None for the stack
    protect: bool
    custom: bool
    inputs: dict[str, Any]
    id: str | None = None
    urn: str = field(repr=False, default="")
    parent_urn: str | None = field(repr=False, default=None)


@dataclass(frozen=True)
class Lookup:
    kind: str
    name: str
    id: str


@dataclass(frozen=True)
class StackOutput:
    name: str
    secret: bool
    value: Any  # SECRET when `secret`


@dataclass(frozen=True)
class OfflinePlan:
    stack: str
    registrations: tuple[Registration, ...]
    lookups: tuple[Lookup, ...]
    outputs: tuple[StackOutput, ...]

    def children(self) -> dict[str | None, list[Registration]]:
        """Registrations by parent URN (None: top level), each list in display order."""
        tree: dict[str | None, list[Registration]] = {}
        for registration in self.registrations:
            tree.setdefault(registration.parent_urn, []).append(registration)
        for siblings in tree.values():
            siblings.sort(key=_registration_order)
        return tree


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping each registration's parent and protect flag."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(_Tap(mocks))
        self._lock = threading.Lock()
        self.raw: list[tuple[Any, MockResourceArgs | None, str, str]] = []
        self.calls: list[tuple[MockCallArgs, dict[str, Any]]] = []

    def RegisterResource(self, request: Any) -> Any:
        tap: _Tap = self.mocks  # type: ignore[assignment]
        tap.local.args = None
        response = super().RegisterResource(request)
        if request.type != _STACK_TYPE:
            with self._lock:
                self.raw.append((request, tap.local.args, response.urn, response.id))
        return response

    def Invoke(self, request: Any) -> Any:
        tap: _Tap = self.mocks  # type: ignore[assignment]
        tap.local.call = None
        response = super().Invoke(request)
        if tap.local.call is not None:
            with self._lock:
                self.calls.append(tap.local.call)
        return response


class _Tap(Mocks):
    """Forwards to the real mocks, keeping the arguments on the calling (executor) thread."""

    def __init__(self, inner: Mocks) -> None:
        self.inner = inner
        self.local = threading.local()

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.local.args = args
        return self.inner.new_resource(args)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        answer = self.inner.call(args)
        result = answer if isinstance(answer, dict) else answer[0]
        self.local.call = (args, result)
        return answer


def run_under_mocks(
    program: Callable[[], object],
    mocks: Mocks | None = None,
    stack_name: str = "dev",
) -> OfflinePlan:
    """Run `program` under the mock runtime, wait for everything, return what it declared.

    Exceptions raised by the program or inside its applies (e.g. `pulumi.RunError`)
    propagate after the runtime has settled.
    """
    _quiet_expected_failures(_ensure_event_loop())
    monitor = RecordingMonitor(mocks or PlanMocks())
    # A fresh root stack per run: set_mocks only creates one when none exists.
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        monitor.mocks, project=PROJECT, stack=stack_name, preview=False, monitor=monitor
    )
    pulumi_settings.SETTINGS.outputs.clear()
    exported: dict[str, tuple[bool, Any]] = {}

    async def main() -> None:
        program()
        root = pulumi_settings.get_root_resource()
        outputs: Mapping[str, Any] = getattr(root, "outputs", {})
        for name, value in outputs.items():
            # from_input would wrap every nested value of a resolved dict in an Output.
            output = value if isinstance(value, pulumi.Output) else pulumi.Output.from_input(value)
            # Awaiting surfaces errors raised in applies, as `pulumi up` would.
            exported[name] = (await output.is_secret(), await output.future())

    # The SDK allocates heavily per registration, so the cyclic GC runs often; without
    # this, every full collection re-scans the stack model and plan we already hold
    # (measured: about 10% of a 1,000-service plan). New objects are collected as usual.
    gc.freeze()
    try:
        _sync_await(run_pulumi_func(main))
    finally:
        gc.unfreeze()
    return _collect(monitor, stack_name, exported)


def _quiet_expected_failures(loop: asyncio.AbstractEventLoop) -> None:
    """Drop asyncio's "exception was never retrieved" for program errors already raised.

    A failing apply fails every output that depends on it; the runner re-raises the
    error once, and the copies left in other futures would otherwise be printed with
    tracebacks when they are garbage-collected.
    """
    if getattr(loop, "_apica_quiet", False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), (pulumi.RunError, InfraError)):
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    loop._apica_quiet = True  # type: ignore[attr-defined]


def run_stack_file_offline(
    path: str | Path, stack_name: str | None = None, mocks: Mocks | None = None
) -> OfflinePlan:
    """Load, validate, plan and run the stack file's program under mocks.

    Raises `infra.errors.StackFileInvalid` for a bad file before Pulumi is touched.
    """
    from infra.resources import run_program
    from infra.validate import load_stack

    stack = load_stack(path)
    name = stack_name or Path(path).stem
    return run_under_mocks(lambda: run_program(stack, name), mocks, name)


# -- collecting ---------------------------------------------------------------------


def _collect(
    monitor: RecordingMonitor, stack_name: str, exported: Mapping[str, tuple[bool, Any]]
) -> OfflinePlan:
    by_urn = {urn: request.name for request, _, urn, _ in monitor.raw}
    refs: dict[str, str] = {}
    lookups: dict[tuple[str, str], Lookup] = {}
    for call, result in monitor.calls:
        kind, field_name = LOOKUPS.get(call.token, (call.token, "name"))
        name = str(call.args.get(field_name) or "")
        found = Lookup(kind, name, str(result.get("id") or ""))
        lookups[(kind, name)] = found
        if found.id:
            refs[found.id] = f"${{{kind}:{name}}}"
    for request, _, _, resource_id in monitor.raw:
        if resource_id:
            refs[resource_id] = f"${{{request.name}.id}}"

    registrations = []
    for request, args, urn, resource_id in monitor.raw:
        inputs = _readable(args.inputs if args else {}, refs)
        registrations.append(
            Registration(
                type=request.type,
                name=request.name,
                parent=by_urn.get(request.parent),
                protect=bool(request.protect) if request.HasField("protect") else False,
                custom=bool(request.custom),
                inputs=inputs,
                id=resource_id or None,
                urn=urn,
                parent_urn=request.parent if request.parent in by_urn else None,
            )
        )
    outputs = tuple(
        StackOutput(name, secret, SECRET if secret else _readable(value, refs))
        for name, (secret, value) in sorted(exported.items())
    )
    return OfflinePlan(
        stack=stack_name,
        registrations=tuple(sorted(registrations, key=lambda r: r.urn)),
        lookups=tuple(sorted(lookups.values(), key=lambda x: (x.kind, x.name))),
        outputs=outputs,
    )


def _readable(value: Any, refs: Mapping[str, str]) -> Any:
    """snake_case keys, ints back from floats, invented ids shown as what they refer to."""
    if isinstance(value, dict):
        return {
            _CAMEL.sub("_", key).lower(): _readable(item, refs)
            for key, item in value.items()
            if item is not None
        }
    if isinstance(value, list | tuple):
        return [_readable(item, refs) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return refs.get(value, value)
    return value


_TYPE_ORDER = ("EscalationPolicy", "ApicaService", "Service", "ServiceIntegration")


def _registration_order(registration: Registration) -> tuple[int, str]:
    short = registration.type.rsplit(":", 1)[-1]
    rank = _TYPE_ORDER.index(short) if short in _TYPE_ORDER else len(_TYPE_ORDER)
    return rank, registration.name


# -- presenting ---------------------------------------------------------------------


_INTERNAL = ("urn", "parent_urn")


def to_json(plan: OfflinePlan) -> str:
    data = {
        "stack": plan.stack,
        "resources": [
            {key: value for key, value in asdict(r).items() if key not in _INTERNAL}
            for r in plan.registrations
        ],
        "lookups": [asdict(lookup) for lookup in plan.lookups],
        "outputs": {o.name: {"secret": o.secret, "value": o.value} for o in plan.outputs},
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def render_tree(plan: OfflinePlan) -> str:
    """A reviewer's view: resources with their children and inputs, look-ups, outputs."""
    lines = [
        f"stack {plan.stack}: {len(plan.registrations)} resources, "
        f"{len(plan.lookups)} look-ups (ids below are placeholders)"
    ]

    children = plan.children()

    def walk(parent: str | None, depth: int) -> None:
        for reg in children.get(parent, ()):
            pad = "  " * depth
            flags = "  [protect]" if reg.protect else ""
            lines.append(f"{pad}+ {reg.type}  {reg.name}{flags}")
            for key, value in sorted(reg.inputs.items()):
                lines.extend(_field(f"{pad}    ", key, value))
            walk(reg.urn, depth + 1)

    walk(None, 0)
    if plan.lookups:
        lines.append("look-ups (must exist in PagerDuty):")
        lines += [f"  {lookup.kind}: {lookup.name}" for lookup in plan.lookups]
    if plan.outputs:
        lines.append("outputs:")
        for output in plan.outputs:
            lines += _field("  ", output.name, output.value)
    return "\n".join(lines) + "\n"


_INLINE_WIDTH = 72
# libyaml's emitter when PyYAML has it: several times faster on 5,000-service trees.
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _field(pad: str, key: str, value: Any) -> list[str]:
    """`key: value` on one line when short, else the value as indented YAML below it."""
    inline = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if isinstance(value, str) or len(inline) <= _INLINE_WIDTH:
        return [f"{pad}{key}: {inline}"]
    block = yaml.dump(value, Dumper=_YAML_DUMPER, default_flow_style=False, sort_keys=True)
    return [f"{pad}{key}:"] + [f"{pad}  {line}" for line in block.splitlines()]


def plan_command(
    path: str | Path,
    *,
    as_json: bool = False,
    stack_name: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    mocks: Mocks | None = None,
) -> int:
    """`apica-pd plan FILE`: print the offline plan; 1 with the problems for a bad file."""
    from infra.errors import StackError

    out, err = out or sys.stdout, err or sys.stderr
    try:
        plan = run_stack_file_offline(path, stack_name, mocks)
    except StackError as exc:
        print(str(exc), file=err)
        return 1
    except pulumi.RunError as exc:
        # The program refused the stack (e.g. an invalid routes file): say why, no traceback.
        print(f"{path}: {exc}", file=err)
        return 1
    out.write(to_json(plan) if as_json else render_tree(plan))
    return 0
