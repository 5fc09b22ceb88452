"""`apica-pd demo`: the whole pipeline on one machine, no PagerDuty account.

sandbox (local PagerDuty) -> the real program applies stacks/example.yaml to it ->
routes hand-off -> the real bridge (its own process, SQLite outbox in a temp dir) ->
ASM webhooks rendered from the printed target set-up -> incidents checked against
what the stack file and the alerts imply. Then ASM's own state (a fake ASM API on
loopback): the bridge is stopped, a check fails unseen and is repaired from ASM's
state when the bridge is back; a check fails during a maintenance window and pages
when the window ends.


The program runs under the real Pulumi engine when tools/build.sh has built the CLI
(PagerDuty provider: the stand-in, or APICA_PD_PAGERDUTY_PLUGIN), then `apica-pd
routes pull` hands the keys over; otherwise under Pulumi's mock runtime, whose mocks
call the sandbox's REST API. The output names the engine and the provider.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import requests

DEFAULT_STACK = Path(__file__).resolve().parent.parent / "stacks" / "example.yaml"
BRIDGE_START_TIMEOUT = 30.0
DELIVERY_TIMEOUT = 30.0
#: How long the demo's maintenance window stays open after the bridge is back (seconds).
WINDOW_SECONDS = 8


@dataclass(frozen=True)
class Expected:
    service: str
    urgency: str
    status: str


@dataclass(frozen=True)
class Story:
    """One check's life as ASM reports it, and the incidents it must leave behind."""

    title: str
    check_id: int
    check_name: str
    route: str | None  # None: post to /v1/asm and let the bridge route by check id
    severities: tuple[str, ...]  # ASM new severities in order; "I" = back to normal
    expected: tuple[Expected, ...]  # in the order the incidents open


# Written for stacks/example.yaml: its services, check ids, urgency rules and catch-all.
STORIES = (
    Story("a fatal check pages at high urgency", 150, "Search API", "search", ("F",),
          (Expected("Search", "high", "triggered"),)),
    Story("a warning that escalates to error is re-raised at high urgency", 151,
          "Search suggestions", "search", ("W", "E"),
          (Expected("Search", "low", "resolved"), Expected("Search", "high", "triggered"))),
    Story("a check that recovers resolves its incident", 200, "Legacy login", "legacy-web",
          ("E", "I"), (Expected("Legacy Web", "high", "resolved"),)),
    Story("a check no service claims goes to the catch-all route", 4242, "Careers page", None,
          ("F",), (Expected("Status Page", "low", "triggered"),)),
)

# ASM's own state (issue 14), on the search route (severity-based urgency, claims the
# tag "Env: Search"): played by `_play_asm_state`, not as webhooks alone.
GAP = Story("a webhook lost while the bridge was down is repaired from ASM's state", 152,
            "Search index", "search", ("F",), (Expected("Search", "high", "triggered"),))
HELD = Story("a check failing through a maintenance window pages when it ends", 153,
             "Search autocomplete", "search", ("F",), (Expected("Search", "high", "triggered"),))
ALL_STORIES = (*STORIES, GAP, HELD)
WINDOW = "demo-deploy"


class DemoFailed(Exception):
    """A step of the demo did not do what it should; the message says which."""


@dataclass(frozen=True)
class Engine:
    """What applies the stack: the real Pulumi CLI (`tools` is its bin dir) or the mocks."""

    tools: Path | None
    description: str
    why: str = ""  # why not the real engine


ENGINE_CHOICES = ("auto", "pulumi", "mock")


def choose_engine(requested: str, find_tools: Callable[[], Path] | None = None) -> Engine:
    """`pulumi` when asked or, for `auto`, when tools/build.sh has built the CLI; else mocks."""
    from apica_pagerduty.pulumi_engine import ToolsNotBuilt, built_tools, cli_version

    if requested == "mock":
        return Engine(None, "Pulumi's mock runtime", "--engine mock")
    try:
        tools = (find_tools or built_tools)()
    except ToolsNotBuilt as exc:
        if requested == "pulumi":
            raise DemoFailed(f"--engine pulumi: {exc}") from None
        return Engine(None, "Pulumi's mock runtime", f"the Pulumi CLI is {exc}")
    version = cli_version(tools)
    return Engine(tools, f"the real Pulumi engine (pulumi {version} from tools/build.sh)")


