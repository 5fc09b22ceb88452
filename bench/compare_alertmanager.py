#!/usr/bin/env python3
"""The bridge side by side with Prometheus Alertmanager's PagerDuty receiver (issue 6).

Both relays run on 127.0.0.1 against one in-process PagerDuty sandbox (each with
its own services and integration keys, so their events are told apart by routing
key) and get the same ASM-like workload at the same moments: N checks, each a
trigger, some an escalation (W -> F), then a resolve. The bridge gets ASM webhooks
(`POST /v1/asm/<route>`); Alertmanager gets the same alerts on `/api/v2/alerts`
(a resolve is `endsAt` in the past). Scenarios: healthy, PagerDuty answering 5xx
for a while, PagerDuty rate-limiting at 120/min per key, both relays `kill -9`'d
mid-run and restarted (`kill`; `kill-held`: the same with the port held by a supervisor,
as a systemd socket unit holds it). Every scenario runs `--runs` times; the table shows medians
(with the range over runs) and the bridge/Alertmanager ratio. A third relay, the HA
pair (two bridges on one PostgreSQL behind HAProxy, `bench.ha_pair`), runs the kill
scenario only: there one of its two replicas is killed -9 (a node dying) and restarted.

    python bench/compare_alertmanager.py --install   # Debian's package, if missing
    python bench/compare_alertmanager.py             # full run (~30 min on 2 cores)
    python bench/compare_alertmanager.py --smoke     # tiny N, seconds-long faults

Every loop is bounded in count and time, all traffic stays on loopback, and every
process the script starts is stopped (by process group) before it exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: import the project's parts
    sys.path.insert(0, str(ROOT))

AM_BINARY = "prometheus-alertmanager"
AM_TEMPLATE_DIR = ROOT / "bench" / "alertmanager"
SETUP_SCRIPT = ROOT / "bench" / "setup_alertmanager.sh"
RESULTS_DIR = ROOT / "bench" / "results"

# Check names carry the check's index; both relays put the name in the PagerDuty
# summary, so a delivered event is matched to what was sent without relying on
# either relay's custom_details layout.
CHECK_NAME = "bench-c{:05d}"
CHECK_RE = re.compile(r"bench-c(\d{5})")
CHECK_ID_BASE = 700000
START_TIMEOUT = 20.0  # seconds for a relay to answer its readiness probe
HTTP_TIMEOUT = 5.0  # per webhook / alert POST
SAMPLE_EVERY = 0.1  # /proc sampling period (CPU and RSS)
POLL_EVERY = 0.25  # drain check period
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

Kind = Literal["trigger", "escalate", "resolve"]
RelayName = Literal["bridge", "alertmanager", "ha-pair", "floor"]
RELAYS: tuple[RelayName, ...] = ("bridge", "alertmanager", "ha-pair", "floor")
# The HA pair is there for one question: what a replica's death costs behind the load
# balancer. The other scenarios would only repeat the single bridge's figures.
HA_PAIR_SCENARIOS = ("kill",)
# kill -9 with the port held by a supervisor (systemd socket activation), for the relays
# that can take a socket so: the bridge (LISTEN_FDS) and Alertmanager (--web.systemd-socket).
HELD_SOCKET_SCENARIOS = ("kill-held",)
HELD_SOCKET_RELAYS = ("bridge", "alertmanager")
# Starts a relay as systemd starts a socket unit's service: the socket as fd 3, and
# LISTEN_PID naming the relay (exec keeps the shell's pid).
SOCKET_UNIT_LAUNCH = ("bash", "-c", 'exec 3<&"$HELD_FD"; LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"',
                      "bash")
# The floor answers the healthy scenario's webhooks, for its accept latency rows only.
FLOOR_SCENARIOS = ("healthy",)
READY_POLL = 0.01  # seconds between readiness probes: the exec-to-ready row's resolution


# --------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Action:
    """One thing ASM would report: at `at` seconds into the run, for check `check`."""

    at: float
    check: int
    kind: Kind
    service: int
    escalated: bool  # the check escalates (a resolve must end both of its alerts)


def build_workload(
    checks: int,
    rate: float,
    services: int,
    escalate_fraction: float,
    hold: float,
    first_check: int = 0,
) -> list[Action]:
    """Triggers spaced so the webhook rate is about `rate`/s; resolve about `hold` s later."""
    per_check = 2.0 + escalate_fraction
    spacing = per_check / rate
    actions: list[Action] = []
    for n in range(checks):
        i = first_check + n
        # Spread escalations evenly: check n escalates when n*f crosses an integer.
        escalated = int((n + 1) * escalate_fraction) > int(n * escalate_fraction)
        start = n * spacing
        service = n % services
        # Hold times spread evenly over 0.75..1.25 x `hold` (golden-ratio sequence):
        # a fixed hold that is a multiple of Alertmanager's group_interval would land
        # every resolve right on its flush tick and hide the wait for the next one.
        held = hold * (0.75 + 0.5 * ((n * 0.6180339887) % 1.0))
        actions.append(Action(start, i, "trigger", service, escalated))
        if escalated:
            actions.append(Action(start + held / 2, i, "escalate", service, escalated))
        actions.append(Action(start + held, i, "resolve", service, escalated))
    actions.sort(key=lambda a: (a.at, a.check))
    return actions


def asm_body(action: Action, sent_at: float) -> dict[str, Any]:
    """The JSON an ASM Custom target would send (placeholders filled in)."""
    severity = {"trigger": "W", "escalate": "F", "resolve": "I"}[action.kind]
    old = {"trigger": "I", "escalate": "W", "resolve": "F" if action.escalated else "W"}
    return {
        "action": "resolve" if action.kind == "resolve" else "trigger",
        "check_id": CHECK_ID_BASE + action.check,
        "check_guid": f"00000000-0000-4000-8000-{action.check:012d}",
        "check_name": CHECK_NAME.format(action.check),
        "check_type": "URL",
        "severity": severity,
        "old_severity": old[action.kind],
        "message": f"bench {action.kind} of check {action.check}",
        "timestamp": datetime.fromtimestamp(sent_at, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "location": "Loopback, Local",
    }


def am_alerts(action: Action, sent_at: float, started_at: float) -> list[dict[str, Any]]:
    """The same alert for Alertmanager: severity is a label, as two Prometheus rules would
    make it (warning and critical fire as separate alerts; a resolve ends both)."""

    def alert(severity: str, ends_at: float | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "labels": {
                "alertname": "AsmCheck",
                "check_id": str(CHECK_ID_BASE + action.check),
                "check_name": CHECK_NAME.format(action.check),
                "service": f"svc-{action.service}",
                "severity": severity,
            },
            "annotations": {"message": f"bench {action.kind} of check {action.check}"},
            "startsAt": _rfc3339(started_at),
        }
        if ends_at is not None:
            body["endsAt"] = _rfc3339(ends_at)
        return body

    if action.kind == "trigger":
        return [alert("warning", None)]
    if action.kind == "escalate":
        return [alert("critical", None)]
    # endsAt just in the past: Alertmanager treats the alert as resolved on receipt.
    ends = max(sent_at - 0.001, started_at)
    out = [alert("warning", ends)]
    if action.escalated:
        out.append(alert("critical", ends))
    return out


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Poll until 127.0.0.1:`port` takes a connection (from then on a webhook waits in
    the backlog instead of being refused); the monotonic time it first did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"port {port}: the process exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return time.monotonic()
        time.sleep(READY_POLL / 5)
    raise RuntimeError(f"nothing listened on port {port} within {timeout:.0f} s")


def wait_http_ok(
    url: str, proc: subprocess.Popen[bytes], timeout: float, status: int = 200
) -> None:
    """Poll `url` until `status`, the process dies, or `timeout` (bounded loop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1.0).status_code == status:
                return
        time.sleep(READY_POLL)
    raise RuntimeError(f"{url} did not answer {status} within {timeout:.0f} s")


