"""HA benchmark: accepted alerts/s and accept latency, SQLite beside PostgreSQL with one and
two bridge replicas, in one run.

    .venv/bin/python bench/ha_load.py            # full run, about two minutes
    .venv/bin/python bench/ha_load.py --quick    # smoke run

Prints figures, asserts nothing (not a test). Setups, each fresh (a new outbox):

- sqlite, 1 bridge: the default store, the bridge's own port;
- postgresql, 1 bridge: the PostgreSQL store (a private cluster on loopback, fsync on,
  `synchronous_commit = on`), the bridge's own port;
- postgresql, 2 bridges + HAProxy: two `python -m bridge` on one database behind
  Debian's HAProxy (`bench.ha_pair`), the load balancer's port.

Per setup, with bench/bridge_load.py's load generator and PagerDuty sandbox (a child
process; 100 routes, one integration each): (1) latency: an open loop at --rate alerts/s
for --seconds, accept latency from when each webhook was due to its 202; (2) throughput:
a closed loop of --alerts alerts over --concurrency keep-alive connections; sustained
accepted alerts/s (each 202 after a durable commit). The bridges deliver meanwhile, as
in production. The machine is shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bridge_load import Sandbox, alerts, closed_loop, open_loop, pct  # noqa: E402
from bench.ha_pair import BridgeProcess, HaPair  # noqa: E402

SETUPS = ("sqlite-1", "postgresql-1", "postgresql-2-haproxy")


@dataclass(frozen=True)
class Figures:
    setup: str
    accepted_per_s: float
    refused: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def _routes_file(work: Path, sandbox: Sandbox) -> tuple[Path, list[str]]:
    from contract.routes_file import RoutesFile, write_routes_file

    names = [f"r{i:03d}" for i in range(len(sandbox.keys))]
    routes = RoutesFile.model_validate({"version": 1, "stack": "bench", "routes": {
        name: {"service_name": f"Bench {i}", "service_id": service_id,
               "integration_name": f"Apica-Bench-{i}", "routing_key": key}
        for i, (name, (service_id, key)) in enumerate(zip(names, sandbox.keys, strict=True))}})
    return write_routes_file(work / "routes.json", routes), names


@contextlib.contextmanager
def _setup(name: str, work: Path, sandbox: Sandbox, pg: object | None) -> Iterator[int]:
    """The setup running; yields the port webhooks go to."""
    routes, _ = _routes_file(work, sandbox)
    env = {"APICA_PD_LOG_LEVEL": "WARNING"}
    url = None
    if name != "sqlite-1":
        assert pg is not None
        url = pg.new_schema(name.replace("-", "_"))  # type: ignore[attr-defined]
    if url is not None and name != "postgresql-1":
        with HaPair(work, routes, sandbox.events_url, url, env=env) as pair:
            yield pair.proxy.port
        return
    bridge = BridgeProcess("bridge", work, routes, sandbox.events_url,
                           env if url is None else {**env, "APICA_PD_STORE_URL": url})
    bridge.start()
    try:
        yield bridge.port
    finally:
        bridge.close()


def measure(name: str, port: int, routes: Sequence[str], args: argparse.Namespace,
            first_id: Callable[[int], int]) -> Figures:
    latency_items = alerts(first_id(int(args.rate * args.seconds)),
                           int(args.rate * args.seconds), routes)
    results = asyncio.run(open_loop("127.0.0.1", port, latency_items, args.rate))
    waits = [r.done - r.scheduled for r in results if r.status == 202]
    burst = alerts(first_id(args.alerts), args.alerts, routes)
    done, seconds = asyncio.run(closed_loop("127.0.0.1", port, burst, args.concurrency))
    accepted = sum(1 for r in done if r.status == 202)
    refused = sum(1 for r in (*results, *done) if r.status != 202)
    return Figures(name, accepted / seconds, refused, pct(waits, 50) * 1000,
                   pct(waits, 99) * 1000, max(waits) * 1000)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (seconds)")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--alerts", type=int, default=15_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--setups", default=",".join(SETUPS))
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.alerts = 2.0, 600
    from sandbox.postgres_cluster import PostgresCluster

    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    counter = [1]

    def first_id(count: int) -> int:
        counter[0] += count
        return counter[0] - count

    figures = []
    sandbox = Sandbox(100)
    try:
        with PostgresCluster() as pg, tempfile.TemporaryDirectory() as tmp:
            for name in args.setups.split(","):
                work = Path(tmp) / name
                work.mkdir()
                with _setup(name, work, sandbox, pg) as port:
                    _, routes = _routes_file(work, sandbox)
                    figures.append(measure(name, port, routes, args, first_id))
                    print(f"  {figures[-1]}", flush=True)
    finally:
        sandbox.stop()
    load_after = os.getloadavg()
    print(f"\nHA benchmark, {started}, {os.cpu_count()} cores, load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; accept latency at "
          f"{args.rate:.0f}/s for {args.seconds:.0f} s; throughput: {args.alerts} alerts over "
          f"{args.concurrency} connections")
    print(f"{'setup':<24} {'accepted/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'refused':>8}")
    for f in figures:
        print(f"{f.setup:<24} {f.accepted_per_s:>11.0f} {f.p50_ms:>8.2f} {f.p99_ms:>8.2f} "
              f"{f.max_ms:>8.2f} {f.refused:>8}")
    print("targets: postgresql-2-haproxy >= 1,000 accepted/s; accept p99 < 20 ms at 100/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
