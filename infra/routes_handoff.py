"""Key hand-off: the secret stack output `bridge_routes` -> a validated routes file on disk.

`pulumi stack output --json --show-secrets --stack NAME` prints every output of the
stack as one JSON object; `bridge_routes` in it is the routes file (as an object, or
as a JSON string when the program exported text). It is validated with the bridge's
own model and written atomically with mode 0600 (`contract.routes_file.write_routes_file`).
Written over an existing routes file, a route's changed key is carried into its
previous keys (`infra.previous_keys`). Errors are one line, name what to do, and never
contain an integration key.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from contract.errors import RoutesFileError
from contract.redact import last4, mask_keys
from contract.routes_file import RoutesFile, load_routes_file, parse_routes, write_routes_file
from contract.vocabulary import DEFAULT_ROUTES_FILE
from infra.errors import InfraError
from infra.messages import escape
from infra.previous_keys import (
    Integrations,
    carry_previous_keys,
    check_previous_keys,
    forget_previous_keys,
)

OUTPUT_NAME = "bridge_routes"
DEFAULT_OUT = Path(DEFAULT_ROUTES_FILE)
PULUMI_TIMEOUT = 120.0

Runner = Callable[..., subprocess.CompletedProcess[str]]


class HandoffError(InfraError):
    """A hand-off that cannot finish; `str()` is one line meant for the user."""


class Installed(NamedTuple):
    """What was written where, and what was decided about previous keys."""

    routes: RoutesFile
    path: Path
    notes: tuple[str, ...]


def pull_routes(
    stack: str,
    out: Path = DEFAULT_OUT,
    cwd: Path | None = None,
    run: Runner = subprocess.run,
    *,
    forget_previous: bool = False,
    integrations: Integrations | None = None,
) -> Installed:
    """Read `bridge_routes` from the stack with the Pulumi CLI, validate it, write it."""
    outputs = read_stack_outputs(stack, cwd, run)
    source = f"stack {stack!r} output {OUTPUT_NAME!r}"
    return install_routes(extract_routes(outputs, source), out, source,
                          forget_previous=forget_previous, integrations=integrations)


def install_routes(
    text: str,
    out: Path,
    source: str,
    *,
    forget_previous: bool = False,
    integrations: Integrations | None = None,
) -> Installed:
    """Validate routes-file JSON from `source` and write it to `out` (atomic, 0600).

    Over an existing routes file, changed keys are carried as previous keys; those
    whose integration PagerDuty no longer has are dropped (`integrations`: None when no
    REST token is at hand), or all of them with `forget_previous`.
    """
    try:
        routes = parse_routes(text, source)
    except RoutesFileError as exc:
        raise HandoffError(_one_line(str(exc))) from None
    old, unreadable = _existing(out)
    carried = carry_previous_keys(old, routes)
    if forget_previous:
        handed = forget_previous_keys(carried.routes)
        notes = (*unreadable, *handed.notes)
    else:
        handed = check_previous_keys(carried.routes, integrations)
        notes = (*unreadable, *carried.notes, *handed.notes)
    try:
        return Installed(handed.routes, write_routes_file(out, handed.routes), notes)
    except OSError as exc:
        raise HandoffError(f"cannot write {out}: {exc.strerror}") from None


def _existing(out: Path) -> tuple[RoutesFile | None, tuple[str, ...]]:
    """The routes file being written over (None if there is none), and a note if it
    cannot be read."""
    if not out.exists():
        return None, ()
    try:
        return load_routes_file(out), ()
    except RoutesFileError as exc:
        return None, (f"the existing {out} is not a routes file this release reads "
                      f"({_one_line(str(exc))[:200]}): no previous keys carried from it",)


def read_stack_outputs(stack: str, cwd: Path | None = None, run: Runner = subprocess.run) -> str:
    """The stack's outputs as JSON text, secrets shown, from the `pulumi` on PATH."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise HandoffError(
            "the Pulumi CLI (`pulumi`) is not on PATH: install it "
            "(https://www.pulumi.com/docs/install/) or pipe the output into "
            "`apica-pd routes install -`"
        )
    command = [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack]
    try:
        done = run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=PULUMI_TIMEOUT,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        )
    except subprocess.TimeoutExpired:
        raise HandoffError(
            f"`pulumi stack output` did not answer in {PULUMI_TIMEOUT:.0f} s"
        ) from None
    except OSError as exc:
        raise HandoffError(f"cannot run {pulumi}: {exc.strerror}") from None
    if done.returncode != 0:
        raise HandoffError(_pulumi_failure(stack, done.stderr))
    return done.stdout


def extract_routes(outputs_json: str, source: str) -> str:
    """The `bridge_routes` value out of `pulumi stack output --json`, as routes-file text."""
    try:
        outputs: Any = json.loads(outputs_json)
    except ValueError:
        raise HandoffError(f"{source}: `pulumi stack output --json` did not print JSON") from None
    if not isinstance(outputs, dict) or OUTPUT_NAME not in outputs:
        names = ", ".join(sorted(outputs)) if isinstance(outputs, dict) and outputs else "none"
        raise HandoffError(
            f"{source}: the stack has no output {OUTPUT_NAME!r} (its outputs: {names}); "
            "run `pulumi up` with this project's program first"
        )
    value = outputs[OUTPUT_NAME]
    if value == "[secret]":
        raise HandoffError(f"{source}: Pulumi printed '[secret]': --show-secrets was not honoured")
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    raise HandoffError(
        f"{source}: must be a JSON object or a JSON string, not {type(value).__name__}"
    )


def routes_text(text: str, source: str) -> str:
    """Routes-file text from piped input: the routes file itself, or a whole
    `pulumi stack output --json` (then its `bridge_routes` is taken)."""
    try:
        data = json.loads(text)
    except ValueError:
        return text  # parse_routes names the problem
    if isinstance(data, dict) and OUTPUT_NAME in data and "version" not in data:
        return extract_routes(text, source)
    return text


def summary(routes: RoutesFile, path: Path, notes: tuple[str, ...] = ()) -> str:
    """What was written: one line per route, keys by their last four characters, then
    what was decided about previous keys."""
    lines = [
        f"wrote {len(routes.routes)} route(s) for stack {routes.stack!r} to {path} (mode 0600)"
    ]
    width = max((len(name) for name in routes.routes), default=0)
    for name, route in routes.routes.items():
        key = last4(route.routing_key.get_secret_value())
        line = f"  {name.ljust(width)}  {route.service_name}  key {key}"
        if route.previous_routing_keys:
            line += "  previous " + ", ".join(
                last4(p.routing_key.get_secret_value()) for p in route.previous_routing_keys)
        lines.append(line)
    if routes.catch_all:
        lines.append(f"  catch-all: {routes.catch_all}")
    lines += [f"note: {note}" for note in notes]
    return "\n".join(escape(line) for line in lines)


def _pulumi_failure(stack: str, stderr: str) -> str:
    # Anything shaped like an integration key is masked in text we pass on from Pulumi.
    text = mask_keys(stderr or "")
    if "no stack named" in text:
        return (
            f"stack {stack!r} does not exist (pulumi: no stack named it); check --stack and --cwd"
        )
    errors = [line.strip() for line in text.splitlines() if line.strip().startswith("error:")]
    detail = errors[0] if errors else (_one_line(text) or "no message")
    return f"`pulumi stack output` failed for stack {stack!r}: {detail}"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]