class Relay:
    """A relay process on loopback: start, send, kill -9, restart, stop."""

    name: RelayName
    ready_status = 200
    delivers = True  # False: answers webhooks and sends nothing on (the floor)

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.incarnations = 0
        # Per start: CPU seconds and wall seconds from exec to the first ready answer.
        self.startup_cpu: list[float] = []
        self.startup_wall: list[float] = []
        self.listen_wall: list[float] = []  # exec to the port taking connections
        self.held: socket.socket | None = None  # the supervisor's socket (hold_socket)
        self._log = (workdir / "relay.log").open("ab")

    def hold_socket(self) -> None:
        """From now on the port is the harness's, passed to each start as systemd
        passes a socket unit's: it stays open while the relay is down."""
        from bridge.listen_socket import bind

        self.held = bind("127.0.0.1", self.port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def ready_url(self) -> str:
        raise NotImplementedError

    def start(self) -> None:
        # Own session = own process group: kill -9 and stop reach every child of the
        # relay, and nothing else.
        started = time.monotonic()
        command, env, fds = self.command(), self.environment(), ()
        if self.held is not None:
            command = [*SOCKET_UNIT_LAUNCH, *command]
            fds = (self.held.fileno(),)
            env = {**env, "HELD_FD": str(fds[0])}
        self.proc = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
            pass_fds=fds,
        )
        self.incarnations += 1
        try:
            self.listen_wall.append(wait_listening(self.port, self.proc, START_TIMEOUT)
                                    - started)
            wait_http_ok(self.ready_url(), self.proc, START_TIMEOUT, self.ready_status)
            self.startup_wall.append(time.monotonic() - started)
            self.startup_cpu.append(
                sum(ticks for _, _, ticks, _, _ in _proc_table({self.proc.pid})) / TICKS)
        except RuntimeError as exc:
            # The temp dir (and the log in it) is gone after the run: show the log now.
            self._log.flush()
            tail = (self.workdir / "relay.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(
                f"{self.name} did not start: {exc}\n--- its log ---\n{tail}"
            ) from None

    def pgid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def kill9(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()
        if self.proc is not None:
            # Children left behind by a relay that forked: same group, end them too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.held is not None:
            self.held.close()
        self._log.close()

    def send(self, session: requests.Session, action: Action, sent_at: float) -> int:
        raise NotImplementedError


class AlertmanagerRelay(Relay):
    """Debian's prometheus-alertmanager with the config in bench/alertmanager/."""

    name: RelayName = "alertmanager"

    def __init__(
        self, workdir: Path, events_url: str, keys: Sequence[str], group_interval: str
    ) -> None:
        super().__init__(workdir)
        self.binary = shutil.which(AM_BINARY) or AM_BINARY
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(render_am_config(events_url, keys, group_interval))
        self.data = workdir / "data"
        self.data.mkdir(exist_ok=True)
        self.started: dict[int, float] = {}  # check -> startsAt sent

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config}",
            f"--storage.path={self.data}",
            # Under a supervisor, its socket (systemd socket activation) instead of a port.
            "--web.systemd-socket" if self.held is not None
            else f"--web.listen-address=127.0.0.1:{self.port}",
            # Empty = no HA gossip: no cluster port, no waiting for peers.
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def ready_url(self) -> str:
        return self.base_url + "/-/ready"

    def send(self, session: requests.Session, action: Action, sent_at: float) -> int:
        started = self.started.setdefault(action.check, sent_at)
        body = am_alerts(action, sent_at, started)
        response = session.post(self.base_url + "/api/v2/alerts", json=body, timeout=HTTP_TIMEOUT)
        return response.status_code


def render_am_config(events_url: str, keys: Sequence[str], group_interval: str) -> str:
    """bench/alertmanager/*.tmpl filled in: one route and receiver per service."""
    main = string.Template((AM_TEMPLATE_DIR / "alertmanager.yml.tmpl").read_text())
    receiver = string.Template((AM_TEMPLATE_DIR / "receiver.yml.tmpl").read_text())
    routes = []
    receivers = []
    for n, key in enumerate(keys):
        service = f"svc-{n}"
        routes.append(f"    - receiver: {service}\n      matchers: ['service=\"{service}\"']")
        receivers.append(
            receiver.substitute(service=service, routing_key=key, events_url=events_url)
        )
    return main.substitute(
        group_interval=group_interval,
        service_routes="\n".join(routes),
        service_receivers="".join(receivers),
    )