@dataclass(frozen=True)
class DemoRun:
    incidents: list[dict[str, Any]]
    engine: str
    provider: str


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline locally against a PagerDuty sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--keep", metavar="DIR", type=Path,
                        help="keep the routes file, outbox and logs in DIR")
    parser.add_argument("--engine", choices=ENGINE_CHOICES, default="auto",
                        help="pulumi: the CLI tools/build.sh built; mock: Pulumi's mock "
                             "runtime; auto (default): pulumi if built, else mock")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        run = run_demo(work_dir=args.keep, engine=args.engine)
    except DemoFailed as exc:
        print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"\nDemo passed: {len(run.incidents)} incidents as the stack file and alerts imply.\n"
          f"  engine:   {run.engine}\n  provider: {run.provider}")
    return 0


def run_demo(
    work_dir: Path | None = None,
    out: TextIO = sys.stdout,
    engine: str = "auto",
    find_tools: Callable[[], Path] | None = None,
) -> DemoRun:
    """Run every step; the sandbox's incidents, DemoFailed on any difference."""
    from infra.errors import StackError
    from infra.validate import load_stack
    from sandbox.pulumi_apply import account_seed
    from sandbox.seed import apply_seed
    from sandbox.server import PagerDutySandbox

    chosen = choose_engine(engine, find_tools)
    with _work_dir(work_dir) as work, PagerDutySandbox() as sandbox:
        _step(out, f"PagerDuty sandbox listening on {sandbox.url}")
        try:
            stack = load_stack(DEFAULT_STACK)
        except StackError as exc:
            raise DemoFailed(f"the embedded stack file is invalid:\n{exc}") from None
        apply_seed(sandbox.state, account_seed(stack))
        if chosen.tools is None:
            routes, routes_path = _apply_with_mocks(stack, sandbox, work, chosen, out)
            provider = "none (the mocks call the sandbox's REST API as the provider would)"
        else:
            routes, routes_path, provider = _apply_with_pulumi(chosen, sandbox, work, out)
        incidents = play_stories(sandbox, routes, routes_path, work, out)
        engine_ran = f"{chosen.description} ({chosen.why})" if chosen.why else chosen.description
        return DemoRun(incidents, engine_ran, provider)


def play_stories(
    sandbox: Any, routes: Any, routes_path: Path, work: Path, out: TextIO
) -> list[dict[str, Any]]:
    """The bridge as its own process on `routes_path`, every story's webhooks, the incidents.

    Then ASM's own state: one repaired gap and one maintenance catch-up (`_play_asm_state`).
    Raises DemoFailed when the incidents differ from what ALL_STORIES imply.
    """
    from sandbox.view import render_incidents

    token = secrets.token_urlsafe(24)
    _step(out, "starting the bridge (separate process, SQLite outbox in the work dir)")
    with _bridge_process(work, routes_path, sandbox.events_url, token) as bridge_url:
        print(f"    bridge listening on {bridge_url}", file=out)
        _step(out, "posting ASM webhooks exactly as ASM renders the printed target set-up")
        _post_stories(routes, bridge_url, token, out)
        _step(out, "waiting for the bridge to deliver everything")
        incidents = _wait_for_incidents(sandbox, sum(len(s.expected) for s in STORIES))
        _wait_for_settled(sandbox, incidents)
    _play_asm_state(work, routes, routes_path, sandbox, bridge_url, token, out)
    incidents = sandbox.state.incidents()

    _step(out, "incidents in the sandbox")
    print(render_incidents(incidents), file=out)
    problems = check_incidents(incidents)
    if problems:
        raise DemoFailed("\n  " + "\n  ".join(problems))
    return incidents


def _apply_with_mocks(
    stack: Any, sandbox: Any, work: Path, engine: Engine, out: TextIO
) -> tuple[Any, Path]:
    from infra.routes_handoff import install_routes
    from sandbox.pulumi_apply import apply_stack

    _step(out, f"applying {DEFAULT_STACK.name} with the real Pulumi program under "
               f"{engine.description} -> sandbox REST API")
    print(f"    not the real engine: {engine.why}", file=out)
    routes_text = apply_stack(stack, DEFAULT_STACK.stem, sandbox.api_url, sandbox.token)
    _print_services(sandbox, out)
    _step(out, "handing the integration keys to the bridge (routes install)")
    routes, routes_path, _ = install_routes(routes_text, work / "routes.json", "bridge_routes")
    print(f"    {routes_path} (mode 0600), routes: {', '.join(sorted(routes.routes))}", file=out)
    return routes, routes_path


