"""Scale benchmark: validate and offline plan of generated stacks vs the Pulumi SDK's floor.

    python bench/stack_scale.py                  # 100, 1,000 and 5,000 services
    python bench/stack_scale.py --sizes 100 1000

For each size a stack file is generated in a temp dir. Every measurement runs in a
fresh interpreter (no run inherits another's heap or mock-runtime state) and is timed
inside it, after imports, as wall and CPU seconds:

- validate: `infra.validate.load_stack` (YAML -> validated, resolved Stack);
- plan: what `apica-pd plan` does: load, plan, run the program under the mock runtime
  with the recording monitor, collect, render the tree;
- floor: a bare program that replays the same registrations (types, names, parents,
  protect, inputs, references between them), the same look-ups and the same exported
  values (per service id, URL, secret key) under the same `PreviewMocks` with the SDK's
  own mock monitor: no code of ours.

Prints a table and asserts nothing about time. Targets: validate(1,000) < 1 s, plan
within 1.5x of the floor. CPU seconds are the steadier figure on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
USERS, SCHEDULES, TEAMS = 20, 10, 5
_REF = re.compile(r"^\$\{(.+)\}$")


def generate_stack(services: int) -> str:
    """`services` services sharing services/20 policies; urgency and grouping shapes mixed."""
    policies = max(2, services // 20)
    lines = ["defaults:", "  urgency: severity_based", "  auto_resolve_timeout: 4h", ""]
    lines.append("escalation_policies:")
    for p in range(policies):
        lines += [
            f"  policy-{p}:",
            f"    name: Policy {p}",
            "    loops: 2",
            f"    team: Team {p % TEAMS}",
            "    rules:",
            "      - delay: 30m",
            f"        targets: [{{schedule: Schedule {p % SCHEDULES}}}]",
            "      - delay: 15m",
            "        assignment: round_robin",
            f"        targets: [{{user: user{p % USERS}@example.com}}, "
            f"{{user: user{(p + 1) % USERS}@example.com}}]",
        ]
    lines.append("services:")
    for s in range(services):
        lines += [
            f"  svc-{s}:",
            f"    name: Service {s}",
            f"    escalation_policy: policy-{s % policies}",
        ]
        if s % 4 == 1:
            lines += [
                "    urgency:",
                "      support_hours: {time_zone: Europe/Berlin, days: [mon, tue, wed, thu, fri],"
                ' start: "09:00", end: "17:00"}',
            ]
        if s % 3 == 1:
            lines.append("    alert_grouping: {type: time, timeout: 15m}")
        elif s % 3 == 2:
            lines.append("    alert_grouping: {type: intelligent, time_window: 5m}")
        lines += [
            "    integration:",
            f"      checks: {{ids: [{2 * s}, {2 * s + 1}], tags: ['Service: {s}']}}",
        ]
    return "\n".join(lines) + "\n"


# -- children (run in a fresh interpreter each) -------------------------------------


def child_plan(path: str, replay: str) -> dict[str, Any]:
    """Time validate and the whole offline plan; save the registrations for the floor."""
    import pulumi_pagerduty  # noqa: F401  (imports are not what we time)

    from infra.preview import preview_stack_file
    from infra.preview_render import render_tree
    from infra.validate import load_stack

    w0, c0 = time.perf_counter(), time.process_time()
    load_stack(path)
    w1, c1 = time.perf_counter(), time.process_time()
    preview = preview_stack_file(path)
    render_tree(preview)
    w2, c2 = time.perf_counter(), time.process_time()
    registrations = [
        {
            "type": r.type,
            "name": r.name,
            "parent": r.parent,
            "protect": r.protect,
            "inputs": r.inputs,
        }
        for r in preview.registrations
    ]
    lookups = [[x.kind, x.name] for x in preview.lookups]
    Path(replay).write_text(json.dumps({"registrations": registrations, "lookups": lookups}))
    return {
        "validate": [w1 - w0, c1 - c0],
        "plan": [w2 - w1, c2 - c1],
        "resources": len(registrations),
    }


def child_floor(replay: str) -> dict[str, Any]:
    """Replay the registrations with the bare SDK under the same mocks; time it."""
    import pulumi
    import pulumi_pagerduty as pd

    from infra.mock_runtime import run_main, set_fresh_mocks
    from infra.preview import PreviewMocks

    data = json.loads(Path(replay).read_text())
    set_fresh_mocks(PreviewMocks(), "floor")
    invoke = {
        "user": lambda n: pd.get_user_output(email=n),
        "schedule": lambda n: pd.get_schedule_output(name=n),
        "team": lambda n: pd.get_team_output(name=n),
        "vendor": lambda n: pd.get_vendor_output(name=n),
        "service": lambda n: pd.get_service_output(name=n),
        "escalation_policy": lambda n: pd.get_escalation_policy_output(name=n),
    }
    classes = {
        "pagerduty:index/escalationPolicy:EscalationPolicy": pd.EscalationPolicy,
        "pagerduty:index/service:Service": pd.Service,
        "pagerduty:index/serviceIntegration:ServiceIntegration": pd.ServiceIntegration,
    }
    # Parents before children, policies before services: any program's order.
    order = sorted(
        data["registrations"],
        key=lambda r: (not r["type"].endswith("EscalationPolicy"), r["parent"] is not None),
    )

    def program() -> None:
        ids = {f"{kind}:{name}": invoke[kind](name).id for kind, name in data["lookups"]}
        made: dict[str, Any] = {}

        def wire(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: wire(v) for k, v in value.items()}
            if isinstance(value, list):
                return [wire(v) for v in value]
            match = _REF.match(value) if isinstance(value, str) else None
            if match is None:
                return value
            ref = match.group(1)
            return made[ref[:-3]].id if ref.endswith(".id") else ids[ref]

        exported = []
        for reg in order:
            parent = made.get(reg["parent"])
            opts = pulumi.ResourceOptions(parent=parent, protect=reg["protect"])
            if reg["type"] not in classes:
                made[reg["name"]] = pulumi.ComponentResource(reg["type"], reg["name"], None, opts)
                continue
            integration = reg["type"].endswith("ServiceIntegration")
            if integration:
                opts.additional_secret_outputs = ["integration_key"]
            made[reg["name"]] = res = classes[reg["type"]](
                reg["name"], **wire(reg["inputs"]), opts=opts
            )
            if integration:
                ref = _REF.match(reg["inputs"]["service"]).group(1)  # type: ignore[union-attr]
                service = made[ref[:-3]] if ref.endswith(".id") else None
                sid = service.id if service else ids[ref]
                url = service.html_url if service else None
                key = pulumi.Output.secret(res.integration_key)
                parent.register_outputs({"service_id": sid, "service_url": url, "key": key})
                exported.append((sid, url, key))
        pulumi.export("services", pulumi.Output.all(*[x for e in exported for x in e[:2]]))
        pulumi.export("keys", pulumi.Output.secret(pulumi.Output.all(*[e[2] for e in exported])))

    async def main() -> None:
        program()
        root = pulumi.runtime.get_root_resource()
        for value in root.outputs.values():  # type: ignore[union-attr]
            await pulumi.Output.from_input(value).future()

    w0, c0 = time.perf_counter(), time.process_time()
    run_main(main)
    return {"floor": [time.perf_counter() - w0, time.process_time() - c0]}


# -- driver -------------------------------------------------------------------------


def _child(args: list[str], timeout: float) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(services: int, workdir: Path, timeout: float) -> dict[str, Any]:
    """(wall, cpu) seconds of validate, plan and floor for one generated stack."""
    path = workdir / f"scale-{services}.yaml"
    replay = workdir / f"scale-{services}.replay.json"
    path.write_text(generate_stack(services), encoding="utf-8")
    planned = _child(["plan", str(path), str(replay)], timeout)
    floor = _child(["floor", str(replay)], timeout)
    return {"services": services, **planned, **floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--timeout", type=float, default=900, help="seconds per child run")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        kind, *rest = args.child
        print(json.dumps(child_plan(*rest) if kind == "plan" else child_floor(*rest)))
        return

    print("seconds as wall/CPU; plan/floor as wall/CPU ratios")
    print(
        f"{'services':>8} {'resources':>9} {'validate s':>13} {'plan s':>13} "
        f"{'floor s':>13} {'plan/floor':>11}"
    )
    with tempfile.TemporaryDirectory(prefix="stack-scale-") as tmp:
        for size in args.sizes:
            row = measure(size, Path(tmp), args.timeout)
            cells = " ".join(
                f"{row[k][0]:>6.2f}/{row[k][1]:<6.2f}" for k in ("validate", "plan", "floor")
            )
            ratio = f"{row['plan'][0] / row['floor'][0]:.2f}/{row['plan'][1] / row['floor'][1]:.2f}"
            print(f"{size:>8} {row['resources']:>9} {cells} {ratio:>11}", flush=True)


if __name__ == "__main__":
    main()