class BridgeRelay(Relay):
    """`apica-pd serve --routes routes.json` with its outbox in the run's temp dir."""

    name: RelayName = "bridge"

    def __init__(
        self, workdir: Path, events_url: str, keys: Sequence[str], service_ids: Sequence[str]
    ) -> None:
        super().__init__(workdir)
        from contract.routes_file import Route, RoutesFile, write_routes_file

        self.events_url = events_url
        self.routes_path = workdir / "routes.json"
        routes = {
            f"svc-{n}": Route(
                service_name=f"Bench bridge {n}",
                service_id=service_id,
                integration_name=f"Apica-Bench-bridge-{n}",
                routing_key=key,
            )
            for n, (key, service_id) in enumerate(zip(keys, service_ids, strict=True))
        }
        write_routes_file(self.routes_path, RoutesFile(version=1, stack="bench", routes=routes))
        self.data = workdir / "data"
        self.data.mkdir(exist_ok=True)
        self.token = secrets.token_hex(16)
        self.headers = {"X-Apica-Token": self.token}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "apica_pagerduty", "serve", "--routes", str(self.routes_path)]

    def environment(self) -> dict[str, str]:
        # Only the benchmark's settings: none inherited from the caller's shell.
        env = {k: v for k, v in os.environ.items() if not k.startswith("APICA_PD_")}
        env.update(
            {
                "APICA_PD_EVENTS_URL": self.events_url,
                "APICA_PD_DATA_DIR": str(self.data),
                "APICA_PD_ROUTES_FILE": str(self.routes_path),
                "APICA_PD_LISTEN_HOST": "127.0.0.1",
                "APICA_PD_LISTEN_PORT": str(self.port),
                # Authenticated as ASM would be in production (the check is part of the cost).
                "APICA_PD_TOKENS": self.token,
                "APICA_PD_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
            }
        )
        return env

    def ready_url(self) -> str:
        return self.base_url + "/readyz"

    def send(self, session: requests.Session, action: Action, sent_at: float) -> int:
        response = session.post(
            f"{self.base_url}/v1/asm/svc-{action.service}",
            json=asm_body(action, sent_at),
            headers=self.headers,
            timeout=HTTP_TIMEOUT,
        )
        return response.status_code


class HaPairRelay(BridgeRelay):
    """Two bridges on one private PostgreSQL cluster behind HAProxy; webhooks go to the
    load balancer. `kill9` takes one replica down (`start` brings it back), as a dying
    node would: the other replica and HAProxy's retry take its share meanwhile."""

    name: RelayName = "ha-pair"

    def __init__(
        self, workdir: Path, events_url: str, keys: Sequence[str], service_ids: Sequence[str]
    ) -> None:
        super().__init__(workdir, events_url, keys, service_ids)
        self.cluster: Any = None
        self.pair: Any = None

    def start(self) -> None:
        if self.pair is not None:  # after kill9: the killed replica again
            self.pair.restart(self.pair.bridges[0])
            self.incarnations += 1
            return
        from bench.ha_pair import HaPair
        from sandbox.postgres_cluster import PostgresCluster

        self.cluster = PostgresCluster().__enter__()
        env = {"APICA_PD_TOKENS": self.token, "APICA_PD_LOG_LEVEL": "WARNING"}
        self.pair = HaPair(self.workdir, self.routes_path, self.events_url,
                           self.cluster.url(), env=env).__enter__()
        self.port = self.pair.proxy.port
        self.incarnations += 1

    def pgid(self) -> int | None:
        return None  # several process groups; CPU and RSS rows are the healthy scenario's

    def kill9(self) -> None:
        if self.pair is not None:
            self.pair.bridges[0].kill9()

    def stop(self) -> None:
        if self.pair is not None:
            self.pair.close()
        if self.cluster is not None:
            self.cluster.close()
        self._log.close()


class FloorRelay(Relay):
    """The durability floor: a minimal asyncio server that appends each body to a file,
    fsyncs it and answers 202 (`bench.bridge_load.FLOOR_SERVER`). It parses, checks and
    delivers nothing, so only its answer time is a figure: the least a Python server that
    answers after the write is on disk takes here, through the same client as the others.
    """

    name: RelayName = "floor"
    ready_status = 202  # it answers everything so
    delivers = False

    def command(self) -> list[str]:
        from bench.bridge_load import FLOOR_SERVER

        return [sys.executable, "-c", FLOOR_SERVER, str(self.workdir / "floor.log"),
                str(self.port)]

    def ready_url(self) -> str:
        return self.base_url + "/"

    def send(self, session: requests.Session, action: Action, sent_at: float) -> int:
        response = session.post(f"{self.base_url}/v1/asm/svc-{action.service}",
                                json=asm_body(action, sent_at), timeout=HTTP_TIMEOUT)
        return response.status_code


# --------------------------------------------------------------------------- measuring


@dataclass
class ProcUsage:
    """CPU seconds and peak RSS of every process a relay ran (all incarnations)."""

    cpu_ticks: dict[int, int] = field(default_factory=dict)  # pid -> last utime+stime
    peak_rss: int = 0  # bytes: max over samples of the group's summed RSS, or VmHWM

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_ticks.values()) / TICKS


class ProcSampler:
    """Reads /proc for each relay's process group every SAMPLE_EVERY seconds."""

    def __init__(self, relays: Sequence[Relay]) -> None:
        self.relays = relays
        self.usage: dict[str, ProcUsage] = {r.name: ProcUsage() for r in relays}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc-sampler", daemon=True)

    def __enter__(self) -> ProcSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()  # the last word before the relays are stopped

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self.sample()

    def sample(self) -> None:
        groups = {r.pgid(): r.name for r in self.relays if r.pgid() is not None}
        rss: dict[str, int] = dict.fromkeys(groups.values(), 0)
        for pid, pgid, ticks, rss_pages, hwm in _proc_table(set(groups)):
            usage = self.usage[groups[pgid]]
            usage.cpu_ticks[pid] = ticks
            usage.peak_rss = max(usage.peak_rss, hwm)
            rss[groups[pgid]] += rss_pages * PAGE
        for name, total in rss.items():
            self.usage[name].peak_rss = max(self.usage[name].peak_rss, total)


