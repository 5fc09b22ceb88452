"""Scale benchmark: a real `pulumi up` of generated stacks against the sandbox, beside the
offline plan of the same files.

    python bench/pulumi_up_scale.py                  # 100 and 1,000 services
    python bench/pulumi_up_scale.py --sizes 100 300

For each size, bench/stack_scale.py's generator writes the stack file; then

- offline plan: what `apica-pd plan` does, timed in a fresh interpreter
  (bench/stack_scale.py's own child run);
- pulumi up: the real engine (tools/build.sh's CLI, which must be built) and the
  PagerDuty provider (the stand-in, or APICA_PD_PAGERDUTY_PLUGIN) creating every
  resource in a fresh sandbox, from a fresh stack with a file backend;
- no-change preview: `pulumi preview --refresh --expect-no-changes` right after (every
  resource read back, and no perpetual diff at this size);
- REST requests the provider made during the up. The sandbox's REST rate limit is off
  here so the figures are the engine's and provider's own; PagerDuty allows 960 requests
  a minute per key, so the last column is the least time the same up takes there.

`--skip-checkpoints` sets PULUMI_SKIP_CHECKPOINTS=true: the file backend then writes
the state once at the end instead of the whole snapshot after every step, which is
what makes a large first `up` slow (the checkpoint grows with every resource).

Prints a table (wall seconds; CPU seconds of the engine's processes after the slash)
and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apica_pagerduty.pulumi_engine import (  # noqa: E402
    PulumiProject,
    built_tools,
    choose_provider,
    cli_version,
)
from bench.stack_scale import generate_stack  # noqa: E402
from infra.validate import load_stack  # noqa: E402
from sandbox.pulumi_apply import account_seed  # noqa: E402
from sandbox.ratelimit import RateLimiter  # noqa: E402
from sandbox.seed import apply_seed  # noqa: E402
from sandbox.server import PagerDutySandbox  # noqa: E402

PAGERDUTY_REQUESTS_PER_MINUTE = 960


class CountingLimiter(RateLimiter):
    """No limit; counts the REST requests the sandbox was asked to admit."""

    def __init__(self) -> None:
        super().__init__(None)
        self.requests = 0

    def allow(self, key: str) -> bool:
        self.requests += 1
        return True


def offline_plan(path: Path, workdir: Path, timeout: float) -> tuple[float, int]:
    """(wall seconds, resources) of the offline plan, from bench/stack_scale.py's child."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "stack_scale.py"), "--child", "plan", str(path),
         str(workdir / f"{path.stem}.replay.json")],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"offline plan failed:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return row["plan"][0], row["resources"]


def timed(project: PulumiProject, *args: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one `pulumi` command and every process it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    project.run(*args)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(
    services: int, tools: Path, workdir: Path, timeout: float, engine_env: dict[str, str]
) -> dict[str, Any]:
    path = workdir / f"scale-{services}.yaml"
    path.write_text(generate_stack(services), encoding="utf-8")
    plan_s, resources = offline_plan(path, workdir, timeout)
    provider = choose_provider(workdir / "plugin")
    counter = CountingLimiter()
    sandbox = PagerDutySandbox()
    sandbox.rest_limiter = counter  # before start: the app takes it when it is built
    with sandbox as pd:
        apply_seed(pd.state, account_seed(load_stack(path)))
        project = PulumiProject.create(workdir / f"engine-{services}", tools, provider,
                                       extra_env=engine_env, timeout=timeout)
        project.init_stack("scale", pd.api_url, pd.token, path)
        up = timed(project, "up", "--yes", "--skip-preview")
        requests = counter.requests
        preview = timed(project, "preview", "--refresh", "--expect-no-changes")
        created = len(pd.state.services())
    if created != services:
        raise SystemExit(f"{services} services asked for, {created} in the sandbox")
    return {
        "services": services, "resources": resources, "plan": plan_s, "up": up,
        "preview": preview, "requests": requests, "provider": provider.label,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per command")
    parser.add_argument("--skip-checkpoints", action="store_true",
                        help="PULUMI_SKIP_CHECKPOINTS=true: no state write after every step")
    args = parser.parse_args()
    tools = built_tools()
    engine_env = {"PULUMI_SKIP_CHECKPOINTS": "true"} if args.skip_checkpoints else {}
    checkpoints = "skipped" if args.skip_checkpoints else "after every step (default)"
    print(f"engine: pulumi {cli_version(tools)} (tools/build.sh), file backend, checkpoints "
          f"{checkpoints}; sandbox REST limit off")
    header = (f"{'services':>8} {'resources':>9} {'offline plan s':>14} {'pulumi up s':>15} "
              f"{'no-change preview s':>19} {'REST requests':>13} {'at 960/min':>10}")
    with tempfile.TemporaryDirectory(prefix="pulumi-up-scale-") as tmp:
        for size in args.sizes:
            row = measure(size, tools, Path(tmp), args.timeout, engine_env)
            if size == args.sizes[0]:
                print(f"provider: {row['provider']}")
                print(header)
            floor = row["requests"] / PAGERDUTY_REQUESTS_PER_MINUTE * 60
            print(
                f"{size:>8} {row['resources']:>9} {row['plan']:>14.2f} "
                f"{row['up'][0]:>7.1f}/{row['up'][1]:<7.1f} "
                f"{row['preview'][0]:>9.1f}/{row['preview'][1]:<9.1f} "
                f"{row['requests']:>13} {floor:>9.0f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
