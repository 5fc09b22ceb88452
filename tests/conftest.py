"""Suite-wide test settings, and the sandboxes that several parts' tests talk to: ASM,
and a private PostgreSQL cluster (the bridge's shared store; tests/bridge, tests/ha).

Hypothesis profiles: CI sets HYPOTHESIS_PROFILE=ci for a reproducible, modest run;
locally the default profile applies unless the variable names another one.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from sandbox.asm_api import AsmSandbox
from sandbox.clock import ManualClock
from sandbox.postgres_cluster import INSTALL_HINT, PostgresCluster, find_binaries

# The ticket of Apica's own API documentation example; not a real one.
ASM_TICKET = "9C94CBC4-C64E-4AEA-BBB2-8241445B06CC"
ASM_USER = "reader"
ASM_PASSWORD = "reader-password-0123"
ASM_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    # CI machines are slow and shared: timing health checks would only flake.
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a throwaway identity; its stdout, stripped."""
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com",
         "-c", "commit.gpgsign=false", *args],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


@pytest.fixture
def asm_clock() -> ManualClock:
    return ManualClock(ASM_START)


@pytest.fixture
def asm(asm_clock: ManualClock) -> Iterator[AsmSandbox]:
    """A running ASM sandbox accepting ASM_TICKET and the Basic user ASM_USER."""
    with AsmSandbox(auth_ticket=ASM_TICKET, users={ASM_USER: ASM_PASSWORD},
                    clock=asm_clock) as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster on loopback for the whole session."""
    binaries = find_binaries()
    if binaries is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL server binaries not found; {INSTALL_HINT}")
        pytest.skip(f"PostgreSQL server binaries not found; {INSTALL_HINT}")
    # Not durable (fsync off): nothing here crashes the machine, and every store a test
    # opens is a schema migration (half its cost is the fsyncs).
    with PostgresCluster(binaries, durable=False) as cluster:
        yield cluster