def _proc_table(pgids: set[int]) -> Iterator[tuple[int, int, int, int, int]]:
    """(pid, pgid, utime+stime ticks, RSS pages, VmHWM bytes) of processes in `pgids`."""
    if not pgids:
        return
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            # comm may hold spaces and parentheses: split after the last ')'.
            fields = stat[stat.rindex(")") + 2 :].split()
            pgid = int(fields[2])
            if pgid not in pgids:
                continue
            ticks = int(fields[11]) + int(fields[12])
            rss_pages = int(fields[21])
            hwm = 0
            for line in Path(entry.path, "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue  # the process ended between listing and reading
        yield int(entry.name), pgid, ticks, rss_pages, hwm


@dataclass(frozen=True)
class Record:
    """One POST the sandbox answered, stamped by the benchmark's tap."""

    at: float
    status: int
    body: dict[str, Any]


class EventTap:
    """Timestamps every /v2/enqueue answer with sub-millisecond precision.

    The sandbox logs events with seconds precision (PagerDuty's own style), too
    coarse for latency, so the benchmark wraps the state's `record_event` of its
    own in-process sandbox instance: same call, plus a `time.time()` stamp.
    """

    def __init__(self, sandbox: Any) -> None:
        self.records: list[Record] = []
        original = sandbox.state.record_event

        def record_event(status: int, body: Any) -> None:
            stamp = time.time()
            original(status, body)
            self.records.append(Record(stamp, status, body if isinstance(body, dict) else {}))

        sandbox.state.record_event = record_event

    def snapshot(self) -> list[Record]:
        return list(self.records)


@dataclass
class Sent:
    action: Action
    sent_at: float
    status: int  # relay's HTTP answer; 0 = no connection (relay down)
    answered_at: float = float("nan")  # when the relay's answer arrived


@dataclass
class Outcome:
    """What one relay did with one run of one scenario."""

    sent: list[Sent]
    records: list[Record]
    deliveries: dict[int, float | None] = field(default_factory=dict)  # index in sent

    @property
    def accepted(self) -> list[int]:
        return [i for i, s in enumerate(self.sent) if 200 <= s.status < 300]


def match_deliveries(sent: Sequence[Sent], records: Sequence[Record]) -> dict[int, float | None]:
    """For each accepted action, when PagerDuty had taken its effect (None = never).

    trigger: the first 202 trigger for the check after it was sent; escalate: the
    first 202 critical trigger after it was sent; resolve: the moment, after at
    least one 202 resolve sent after it, when every dedup key the check ever
    triggered is closed again (and stays closed to the end of the run); a resolve
    of a check that never triggered anything counts as done when sent.
    """
    by_check: dict[int, list[Record]] = {}
    key_check: dict[str, int] = {}
    unnamed: list[Record] = []
    for rec in records:
        if rec.status != 202:
            continue
        found = CHECK_RE.search(json.dumps(rec.body))
        if found is None:
            unnamed.append(rec)
            continue
        check = int(found.group(1))
        by_check.setdefault(check, []).append(rec)
        if rec.body.get("dedup_key"):
            key_check[str(rec.body["dedup_key"])] = check
    # A resolve may carry no summary: attribute it through its dedup key.
    for rec in unnamed:
        check = key_check.get(str(rec.body.get("dedup_key")))
        if check is not None:
            by_check[check].append(rec)
    for recs in by_check.values():
        recs.sort(key=lambda r: r.at)

    out: dict[int, float | None] = {}
    for i, s in enumerate(sent):
        if not 200 <= s.status < 300:
            continue
        recs = by_check.get(s.action.check, [])
        out[i] = _delivered_at(s, recs)
    return out


def _delivered_at(s: Sent, recs: Sequence[Record]) -> float | None:
    action = s.action.kind
    if action in ("trigger", "escalate"):
        for rec in recs:
            if rec.at < s.sent_at or rec.body.get("event_action") != "trigger":
                continue
            severity = (rec.body.get("payload") or {}).get("severity")
            if action == "trigger" or severity == "critical":
                return rec.at
        return None
    if not any(rec.body.get("event_action") == "trigger" for rec in recs):
        # Nothing of the check ever reached PagerDuty (its trigger was lost, which
        # counts against the trigger): the resolve has nothing left to close.
        return s.sent_at
    open_keys: set[str] = set()
    resolved_after = False
    closed_at: float | None = None
    for rec in recs:
        key = str(rec.body.get("dedup_key"))
        if rec.body.get("event_action") == "trigger":
            open_keys.add(key)
            if rec.at >= s.sent_at:
                closed_at = None  # re-opened after the resolve: not back to normal
        elif rec.body.get("event_action") == "resolve":
            open_keys.discard(key)
            if rec.at >= s.sent_at:
                resolved_after = True
                if not open_keys and closed_at is None:
                    closed_at = rec.at
    if not resolved_after or open_keys:
        return None
    return closed_at


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Settings:
    checks: int
    rate: float
    services: int
    escalate_fraction: float
    hold: float
    fault_seconds: float
    burst_checks: int
    burst_rate: float
    rate_limit_per_minute: int | None  # None: the smoke mode's scripted 429s instead
    kill_down_seconds: float
    idle_seconds: float
    scenario_deadline: float
    group_interval: str
    runs: int
    smoke: bool


FULL = Settings(
    checks=120,
    rate=6.0,
    services=8,
    escalate_fraction=0.3,
    hold=8.0,
    fault_seconds=30.0,
    burst_checks=100,
    burst_rate=20.0,
    rate_limit_per_minute=120,
    kill_down_seconds=2.0,
    idle_seconds=30.0,
    scenario_deadline=300.0,
    group_interval="1s",
    runs=3,
    smoke=False,
)
SMOKE = Settings(
    checks=6,
    rate=6.0,
    services=2,
    escalate_fraction=0.5,
    hold=1.5,
    fault_seconds=3.0,
    burst_checks=4,
    burst_rate=8.0,
    rate_limit_per_minute=None,
    kill_down_seconds=1.0,
    idle_seconds=6.0,
    scenario_deadline=60.0,
    group_interval="1s",
    runs=1,
    smoke=True,
)
SCENARIOS = ("healthy", "fault", "ratelimit", "kill", "kill-held")


@dataclass
class ScenarioResult:
    """Per relay: outcome, CPU/RSS, extra figures (drain time, open incidents ...)."""

    scenario: str
    outcomes: dict[str, Outcome]
    usage: dict[str, ProcUsage]
    open_incidents: dict[str, int]
    wall: float
    extra: dict[str, dict[str, float]] = field(default_factory=dict)


class Harness:
    """One scenario run: sandbox, both relays, workload, drain, clean-up."""

    def __init__(self, settings: Settings, relays: Sequence[str], log: Callable[[str], None]):
        self.settings = settings
        self.relay_names = relays
        self.log = log

    def run(self, scenario: str) -> ScenarioResult:
        from sandbox.server import PagerDutySandbox

        s = self.settings
        limited = scenario == "ratelimit" and s.rate_limit_per_minute is not None
        per_minute = s.rate_limit_per_minute if limited else None
        with (
            tempfile.TemporaryDirectory(prefix=f"bench-{scenario}-") as tmp,
            PagerDutySandbox(events_per_minute=per_minute) as sandbox,
        ):
            tap = EventTap(sandbox)
            services = 1 if scenario == "ratelimit" else s.services
            names = [r for r in self.relay_names
                     if (r != "ha-pair" or scenario in HA_PAIR_SCENARIOS)
                     and (r != "floor" or scenario in FLOOR_SCENARIOS)
                     and (r in HELD_SOCKET_RELAYS or scenario not in HELD_SOCKET_SCENARIOS)]
            keys: dict[str, list[str]] = {}
            service_ids: dict[str, list[str]] = {}
            for relay_name in names:
                keys[relay_name], service_ids[relay_name] = [], []
                for n in range(services):
                    svc = sandbox.state.create_service(
                        f"Bench {relay_name} {n}", urgency="severity_based"
                    )
                    integration = sandbox.state.add_integration(
                        svc["id"], f"Apica-Bench-{relay_name}-{n}"
                    )
                    keys[relay_name].append(integration["integration_key"])
                    service_ids[relay_name].append(svc["id"])
            relays = self._make_relays(Path(tmp), names, sandbox.events_url, keys,
                                       service_ids)
            try:
                for relay in relays:
                    if scenario in HELD_SOCKET_SCENARIOS:
                        relay.hold_socket()
                    relay.start()
                return self._drive(scenario, sandbox, tap, relays, keys, service_ids)
            finally:
                for relay in relays:
                    relay.stop()

    def _make_relays(
        self,
        tmp: Path,
        names: Sequence[str],
        events_url: str,
        keys: dict[str, list[str]],
        service_ids: dict[str, list[str]],
    ) -> list[Relay]:
        relays: list[Relay] = []
        for name in names:
            workdir = tmp / name
            workdir.mkdir()
            if name == "bridge":
                relays.append(BridgeRelay(workdir, events_url, keys[name], service_ids[name]))
            elif name == "ha-pair":
                relays.append(HaPairRelay(workdir, events_url, keys[name], service_ids[name]))
            elif name == "floor":
                relays.append(FloorRelay(workdir))
            else:
                relays.append(
                    AlertmanagerRelay(workdir, events_url, keys[name], self.settings.group_interval)
                )
        return relays

    def _workload(self, scenario: str) -> list[Action]:
        s = self.settings
        if scenario == "ratelimit":
            # A storm on one service: every check trigger + resolve, no escalation.
            return build_workload(s.burst_checks, s.burst_rate, 1, 0.0, s.hold)
        return build_workload(s.checks, s.rate, s.services, s.escalate_fraction, s.hold)

    def _drive(
        self,
        scenario: str,
        sandbox: Any,
        tap: EventTap,
        relays: Sequence[Relay],
        keys: dict[str, list[str]],
        service_ids: dict[str, list[str]],
    ) -> ScenarioResult:
        s = self.settings
        actions = self._workload(scenario)
        span = actions[-1].at if actions else 0.0
        sent: dict[str, list[Sent]] = {r.name: [] for r in relays}
        t0 = time.time() + 0.5  # both senders start on the same tick
        deadline = t0 + s.scenario_deadline
        extra: dict[str, dict[str, float]] = {r.name: {} for r in relays}

        if scenario == "ratelimit" and s.rate_limit_per_minute is None:
            # Smoke mode: scripted 429s with Retry-After instead of a 60 s window.
            sandbox.faults.rate_limit(count=2 * len(relays) * 2, retry_after=1)

        timers: list[threading.Timer] = []
        if scenario == "fault":
            start = max(0.5, span / 4)
            timers.append(
                threading.Timer(
                    t0 + start - time.time(),
                    lambda: sandbox.faults.fail(status=500, seconds=s.fault_seconds),
                )
            )
        if scenario in ("kill", *HELD_SOCKET_SCENARIOS):
            timers.append(
                threading.Timer(t0 + span / 2 - time.time(), self._kill_and_restart, [relays])
            )

        with ProcSampler(relays) as sampler:
            senders = [
                threading.Thread(
                    target=_send_all,
                    args=(relay, actions, t0, deadline, sent[relay.name]),
                    name=f"send-{relay.name}",
                    daemon=True,  # Ctrl-C ends the run; the relays are stopped in `run`
                )
                for relay in relays
            ]
            for thread in [*senders, *timers]:
                thread.daemon = True
                thread.start()
            for thread in senders:
                thread.join(timeout=max(1.0, deadline - time.time()))
            for timer in timers:
                timer.join(timeout=max(1.0, deadline - time.time()))
            sends_done = time.time()
            idle = s.idle_seconds
            if scenario == "ratelimit" and s.rate_limit_per_minute is not None:
                # A relay pacing itself rightly sends nothing while the key's window is
                # full: quiet for up to a whole window is waiting, not being done.
                from sandbox.ratelimit import WINDOW

                idle += WINDOW.total_seconds()
            outcomes = self._drain(relays, tap, keys, sent, sends_done, deadline, idle)
        for timer in timers:
            timer.cancel()
        wall = time.time() - t0

        open_incidents: dict[str, int] = {}
        for relay in relays:
            outcome = outcomes[relay.name]
            open_incidents[relay.name] = _left_open(
                sandbox.state.incidents(), set(service_ids[relay.name]), outcome.sent
            )
            first = min((x.sent_at for x in outcome.sent), default=t0)
            done = [t for t in outcome.deliveries.values() if t is not None]
            extra[relay.name]["drain_s"] = (max(done) - first) if done else float("nan")
            extra[relay.name]["throttled"] = sum(1 for r in outcome.records if r.status == 429)
            extra[relay.name]["refused_at_door"] = sum(
                1 for x in outcome.sent if not 200 <= x.status < 300
            )
            # Start-up is paid once per process, not per alert: its own rows.
            extra[relay.name]["startup_cpu_s"] = sum(relay.startup_cpu)
            extra[relay.name]["first_start_cpu_s"] = (
                relay.startup_cpu[0] if relay.startup_cpu else float("nan"))
            extra[relay.name]["restart_ready_s"] = (
                relay.startup_wall[-1] if len(relay.startup_wall) > 1 else float("nan"))
            extra[relay.name]["restart_listen_s"] = (
                relay.listen_wall[-1] if len(relay.listen_wall) > 1 else float("nan"))
        return ScenarioResult(scenario, outcomes, sampler.usage, open_incidents, wall, extra)

    def _kill_and_restart(self, relays: Sequence[Relay]) -> None:
        """kill -9 every relay at once (the HA pair: one replica), keep them down, restart
        them in parallel."""
        for relay in relays:
            relay.kill9()
        self.log(f"  killed -9: {', '.join(r.name for r in relays)}")
        time.sleep(self.settings.kill_down_seconds)
        threads = [threading.Thread(target=r.start, name=f"restart-{r.name}") for r in relays]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=START_TIMEOUT + 5)

    def _drain(
        self,
        relays: Sequence[Relay],
        tap: EventTap,
        keys: dict[str, list[str]],
        sent: dict[str, list[Sent]],
        sends_done: float,
        deadline: float,
        idle: float,
    ) -> dict[str, Outcome]:
        """Wait until each relay delivered everything, sent nothing for `idle` s, or the
        deadline."""
        pending = {r.name for r in relays if r.delivers}
        # Nothing to wait for from a relay that sends nothing on (the floor).
        outcomes: dict[str, Outcome] = {r.name: Outcome(sent[r.name], [])
                                        for r in relays if not r.delivers}
        while True:
            records = tap.snapshot()
            now = time.time()
            for name in sorted(pending):
                mine = [r for r in records if r.body.get("routing_key") in keys[name]]
                outcome = Outcome(sent[name], mine, match_deliveries(sent[name], mine))
                outcomes[name] = outcome
                everything = all(t is not None for t in outcome.deliveries.values())
                last_request = max((r.at for r in mine), default=sends_done)
                quiet = now - max(last_request, sends_done) > idle
                if everything or quiet or now > deadline:
                    pending.discard(name)
            if not pending:
                return outcomes
            time.sleep(POLL_EVERY)


