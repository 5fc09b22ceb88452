"""The offline preview: what the real program declares, as plain data for review.

No Pulumi CLI, no provider plugin, no PagerDuty credentials. `preview_stack_file`
loads and validates a stack file, runs the same `infra.resources.run_program` that
`infra/__main__.py` runs under the mock runtime (`infra.mock_runtime`) with
`PreviewMocks`, which invent ids and answer every look-up, and returns a `Preview`:
each registration (type, logical name, inputs, parent, protect), each look-up, and
the stack outputs with secrets replaced by `[secret]`. Invented ids in inputs are
shown as what they refer to (`${policy-web.id}`, `${user:ann@example.com}`). A
resource with an `import_` id (an `adopt:` of the stack file) keeps that id and is
marked as an import: `pulumi up` adopts the PagerDuty object instead of creating one.
`infra.preview_render` presents it; `apica-pd plan` prints it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from infra.mock_runtime import MockRun, as_python, run_under_mocks
from infra.provider_lookups import LOOKUPS, not_found, pick

SECRET = "[secret]"


def _fake_id(*parts: str) -> str:
    # Deterministic per input. Longer than PagerDuty's 7 characters on purpose: the
    # preview maps ids back to what they name, so ids must not collide even for 15,000.
    return "P" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:15].upper()


class PreviewMocks(Mocks):
    """Invent ids and integration keys; answer look-ups from a made-up account.

    Without `account`, every look-up finds what it asks for, spelt as asked. `account`
    maps a look-up kind (`vendor`, `user`, `schedule`, `team`, `escalation_policy`,
    `service`) to what exists of it (names; e-mails for users): look-ups of those
    kinds then match as the provider does (`infra.provider_lookups`) and fail with
    its message. Tests use it to play accounts; kinds it leaves out find everything.
    """

    def __init__(self, account: Mapping[str, Sequence[str]] | None = None) -> None:
        self.account = dict(account or {})

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        # An adopted resource keeps its PagerDuty id (an integration's is after the dot).
        resource_id = (
            args.resource_id.rsplit(".", 1)[-1]
            if args.resource_id
            else _fake_id(args.typ, args.name)
        )
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
        found = wanted
        if kind in self.account:
            known = [{field_name: name, "name": name} for name in self.account[kind]]
            item = pick(kind, [known], wanted)
            if item is None:
                raise not_found(kind, wanted, known)
            found = str(item[field_name])
        result: dict[str, Any] = {"id": _fake_id(kind, found), field_name: found}
        if kind == "vendor":
            result["type"] = "generic_events_api_inbound_integration"
        elif kind == "user":
            result["name"] = found.split("@")[0]
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
    #: The `import_` id: `pulumi up` adopts this PagerDuty object instead of creating one.
    import_id: str | None = None
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
class Preview:
    """Everything one run of the program declared, in a stable order."""

    stack: str
    registrations: tuple[Registration, ...]
    lookups: tuple[Lookup, ...]
    outputs: tuple[StackOutput, ...]

    @property
    def imports(self) -> tuple[Registration, ...]:
        """PagerDuty objects `pulumi up` adopts (imports)."""
        return tuple(r for r in self.registrations if r.custom and r.import_id)

    @property
    def creates(self) -> tuple[Registration, ...]:
        """PagerDuty objects `pulumi up` creates (components are only Pulumi's)."""
        return tuple(r for r in self.registrations if r.custom and not r.import_id)

    def children(self) -> dict[str | None, list[Registration]]:
        """Registrations by parent URN (None: top level), each list in display order."""
        tree: dict[str | None, list[Registration]] = {}
        for registration in self.registrations:
            tree.setdefault(registration.parent_urn, []).append(registration)
        for siblings in tree.values():
            siblings.sort(key=_registration_order)
        return tree


def preview_program(
    program: Callable[[], object], mocks: Mocks | None = None, stack_name: str = "dev"
) -> Preview:
    """Run `program` under mocks (`PreviewMocks` unless given) and collect what it declared."""
    return _collect(run_under_mocks(program, mocks or PreviewMocks(), stack_name), stack_name)


def preview_stack_file(
    path: str | Path, stack_name: str | None = None, mocks: Mocks | None = None
) -> Preview:
    """Load, validate and run the stack file's program under mocks.

    Raises `infra.errors.StackFileInvalid` for a bad file before Pulumi is touched.
    """
    from infra.resources import run_program
    from infra.validate import load_stack

    stack = load_stack(path)
    name = stack_name or Path(path).stem
    return preview_program(lambda: run_program(stack, name), mocks, name)


# -- collecting ---------------------------------------------------------------------


def _collect(run: MockRun, stack_name: str) -> Preview:
    by_urn = {reg.urn: reg.request.name for reg in run.registrations}
    refs: dict[str, str] = {}
    lookups: dict[tuple[str, str], Lookup] = {}
    for call, result in run.calls:
        kind, field_name = LOOKUPS.get(call.token, (call.token, "name"))
        name = str(call.args.get(field_name) or "")
        found = Lookup(kind, name, str(result.get("id") or ""))
        lookups[(kind, name)] = found
        if found.id:
            refs[found.id] = f"${{{kind}:{name}}}"
    for reg in run.registrations:
        if reg.id:
            refs[reg.id] = f"${{{reg.request.name}.id}}"

    def readable(value: Any) -> Any:
        return as_python(value, lambda text: refs.get(text, text))

    registrations = []
    for request, args, urn, resource_id in run.registrations:
        registrations.append(
            Registration(
                type=request.type,
                name=request.name,
                parent=by_urn.get(request.parent),
                protect=bool(request.protect) if request.HasField("protect") else False,
                custom=bool(request.custom),
                inputs=readable(args.inputs if args else {}),
                id=resource_id or None,
                import_id=request.importId or None,
                urn=urn,
                parent_urn=request.parent if request.parent in by_urn else None,
            )
        )
    outputs = tuple(
        StackOutput(name, secret, SECRET if secret else readable(value))
        for name, (secret, value) in sorted(run.outputs.items())
    )
    return Preview(
        stack=stack_name,
        registrations=tuple(sorted(registrations, key=lambda r: r.urn)),
        lookups=tuple(sorted(lookups.values(), key=lambda x: (x.kind, x.name))),
        outputs=outputs,
    )


_TYPE_ORDER = (
    "EscalationPolicy",
    "ApicaService",
    "Service",
    "AlertGroupingSetting",
    "ServiceIntegration",
)


def _registration_order(registration: Registration) -> tuple[int, str]:
    short = registration.type.rsplit(":", 1)[-1]
    rank = _TYPE_ORDER.index(short) if short in _TYPE_ORDER else len(_TYPE_ORDER)
    return rank, registration.name
