"""`make demo` on the real engine: the same stories, and the output names engine and provider."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from apica_pagerduty.demo import ALL_STORIES, check_incidents, run_demo
from apica_pagerduty.pulumi_engine import Provider

pytestmark = pytest.mark.e2e


def test_the_demo_runs_on_the_real_engine_and_names_it_and_the_provider(
    tools: Path, provider: Provider, tmp_path: Path
):
    out = io.StringIO()
    run = run_demo(work_dir=tmp_path, out=out, engine="pulumi", find_tools=lambda: tools)
    assert check_incidents(run.incidents) == []
    assert len(run.incidents) == sum(len(story.expected) for story in ALL_STORIES)
    assert run.engine == "the real Pulumi engine (pulumi v3.274.0 from tools/build.sh)"
    assert run.provider == provider.label
    steps = [line for line in out.getvalue().splitlines() if line.startswith("==> ")]
    assert steps[1] == (
        f"==> applying example.yaml with {run.engine}, PagerDuty provider: {provider.label}"
    )
    assert steps[2] == "==> handing the integration keys to the bridge (apica-pd routes pull)"