def _left_open(
    incidents: Sequence[dict[str, Any]], services: set[str], sent: Sequence[Sent]
) -> int:
    """Incidents still open although the relay accepted the check's resolve.

    A resolve refused at the door (relay down) is ASM's loss, not the relay's: the
    `webhooks refused while down` row counts those.
    """
    resolved = {
        x.action.check for x in sent if x.action.kind == "resolve" and 200 <= x.status < 300
    }
    count = 0
    for incident in incidents:
        if incident["service_id"] not in services or incident["status"] == "resolved":
            continue
        found = CHECK_RE.search(str(incident.get("title", "")))
        if found is not None and int(found.group(1)) in resolved:
            count += 1
    return count


def _send_all(
    relay: Relay, actions: Sequence[Action], t0: float, deadline: float, out: list[Sent]
) -> None:
    """Send each action at its time; a failed connection is recorded, not retried
    (ASM does not retry webhooks)."""
    session = requests.Session()
    for action in actions:
        if time.time() > deadline:
            break
        delay = t0 + action.at - time.time()
        if delay > 0:
            time.sleep(delay)
        sent_at = time.time()
        try:
            status = relay.send(session, action, sent_at)
        except requests.RequestException:
            status = 0
            session.close()
            session = requests.Session()
        out.append(Sent(action, sent_at, status, time.time()))
    session.close()


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Row:
    """One table row: how to read a figure out of a scenario result, and which way is up."""

    label: str
    scenario: str
    unit: str
    better: Literal["lower", "higher"]
    get: Callable[[ScenarioResult, str], float]
    floor: bool = False  # a figure the floor has too (it parses and delivers nothing)


