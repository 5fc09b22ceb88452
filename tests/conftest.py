"""Suite-wide test settings.

Hypothesis profiles: CI sets HYPOTHESIS_PROFILE=ci for a reproducible, modest run;
locally the default profile applies unless the variable names another one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, settings

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
