"""Load benchmark: the real bridge (`python -m bridge`) against the PagerDuty sandbox.

    /work/venv/bin/python bench/bridge_load.py            # full run, about a minute
    /work/venv/bin/python bench/bridge_load.py --quick    # smoke run, a few seconds

Prints figures, asserts nothing (not a test). Phases, each on the same bridge:

1. latency: open loop at --rate alerts/s for --seconds over --routes routes
   (one PagerDuty integration each, so no key is near its 120/min limit);
   accept latency = from scheduled send to the 202 (coordinated omission
   included), end-to-end = from scheduled send to the sandbox's 202 for its event.
2. throughput: closed loop, --alerts alerts over --concurrency keep-alive
   connections; sustained accepted alerts/s with durable (fsynced) commits.
3. backlog: the sandbox answers 503; --backlog more alerts are accepted; the
   bridge's resident memory once they are all pending.
4. floor: a minimal loopback HTTP server that appends each body to a file with
   fsync, driven by the same load generator (throughput and latency).

The load generator is asyncio over raw HTTP/1.1 keep-alive sockets, in this
process; the sandbox runs in a child process, so it does not share our GIL. All of
them share the machine's cores, so the throughput rows also print the CPU the load
generator and the sandbox took: the floor is driven by the same generator at the
same concurrency, but without the sandbox (it has nothing to deliver).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# -- load generator -------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    path: str
    body: bytes
    key: int  # correlates the request with what reaches PagerDuty


@dataclass(frozen=True)
class Result:
    key: int
    scheduled: float  # wall clock, comparable across processes
    done: float
    status: int


class Connection_:
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def closed_loop(host: str, port: int, items: Sequence[Item], concurrency: int
                      ) -> tuple[list[Result], float]:
    """Send every item as fast as `concurrency` connections allow; (results, seconds)."""
    queue = iter(items)
    results: list[Result] = []

    async def worker() -> None:
        conn = Connection_(host, port)
        for item in queue:
            start = time.time()
            status = await conn.post(item.path, item.body)
            results.append(Result(item.key, start, time.time(), status))
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, time.perf_counter() - started


async def open_loop(host: str, port: int, items: Sequence[Item], rate: float,
                    connections: int = 32) -> list[Result]:
    """Item i is due at t0 + i/rate; latency counts from when it was due."""
    t0 = time.time() + 0.2
    queue: asyncio.Queue[tuple[float, Item]] = asyncio.Queue()
    for i, item in enumerate(items):
        queue.put_nowait((t0 + i / rate, item))
    results: list[Result] = []

    async def worker() -> None:
        conn = Connection_(host, port)
        while not queue.empty():
            due, item = queue.get_nowait()
            await asyncio.sleep(max(due - time.time(), 0))
            status = await conn.post(item.path, item.body)
            results.append(Result(item.key, due, time.time(), status))
        conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return results


def alerts(first_id: int, count: int, routes: Sequence[str]) -> list[Item]:
    items = []
    for check_id in range(first_id, first_id + count):
        body = {"action": "trigger", "severity": "W", "check_id": check_id,
                "check_name": f"bench check {check_id}", "check_type": "URL",
                "message": f"bench alert {check_id}", "timestamp": "2026-11-26T11:00:00",
                "location": "Stockholm"}
        route = routes[check_id % len(routes)]
        items.append(Item(f"/v1/asm/{route}", json.dumps(body).encode(), check_id))
    return items


# -- the PagerDuty sandbox in a child process -----------------------------------------


def _sandbox_main(conn: Connection, route_count: int) -> None:
    from sandbox.server import PagerDutySandbox

    with PagerDutySandbox(events_per_minute=None) as pd:
        received: list[tuple[float, str | None, int]] = []
        record = pd.state.record_event

        def timed_record(status: int, body: object) -> None:
            # The sandbox logs seconds; e2e latency needs the exact moment it answered.
            key = body.get("dedup_key") if isinstance(body, dict) else None
            received.append((time.time(), key, status))
            record(status, body)

        pd.state.record_event = timed_record  # type: ignore[method-assign]
        keys = []
        for i in range(route_count):
            service = pd.state.create_service(name=f"Bench {i}", urgency="severity_based")
            keys.append((service["id"], pd.state.add_integration(
                service["id"], name=f"Apica-Bench-{i}")["integration_key"]))
        conn.send((pd.events_url, keys))
        while True:
            command, *args = conn.recv()
            if command == "received":
                conn.send(received[args[0]:])
            elif command == "fail":
                pd.faults.fail(status=503, seconds=args[0])
                conn.send(True)
            elif command == "stop":
                conn.send(True)
                return


class Sandbox:
    def __init__(self, route_count: int) -> None:
        self._conn, child = multiprocessing.Pipe()
        self._proc = multiprocessing.Process(target=_sandbox_main, args=(child, route_count),
                                             daemon=True)
        self._proc.start()
        self.events_url, self.keys = self._conn.recv()

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None
        return self._proc.pid

    def call(self, *command: object) -> object:
        self._conn.send(command)
        return self._conn.recv()

    def stop(self) -> None:
        self.call("stop")
        self._proc.join(10)


# -- the bridge and the floor server as processes --------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(port: int, path: str, timeout: float = 20.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code == 200:
                return
        except requests.RequestException:  # refused, or waiting in the backlog: starting
            pass
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered on port {port}{path}")


def start_bridge(work: Path, sandbox: Sandbox) -> tuple[subprocess.Popen, int, list[str]]:
    from contract.routes_file import RoutesFile, write_routes_file

    names = [f"r{i:03d}" for i in range(len(sandbox.keys))]
    routes = RoutesFile.model_validate({"version": 1, "stack": "bench", "routes": {
        name: {"service_name": f"Bench {i}", "service_id": service_id,
               "integration_name": f"Apica-Bench-{i}", "routing_key": key}
        for i, (name, (service_id, key)) in enumerate(zip(names, sandbox.keys, strict=True))}})
    routes_file = write_routes_file(work / "routes.json", routes)
    port = free_port()
    log = (work / "bridge.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--routes", str(routes_file),
         "--data-dir", str(work / "data"), "--host", "127.0.0.1", "--port", str(port),
         "--events-url", sandbox.events_url],
        cwd=REPO, stdout=log, stderr=log,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
    )
    wait_http(port, "/readyz")
    return proc, port, names


FLOOR_SERVER = r"""
import asyncio, os, sys
path, port = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
OK = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