def _latencies(res: ScenarioResult, relay: str, kind: Kind) -> list[float]:
    outcome = res.outcomes[relay]
    return [
        (t - outcome.sent[i].sent_at) * 1000.0
        for i, t in outcome.deliveries.items()
        if t is not None and outcome.sent[i].action.kind == kind
    ]


def _accept_ms(res: ScenarioResult, relay: str) -> list[float]:
    return [
        (x.answered_at - x.sent_at) * 1000.0
        for x in res.outcomes[relay].sent
        if 200 <= x.status < 300
    ]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def _delivered_pct(res: ScenarioResult, relay: str) -> float:
    outcome = res.outcomes[relay]
    if not outcome.deliveries:
        return float("nan")
    done = sum(1 for t in outcome.deliveries.values() if t is not None)
    return 100.0 * done / len(outcome.deliveries)


def _per_10k(res: ScenarioResult, relay: str) -> float:
    """CPU after start-up per 10,000 webhooks: what running costs. A run of a few hundred
    webhooks would otherwise be mostly the one-off start (the bridge's imports: 0.7 s)."""
    n = len(res.outcomes[relay].sent)
    cpu = res.usage[relay].cpu_seconds - res.extra[relay].get("startup_cpu_s", 0.0)
    return cpu * 10000.0 / n if n else float("nan")