def _apply_with_pulumi(
    engine: Engine, sandbox: Any, work: Path, out: TextIO
) -> tuple[Any, Path, str]:
    from apica_pagerduty.pulumi_engine import (
        EngineError,
        PulumiProject,
        choose_provider,
        failure_tail,
    )
    from contract.errors import RoutesFileError
    from contract.routes_file import load_routes_file

    assert engine.tools is not None
    try:
        provider = choose_provider(work / "plugin")
        _step(out, f"applying {DEFAULT_STACK.name} with {engine.description}, "
                   f"PagerDuty provider: {provider.label}")
        project = PulumiProject.create(work / "pulumi", engine.tools, provider)
        project.init_stack(DEFAULT_STACK.stem, sandbox.api_url, sandbox.token)
        project.run("up", "--yes", "--skip-preview")
    except EngineError as exc:
        raise DemoFailed(str(exc)) from None
    _print_services(sandbox, out)
    _step(out, "handing the integration keys to the bridge (apica-pd routes pull)")
    routes_path = work / "routes.json"
    pulled = project.apica_pd("routes", "pull", "--stack", DEFAULT_STACK.stem,
                              "--out", str(routes_path))
    if pulled.returncode != 0:
        raise DemoFailed(f"apica-pd routes pull exited {pulled.returncode}:\n"
                         + failure_tail(pulled))
    for line in pulled.stdout.splitlines():
        print(f"    {line}", file=out)
    try:
        return load_routes_file(routes_path), routes_path, provider.label
    except RoutesFileError as exc:
        raise DemoFailed(str(exc)) from None


def _print_services(sandbox: Any, out: TextIO) -> None:
    services = sandbox.state.services()
    print(f"    {len(services)} services in the sandbox: "
          + ", ".join(sorted(s["name"] for s in services)), file=out)


def _step(out: TextIO, text: str) -> None:
    print(f"==> {text}", file=out, flush=True)


def check_incidents(incidents: list[dict[str, Any]]) -> list[str]:
    """Differences between the sandbox's incidents and what ALL_STORIES imply."""
    problems = []
    for story in ALL_STORIES:
        found = sorted(
            (i for i in incidents if _check_id_of(i) == story.check_id),
            key=lambda i: i["incident_number"],
        )
        got = [Expected(i["service_name"], i["urgency"], i["status"]) for i in found]
        if got != list(story.expected):
            problems.append(
                f"{story.title} (check {story.check_id}): expected "
                f"{_describe(story.expected)}, got {_describe(got) or 'no incident'}"
            )
    claimed = {story.check_id for story in ALL_STORIES}
    strays = [i for i in incidents if _check_id_of(i) not in claimed]
    if strays:
        problems.append(f"{len(strays)} incidents no alert asked for")
    return problems


def _describe(items: Any) -> str:
    return ", ".join(f"{e.service}/{e.urgency}/{e.status}" for e in items)


def _check_id_of(incident: dict[str, Any]) -> int | None:
    for alert in incident.get("alerts", ()):
        check_id = (alert.get("custom_details") or {}).get("check_id")
        if check_id is not None:
            return int(check_id)
    return None


def _post_stories(routes: Any, bridge_url: str, token: str, out: TextIO) -> None:
    from bridge.asm_setup import render, target_setups
    from bridge.config import DEFAULT_TOKEN_HEADER
    from bridge.intake.auth import Credentials

    setups = {
        setup.route_name: setup
        for setup in target_setups(routes, bridge_url, Credentials(tokens=(token,)),
                                   DEFAULT_TOKEN_HEADER, reveal=True)
    }
    any_setup = next(iter(setups.values()))
    session = requests.Session()
    for story in STORIES:
        print(f"    {story.title}: check {story.check_id} "
              + " -> ".join(story.severities), file=out)
        old = "I"
        for severity in story.severities:
            setup = setups[story.route] if story.route else any_setup
            request = setup.resolve if severity == "I" else setup.trigger
            url = request.url if story.route else f"{bridge_url}/v1/asm"
            body = render(request.body, _asm_values(story, old, severity))
            response = session.post(url, data=body.encode(), headers={
                "Content-Type": request.content_type, **request.headers,
            }, timeout=10)
            if response.status_code != 202:
                raise DemoFailed(f"bridge answered {response.status_code} to check "
                                 f"{story.check_id} {severity}: {response.text[:300]}")
            old = severity