async def handle(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        length = 0
        while (h := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = h.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        os.write(fd, body + b"\n")
        os.fsync(fd)
        writer.write(OK)
        await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def start_floor(work: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", FLOOR_SERVER, str(work / "floor.log"),
                             str(port)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    raise RuntimeError("floor server did not start")


# -- measuring ---------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(round(p / 100 * (len(ordered) - 1)), len(ordered) - 1)]


def ms(values: Sequence[float]) -> str:
    return (f"p50 {pct(values, 50) * 1000:7.2f} ms  p99 {pct(values, 99) * 1000:7.2f} ms  "
            f"max {max(values) * 1000:7.2f} ms  (n={len(values)})")


def metric(port: int, name: str) -> float:
    import requests

    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """User + system CPU time of this process (the load generator) so far."""
    times = os.times()
    return times.user + times.system


def wait_for(condition, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    from bridge.intake.escalation import dedup_key

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="small numbers, smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.routes, args.seconds, args.alerts, args.backlog = 20, 2.0, 1000, 1000

    figures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bridge-bench-") as tmp:
        work = Path(tmp)
        sandbox = Sandbox(args.routes)
        bridge, port, names = start_bridge(work, sandbox)
        try:
            # 1. latency at a steady rate, PagerDuty healthy
            count = int(args.rate * args.seconds)
            items = alerts(1, count, names)
            results = asyncio.run(open_loop("127.0.0.1", port, items, args.rate))
            accepted = [r for r in results if r.status == 202]
            figures[f"accept latency @{args.rate:g}/s"] = ms([r.done - r.scheduled
                                                               for r in accepted])
            wanted = {dedup_key(names[r.key % len(names)], f"id:{r.key}", "low"): r
                      for r in accepted}
            arrived: dict[str, float] = {}

            def all_arrived() -> bool:
                for t, key, status in sandbox.call("received", 0):  # type: ignore[union-attr]
                    if status == 202 and key in wanted:
                        arrived.setdefault(key, t)
                return len(arrived) == len(wanted)

            wait_for(all_arrived, timeout=60)
            figures[f"end-to-end @{args.rate:g}/s"] = ms(
                [arrived[k] - wanted[k].scheduled for k in arrived])
            if len(arrived) < len(wanted):
                figures["end-to-end missing"] = f"{len(wanted) - len(arrived)} not delivered"

            # 2. sustained throughput (delivery keeps running alongside)
            items = alerts(1_000_000, args.alerts, names)
            cpu_before = cpu_seconds(bridge.pid)
            sandbox_before, load_before = cpu_seconds(sandbox.pid), own_cpu_seconds()
            results, seconds = asyncio.run(
                closed_loop("127.0.0.1", port, items, args.concurrency))
            cpu = cpu_seconds(bridge.pid) - cpu_before
            sandbox_cpu = cpu_seconds(sandbox.pid) - sandbox_before
            load_cpu = own_cpu_seconds() - load_before
            ok = sum(1 for r in results if r.status == 202)
            bridge_rate = ok / seconds
            figures["throughput"] = (f"{bridge_rate:8.0f} accepted alerts/s "
                                     f"({ok}/{len(results)} in {seconds:.2f} s, "
                                     f"concurrency {args.concurrency})")
            figures["throughput latency"] = ms([r.done - r.scheduled for r in results])
            figures["bridge CPU"] = (f"{cpu / max(ok, 1) * 1000:8.2f} ms per accepted alert "
                                     f"({cpu / seconds * 100:.0f}% of one core, delivery "
                                     "included)")
            figures["others' CPU"] = (f"load generator {load_cpu / seconds * 100:.0f}%, "
                                      f"sandbox {sandbox_cpu / seconds * 100:.0f}% of one core")

            # 3. memory with a backlog: PagerDuty down, everything stays pending
            sandbox.call("fail", 3600)
            asyncio.run(closed_loop("127.0.0.1", port,
                                    alerts(2_000_000, args.backlog, names), args.concurrency))
            wait_for(lambda: metric(port, "apica_bridge_outbox_pending") >= args.backlog, 30)
            pending = metric(port, "apica_bridge_outbox_pending")
            figures["backlog RSS"] = (f"{rss_mb(bridge.pid):8.1f} MB resident with "
                                      f"{pending:.0f} events pending")
        finally:
            bridge.terminate()
            bridge.wait(20)
            sandbox.stop()

        # 4. the floor: append + fsync per body, same load generator
        floor, floor_port = start_floor(work)
        try:
            items = alerts(1, args.alerts, names)
            floor_before, load_before = cpu_seconds(floor.pid), own_cpu_seconds()
            results, seconds = asyncio.run(
                closed_loop("127.0.0.1", floor_port, items, args.concurrency))
            floor_cpu = cpu_seconds(floor.pid) - floor_before
            load_cpu = own_cpu_seconds() - load_before
            floor_rate = len(results) / seconds
            figures["floor throughput"] = (
                f"{floor_rate:8.0f} bodies/s (append + fsync each; floor server "
                f"{floor_cpu / seconds * 100:.0f}%, load generator "
                f"{load_cpu / seconds * 100:.0f}% of one core)")
            results = asyncio.run(open_loop("127.0.0.1", floor_port,
                                            alerts(1, int(args.rate * args.seconds), names),
                                            args.rate))
            figures[f"floor latency @{args.rate:g}/s"] = ms(
                [r.done - r.scheduled for r in results])
            figures["bridge vs floor"] = (f"floor/bridge throughput = "
                                          f"{floor_rate / bridge_rate:.2f}x")
        finally:
            floor.terminate()
            floor.wait(10)

    width = max(map(len, figures))
    load = os.getloadavg()[0]
    print(f"bridge load benchmark ({os.cpu_count()} CPUs, load average {load:.1f} at the "
          f"end, Python {sys.version.split()[0]}; nearest-rank percentiles)")
    for name, value in figures.items():
        print(f"  {name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