ROWS: tuple[Row, ...] = (
    Row(
        "trigger latency p50",
        "healthy",
        "ms",
        "lower",
        lambda r, x: percentile(_latencies(r, x, "trigger"), 50),
    ),
    Row(
        "trigger latency p99",
        "healthy",
        "ms",
        "lower",
        lambda r, x: percentile(_latencies(r, x, "trigger"), 99),
    ),
    Row(
        "escalation latency p50",
        "healthy",
        "ms",
        "lower",
        lambda r, x: percentile(_latencies(r, x, "escalate"), 50),
    ),
    Row(
        "resolve latency p50",
        "healthy",
        "ms",
        "lower",
        lambda r, x: percentile(_latencies(r, x, "resolve"), 50),
    ),
    Row(
        "resolve latency p99",
        "healthy",
        "ms",
        "lower",
        lambda r, x: percentile(_latencies(r, x, "resolve"), 99),
    ),
    Row(
        "accept latency p50 (answer to the sender)",
        "healthy",
        "ms",
        "lower",
        lambda r, x: percentile(_accept_ms(r, x), 50),
        floor=True,
    ),
    Row(
        "accept latency p99 (answer to the sender)",
        "healthy",
        "ms",
        "lower",
        lambda r, x: percentile(_accept_ms(r, x), 99),
        floor=True,
    ),
    Row("delivered / accepted, healthy", "healthy", "%", "higher", _delivered_pct),
    Row("delivered / accepted, 5xx window", "fault", "%", "higher", _delivered_pct),
    Row(
        "incidents open after an accepted resolve, 5xx",
        "fault",
        "",
        "lower",
        lambda r, x: float(r.open_incidents[x]),
    ),
    Row("delivered / accepted, 429 storm", "ratelimit", "%", "higher", _delivered_pct),
    Row("time to drain, 429 storm", "ratelimit", "s", "lower", lambda r, x: r.extra[x]["drain_s"]),
    Row(
        "429 answers taken, 429 storm",
        "ratelimit",
        "",
        "lower",
        lambda r, x: r.extra[x]["throttled"],
    ),
    Row("delivered / accepted, kill -9", "kill", "%", "higher", _delivered_pct),
    Row(
        "incidents open after an accepted resolve, kill -9",
        "kill",
        "",
        "lower",
        lambda r, x: float(r.open_incidents[x]),
    ),
    Row(
        "webhooks refused while down, kill -9",
        "kill",
        "",
        "lower",
        lambda r, x: r.extra[x]["refused_at_door"],
    ),
    Row(
        "webhooks refused while down, kill -9, port held by systemd",
        "kill-held",
        "",
        "lower",
        lambda r, x: r.extra[x]["refused_at_door"],
    ),
    Row("delivered / accepted, kill -9, port held by systemd", "kill-held", "%", "higher",
        _delivered_pct),
    Row(
        "exec to listening, restart after kill -9",
        "kill",
        "s",
        "lower",
        lambda r, x: r.extra[x]["restart_listen_s"],
    ),
    Row(
        "exec to ready, restart after kill -9",
        "kill",
        "s",
        "lower",
        lambda r, x: r.extra[x]["restart_ready_s"],
    ),
    Row("CPU s per 10,000 alerts in, after start-up", "healthy", "s", "lower", _per_10k),
    Row("start-up CPU, exec to ready", "healthy", "s", "lower",
        lambda r, x: r.extra[x]["first_start_cpu_s"]),
    Row("peak RSS", "healthy", "MB", "lower", lambda r, x: r.usage[x].peak_rss / 1e6),
)


def _applies(row: Row, relay: str) -> bool:
    """The floor parses and delivers nothing: only its accept rows are figures."""
    return row.floor or relay != "floor"


def summarize(results: Sequence[ScenarioResult], relays: Sequence[str]) -> list[dict[str, Any]]:
    """Per row: median and range over runs for each relay, ratio, who is ahead."""
    table = []
    for row in ROWS:
        runs = [r for r in results if r.scenario == row.scenario]
        if not runs:
            continue
        entry: dict[str, Any] = {"row": row, "values": {}}
        for relay in relays:
            if not _applies(row, relay):
                entry["values"][relay] = []
                continue
            vals = [v for v in (row.get(r, relay) for r in runs if relay in r.outcomes)
                    if v == v]  # drop NaN; the HA pair runs the kill scenario only
            entry["values"][relay] = vals
        table.append(entry)
    return table


def _fmt(value: float) -> str:
    if value != value:
        return "n/a"
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _cell(vals: Sequence[float]) -> str:
    if not vals:
        return "n/a"
    med = statistics.median(vals)
    if len(vals) == 1 or min(vals) == max(vals):
        return _fmt(med)
    return f"{_fmt(med)} [{_fmt(min(vals))}, {_fmt(max(vals))}]"


def render_table(table: Sequence[dict[str, Any]], relays: Sequence[str]) -> str:
    """The comparison as a Markdown table (plain text reads fine too)."""
    names = {"bridge": "bridge", "alertmanager": "Alertmanager", "ha-pair": "HA pair",
             "floor": "floor (append + fsync)"}
    head = ["metric", "unit", *(names[r] for r in relays)]
    both = "bridge" in relays and "alertmanager" in relays
    if both:
        head += ["bridge / AM", "ahead"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in table:
        row: Row = entry["row"]
        vals = entry["values"]
        cells = [row.label, row.unit or "count", *(_cell(vals[r]) for r in relays)]
        if both:
            b = statistics.median(vals["bridge"]) if vals["bridge"] else float("nan")
            a = statistics.median(vals["alertmanager"]) if vals["alertmanager"] else float("nan")
            ratio = b / a if a == a and b == b and a != 0 else float("nan")
            cells.append("n/a" if ratio != ratio else f"{ratio:.2f}")
            cells.append(_ahead(row.better, b, a))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _ahead(better: str, bridge: float, am: float) -> str:
    if bridge != bridge or am != am:
        return "n/a"
    if bridge == am:
        return "tie"
    lower = bridge < am
    return "bridge" if lower == (better == "lower") else "Alertmanager"


def machine_description() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        mem = f"{int(first.split()[1]) / 1024 / 1024:.0f} GiB"
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem} RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}, {alertmanager_version()}"
    )


def alertmanager_version() -> str:
    binary = shutil.which(AM_BINARY)
    if binary is None:
        return "Alertmanager not installed"
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "Alertmanager (version unknown)"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "Alertmanager (version unknown)"


def render_report(
    table: Sequence[dict[str, Any]],
    relays: Sequence[str],
    settings: Settings,
    loads: tuple[str, str],
    started: datetime,
) -> str:
    s = settings
    mode = "smoke" if s.smoke else "full"
    return (
        f"Bridge vs Alertmanager ({mode} mode), {started:%Y-%m-%d %H:%M} UTC\n\n"
        f"Machine: {machine_description()}\n"
        f"Load average at start / end: {loads[0]} / {loads[1]}\n"
        f"Workload: {s.checks} checks over {s.services} services at {s.rate:g} webhooks/s, "
        f"{s.escalate_fraction:.0%} escalate W -> F, resolve "
        f"{0.75 * s.hold:g}-{1.25 * s.hold:g} s after the trigger; "
        f"5xx for {s.fault_seconds:g} s from a quarter of the run; 429 storm: "
        f"{s.burst_checks} checks (trigger + resolve) on one key at {s.burst_rate:g}/s, "
        + (
            f"limit {s.rate_limit_per_minute}/min per key; "
            if s.rate_limit_per_minute
            else "scripted 429s with Retry-After: 1; "
        )
        + f"kill -9 half-way, {s.kill_down_seconds:g} s down (kill-held: the same with the"
        " port held by a supervisor, as a systemd socket unit holds it: the bridge's"
        " LISTEN_FDS, Alertmanager's --web.systemd-socket)"
        + ("; HA pair: two bridges on one PostgreSQL behind HAProxy, one of them killed"
           " (kill scenario only)" if "ha-pair" in relays else "")
        + ("; floor: a bare asyncio server that appends each body with fsync and answers"
           " 202 (healthy scenario, accept rows only)" if "floor" in relays else "")
        + f". Alertmanager group_interval "
        f"{s.group_interval}. Medians of {s.runs} run(s), [min, max] over runs in brackets.\n\n"
        + render_table(table, relays)
    )