def _play_asm_state(work: Path, routes: Any, routes_path: Path, sandbox: Any, old_url: str,
                    token: str, out: TextIO) -> None:
    """The bridge down and back with reconciliation: one repaired gap; then a maintenance
    window that holds a failing check and pages it at its end."""
    from sandbox.asm_api import AsmSandbox

    with AsmSandbox() as asm:
        for story in (GAP, HELD):
            asm.state.add_check(story.check_name, id=story.check_id, tags={"Env": ["Search"]})
            asm.state.set_severity(story.check_id, "I", message="OK")
        _step(out, f"the bridge is down; ASM (fake ASM API on {asm.url}) sees check "
             f"{GAP.check_id} fail")
        asm.state.set_severity(GAP.check_id, "F", value=30000, unit="ms", threshold_e=3000,
                               message="HTTP 503 from https://search.example.com/")
        try:
            requests.post(f"{old_url}/v1/asm", data=b"{}", timeout=5)
        except requests.ConnectionError:
            print(f"    ASM's webhook for check {GAP.check_id}: connection refused, and ASM "
                  "never sends it again", file=out)
        else:
            raise DemoFailed("the stopped bridge still answered")
        start = datetime.now(UTC).replace(microsecond=0)
        end = start + timedelta(seconds=WINDOW_SECONDS)
        _add_window(routes_path, GAP.route or "", start - timedelta(minutes=1), end,
                    HELD.check_id)
        print(f"    routes file: maintenance window {WINDOW!r} on route {HELD.route} for check "
              f"{HELD.check_id} until {end:%H:%M:%S} UTC", file=out)
        asm_env = {"APICA_PD_ASM_RECONCILE": "true", "APICA_PD_ASM_ENRICH": "true",
                   "APICA_PD_ASM_API_URL": asm.api_url,
                   "APICA_PD_ASM_AUTH_TICKET": asm.auth_ticket}
        _step(out, "starting the bridge again with reconciliation against ASM's API")
        with _bridge_process(work, routes_path, sandbox.events_url, token, asm_env,
                             log_name="bridge-asm.log") as bridge_url:
            gap = _incident_of(sandbox, GAP.check_id)
            details = gap["alerts"][0]["custom_details"]
            print(f"    repaired: check {GAP.check_id} paged from ASM's state (reconciled: "
                  f"{details.get('reconciled')}; ASM's latest result: "
                  f"{details.get('asm_result')})", file=out)
            _step(out, f"check {HELD.check_id} fails during the window: recorded, not paged")
            asm.state.set_severity(HELD.check_id, "F", value=8000, unit="ms", threshold_e=3000)
            _post_one(routes, bridge_url, token, HELD, "F")
            time.sleep(1.0)
            if any(_check_id_of(i) == HELD.check_id for i in sandbox.state.incidents()):
                raise DemoFailed(f"check {HELD.check_id} paged during its maintenance window")
            print(f"    accepted (202); no incident for check {HELD.check_id} while the window "
                  "is open", file=out)
            _step(out, "the window ends: the bridge pages the check that is still failing")
            held = _incident_of(sandbox, HELD.check_id,
                                timeout=WINDOW_SECONDS + DELIVERY_TIMEOUT)
            details = held["alerts"][0]["custom_details"]
            print(f"    caught up: check {HELD.check_id} paged after the window "
                  f"(maintenance: {details.get('maintenance')})", file=out)


def _add_window(routes_path: Path, route: str, start: datetime, end: datetime,
                check_id: int) -> None:
    from contract.routes_file import (
        load_routes_file,
        parse_routes,
        routes_to_json,
        write_routes_file,
    )

    data = json.loads(routes_to_json(load_routes_file(routes_path)))
    data["version"] = 3
    data["routes"][route]["maintenance"] = [{
        "name": WINDOW, "time_zone": "UTC", "checks": {"ids": [check_id]},
        "once": {"start": f"{start:%Y-%m-%dT%H:%M:%S}", "end": f"{end:%Y-%m-%dT%H:%M:%S}"}}]
    write_routes_file(routes_path, parse_routes(json.dumps(data), str(routes_path)))


