"""An HA pair on loopback: bridges (`python -m bridge`) on one PostgreSQL, HAProxy in front.

Used by the HA test (tests/ha) and the benchmarks (bench/ha_load.py, the Alertmanager
comparison). HAProxy is Debian's, its config written next to the logs; it health-checks
each bridge on /readyz and, when a connection to a bridge is refused or closed before
any answer (`retry-on conn-failure empty-response`), sends the request again to the
other bridge (`retries`, `option redispatch`). ASM does not retry a webhook: this retry
is what makes a bridge's death invisible to it. A retried request that the dead bridge
had committed is answered as a duplicate: the store tells, for every bridge at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
HAPROXY_HINT = "apt-get install haproxy (Debian's package)"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy",) if Path(p).exists()), None)


class BridgeProcess:
    """One bridge: `python -m bridge` on its own loopback port, its log in `workdir`."""

    def __init__(self, name: str, workdir: Path, routes: Path, events_url: str,
                 env: Mapping[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.routes = routes
        self.events_url = events_url
        self.env = dict(env)
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, wait: bool = True) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "--routes", str(self.routes),
             "--data-dir", str(self.workdir / f"{self.name}-data"), "--port", str(self.port),
             "--events-url", self.events_url],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            env={**os.environ, "PYTHONPATH": str(REPO), **self.env}, start_new_session=True)
        log.close()
        self.starts += 1
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"bridge {self.name} did not get ready; its log:\n"
                           f"{self.log_path.read_text(errors='replace')[-3000:]}")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for a clean stop; the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def close(self) -> None:
        self.terminate(10)


class HaProxy:
    """Debian's HAProxy on a loopback port in front of `servers` (name, port)."""

    def __init__(self, workdir: Path, servers: Sequence[tuple[str, int]], *,
                 retry_on: str = "conn-failure empty-response") -> None:
        binary = haproxy_binary()
        if binary is None:
            raise FileNotFoundError(f"haproxy not found; {HAPROXY_HINT}")
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.socket = workdir / "haproxy.sock"
        self.config = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        lines = [
            "global",
            "    maxconn 2000",
            f"    stats socket {self.socket} mode 600 level admin",
            # One line per request on stdout (haproxy.log): its termination state says
            # what happened to a request that failed.
            "    log stdout format raw local0 info",
            "defaults",
            "    mode http",
            "    log global",
            "    option httplog",
            "    timeout connect 1s",
            "    timeout client 30s",
            "    timeout server 30s",
            "    timeout check 2s",
            # A request the chosen bridge refused (or closed without answering) goes to
            # the other one: 3 tries, each on another server.
            "    retries 3",
            "    option redispatch 1",
            f"    retry-on {retry_on}",
            # The whole request in HAProxy's buffer before a bridge is chosen: what a
            # retry sends again (a webhook is a few KB).
            "    option http-buffer-request",
            "frontend webhooks",
            f"    bind 127.0.0.1:{self.port}",
            "    default_backend bridges",
            "backend bridges",
            "    balance roundrobin",
            "    option httpchk GET /readyz",
            "    http-check expect status 200",
            "    default-server inter 300ms fall 2 rise 2",
            *(f"    server {name} 127.0.0.1:{port} check" for name, port in servers),
        ]
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([self.binary, "-db", "-f", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("haproxy did not start: "
                                   + self.log_path.read_text(errors="replace")[-2000:])
            time.sleep(0.05)

    def stats(self) -> dict[str, dict[str, str]]:
        """`show stat` per server (and BACKEND): status, retries, redispatches, errors."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        header, *rows = b"".join(chunks).decode().strip().splitlines()
        names = header.lstrip("# ").split(",")
        table = {}
        for row in rows:
            values = dict(zip(names, row.split(","), strict=False))
            if values.get("pxname") == "bridges":
                table[values["svname"]] = values
        return table

    def wait_up(self, names: Sequence[str], timeout: float = START_TIMEOUT) -> None:
        """Until HAProxy's health checks see each of these servers UP."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                stats = self.stats()
                if all(stats.get(n, {}).get("status") == "UP" for n in names):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"haproxy never saw {', '.join(names)} up")

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class HaPair:
    """`replicas` bridges on `store_url` behind HAProxy: `with HaPair(...) as pair:`."""

    def __init__(self, workdir: Path, routes: Path, events_url: str, store_url: str, *,
                 replicas: int = 2, env: Mapping[str, str] | None = None,
                 retry_on: str = "conn-failure empty-response") -> None:
        self.workdir = workdir
        bridge_env = {"APICA_PD_STORE_URL": store_url, **(env or {})}
        self.bridges = [BridgeProcess(f"bridge{i + 1}", workdir, routes, events_url,
                                      bridge_env) for i in range(replicas)]
        self.proxy = HaProxy(workdir, [(b.name, b.port) for b in self.bridges],
                             retry_on=retry_on)

    @property
    def url(self) -> str:
        return self.proxy.url

    def __enter__(self) -> HaPair:
        try:
            for bridge in self.bridges:  # one at a time: the first migrates the schema
                bridge.start()
            self.proxy.start()
            self.proxy.wait_up([b.name for b in self.bridges])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def restart(self, bridge: BridgeProcess) -> None:
        """Start it again and wait until HAProxy routes to it."""
        bridge.start()
        self.proxy.wait_up([bridge.name])

    def close(self) -> None:
        self.proxy.close()
        for bridge in self.bridges:
            bridge.close()