def _loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


# --------------------------------------------------------------------------- main


def ensure_alertmanager(install: bool) -> str | None:
    """Path of the binary; with `install`, run bench/setup_alertmanager.sh first."""
    if shutil.which(AM_BINARY) is None and install:
        subprocess.run(["bash", str(SETUP_SCRIPT)], check=True, timeout=900)
    return shutil.which(AM_BINARY)


def ha_pair_missing() -> str | None:
    """What the HA pair needs and this machine lacks (None: nothing)."""
    from bench.ha_pair import HAPROXY_HINT, haproxy_binary
    from sandbox.postgres_cluster import INSTALL_HINT, find_binaries

    if find_binaries() is None:
        return f"PostgreSQL server binaries not found: {INSTALL_HINT}"
    if haproxy_binary() is None:
        return f"HAProxy not found: {HAPROXY_HINT}"
    return None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny N and short faults, one run")
    p.add_argument("--install", action="store_true", help="install Alertmanager if missing")
    p.add_argument("--runs", type=int, help="runs per scenario (medians are reported)")
    p.add_argument("--checks", type=int, help="checks per run")
    p.add_argument("--rate", type=float, help="webhooks per second to each relay")
    p.add_argument("--fault-seconds", type=float, help="how long PagerDuty answers 5xx")
    p.add_argument("--burst-checks", type=int, help="checks in the 429 storm")
    p.add_argument("--group-interval", help="Alertmanager group_interval (e.g. 1s)")
    p.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"subset of {','.join(SCENARIOS)}"
    )
    p.add_argument("--relays", default=",".join(RELAYS), help=f"subset of {','.join(RELAYS)}")
    p.add_argument("--out", type=Path, help="Markdown file (default bench/results/...)")
    p.add_argument("--json", type=Path, help="also write the raw per-run figures as JSON")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    base = SMOKE if args.smoke else FULL
    overrides = {
        "runs": args.runs,
        "checks": args.checks,
        "rate": args.rate,
        "fault_seconds": args.fault_seconds,
        "burst_checks": args.burst_checks,
        "group_interval": args.group_interval,
    }
    values = {**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}}
    # Bounded by construction: refuse sizes that cannot finish in reasonable time.
    if not 1 <= values["runs"] <= 20 or not 1 <= values["checks"] <= 5000:
        raise SystemExit("--runs must be 1..20 and --checks 1..5000")
    if not 0.1 <= values["rate"] <= 500 or not 0 <= values["fault_seconds"] <= 600:
        raise SystemExit("--rate must be 0.1..500 and --fault-seconds 0..600")
    return Settings(**values)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    relays = [r for r in args.relays.split(",") if r]
    scenarios = [x for x in args.scenarios.split(",") if x]
    if set(relays) - set(RELAYS) or set(scenarios) - set(SCENARIOS):
        raise SystemExit(f"relays: {RELAYS}; scenarios: {SCENARIOS}")
    if "alertmanager" in relays and ensure_alertmanager(args.install) is None:
        print(
            f"{AM_BINARY} not found: run `sudo bash {SETUP_SCRIPT.relative_to(ROOT)}` "
            "or pass --install",
            file=sys.stderr,
        )
        return 2
    if "ha-pair" in relays and "kill" in scenarios and (missing := ha_pair_missing()):
        print(f"{missing}; or leave ha-pair out of --relays", file=sys.stderr)
        return 2

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def terminate(signum: int, frame: object) -> None:
        # Unwind like Ctrl-C so every `finally` stops the relays and the sandbox.
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)  # also when started with SIGINT ignored

    started = datetime.now(UTC)
    load_start = _loadavg()
    harness = Harness(settings, relays, log)
    results: list[ScenarioResult] = []
    for run in range(settings.runs):
        for scenario in scenarios:
            t = time.monotonic()
            result = harness.run(scenario)
            results.append(result)
            summary = ", ".join(
                f"{name} {sum(v is not None for v in o.deliveries.values())}"
                f"/{len(o.deliveries)} delivered"
                for name, o in result.outcomes.items()
            )
            log(
                f"run {run + 1}/{settings.runs} {scenario}: {summary} "
                f"({time.monotonic() - t:.0f} s)"
            )

    table = summarize(results, relays)
    report = render_report(table, relays, settings, (load_start, _loadavg()), started)
    print(report)
    out = args.out or RESULTS_DIR / f"compare-{started:%Y%m%dT%H%M%S}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    log(f"wrote {out}")
    if args.json:
        args.json.write_text(json.dumps(raw_figures(results, relays), indent=2))
    return 0


def raw_figures(results: Sequence[ScenarioResult], relays: Sequence[str]) -> list[dict[str, Any]]:
    """Every row's value per run and relay, and what was not delivered (for diagnosis)."""
    out: list[dict[str, Any]] = []
    for res in results:
        ran = [relay for relay in relays if relay in res.outcomes]
        for relay in ran:
            outcome = res.outcomes[relay]
            lost = [
                {
                    "check": outcome.sent[i].action.check,
                    "kind": outcome.sent[i].action.kind,
                    "sent_at": outcome.sent[i].sent_at,
                }
                for i, t in sorted(outcome.deliveries.items())
                if t is None
            ]
            out.append({"scenario": res.scenario, "relay": relay, "not_delivered": lost})
        for row in ROWS:
            if row.scenario != res.scenario:
                continue
            out.append(
                {
                    "scenario": res.scenario,
                    "metric": row.label,
                    "unit": row.unit,
                    **{relay: row.get(res, relay) for relay in ran if _applies(row, relay)},
                }
            )
    return out


if __name__ == "__main__":
    sys.exit(main())