def _incident_of(sandbox: Any, check_id: int, timeout: float = DELIVERY_TIMEOUT
                 ) -> dict[str, Any]:
    found = _poll(lambda: [i for i in sandbox.state.incidents() if _check_id_of(i) == check_id],
                  bool, timeout)
    if not found:
        raise DemoFailed(f"no incident for check {check_id} within {timeout:.0f}s; see the "
                         "bridge log")
    return found[0]


def _post_one(routes: Any, bridge_url: str, token: str, story: Story, severity: str) -> None:
    from bridge.asm_setup import render, target_setups
    from bridge.config import DEFAULT_TOKEN_HEADER
    from bridge.intake.auth import Credentials

    [setup] = [s for s in target_setups(routes, bridge_url, Credentials(tokens=(token,)),
                                        DEFAULT_TOKEN_HEADER, reveal=True)
               if s.route_name == story.route]
    request = setup.trigger
    response = requests.post(request.url, data=render(request.body, _asm_values(
        story, "I", severity)).encode(), headers={"Content-Type": request.content_type,
                                                  **request.headers}, timeout=10)
    if response.status_code != 202:
        raise DemoFailed(f"bridge answered {response.status_code} to check {story.check_id} "
                         f"{severity}: {response.text[:300]}")


def _asm_values(story: Story, old: str, new: str) -> dict[str, str]:
    """Placeholder values as ASM would fill them in, message with the characters ASM breaks."""
    result = uuid.uuid4()
    return {
        "S": new,
        "OLD_SEV_CHAR": old,
        "CHECK_ID": str(story.check_id),
        "CHECK_GUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"asm-check-{story.check_id}")),
        "CHECK_TYPE": "URL",
        "UTC-T": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "RESULT_GUID": result.hex, "RESULT_G-U-I-D": str(result),  # without, with dashes
        "LOCATION": "Stockholm, Sweden",
        "GROUPS": "Demo, Production",
        "CHECK_TAGS": "Env: Demo",
        "CHECK_NAME": story.check_name,
        "QM": ("Back to normal" if new == "I"
               else "HTTP 503 from https://shop.example.com/ (step 'Sign in', C:\\agent\\run)"),
    }


def _wait_for_incidents(sandbox: Any, count: int) -> list[dict[str, Any]]:
    incidents = _poll(lambda: sandbox.state.incidents(), lambda found: len(found) >= count)
    if len(incidents) < count:
        raise DemoFailed(f"only {len(incidents)} of {count} incidents arrived within "
                         f"{DELIVERY_TIMEOUT:.0f}s; see the bridge log")
    return incidents


def _wait_for_settled(sandbox: Any, incidents: list[dict[str, Any]]) -> None:
    # Resolves travel behind their triggers: wait until the bridge's queue is empty.
    expected_resolved = sum(
        1 for story in STORIES for e in story.expected if e.status == "resolved"
    )
    _poll(
        lambda: sandbox.state.incidents(status="resolved"),
        lambda found: len(found) >= expected_resolved,
    )


def _poll(read: Callable[[], Any], done: Callable[[Any], bool],
          timeout: float = DELIVERY_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


@contextmanager
def _work_dir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="apica-pd-demo-") as tmp:
        yield Path(tmp)


@contextmanager
def _bridge_process(work: Path, routes: Path, events_url: str, token: str,
                    extra_env: Mapping[str, str] | None = None,
                    log_name: str = "bridge.log") -> Iterator[str]:
    env = {
        **os.environ,
        "APICA_PD_ROUTES_FILE": str(routes),
        "APICA_PD_DATA_DIR": str(work / "outbox"),
        "APICA_PD_EVENTS_URL": events_url,
        "APICA_PD_LISTEN_HOST": "127.0.0.1",
        "APICA_PD_LISTEN_PORT": "0",
        "APICA_PD_TOKENS": token,
        **(extra_env or {}),
    }
    log_path = work / log_name
    with log_path.open("w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge"], env=env, stdout=log, stderr=log,
            stdin=subprocess.DEVNULL,
        )
        try:
            yield _wait_listening(process, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_listening(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + BRIDGE_START_TIMEOUT
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "listening":
                url = record["url"]
                if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                    return url
        if process.poll() is not None:
            raise DemoFailed(f"the bridge exited with {process.returncode}:\n"
                             + log_path.read_text()[-2000:])
        time.sleep(0.05)
    raise DemoFailed(f"the bridge did not start within {BRIDGE_START_TIMEOUT:.0f}s")
