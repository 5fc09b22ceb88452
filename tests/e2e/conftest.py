"""The real Pulumi engine on the project's program against the sandbox: shared fixtures.

The CLI is tools/build.sh's (`make e2e` builds it; these tests only look for a cache
hit). Without it the tests fail under CI=true and skip locally. The PagerDuty plugin
is the stand-in unless APICA_PD_PAGERDUTY_PLUGIN names another binary; the report
header, the terminal summary and the junit properties say which one ran.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from apica_pagerduty.pulumi_engine import (
    PLUGIN_ENV,
    Provider,
    ToolsNotBuilt,
    built_tools,
    choose_provider,
    cli_version,
)
from infra.preview import preview_stack_file
from infra.validate import load_stack
from sandbox.directory import KINDS
from sandbox.pulumi_apply import account_seed
from sandbox.pulumi_provider import STAND_IN
from sandbox.seed import apply_seed
from sandbox.server import PagerDutySandbox

_RAN: pytest.StashKey[str] = pytest.StashKey()
# Objects in the sandbox by collection: what `pulumi destroy` must return it to.
Snapshot = dict[str, set[str]]
# (type, logical name, parent's logical name or None, protected)
Declared = set[tuple[str, str, str | None, bool]]


def _missing(reason: str) -> NoReturn:
    # CI must run these: a missing CLI there is a failure, locally a skip.
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def pytest_report_header(config: pytest.Config) -> str:
    custom = os.environ.get(PLUGIN_ENV)
    return f"e2e PagerDuty provider: {custom + ' (' + PLUGIN_ENV + ')' if custom else STAND_IN}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    ran = config.stash.get(_RAN, None)
    if ran is not None:
        terminalreporter.write_sep("-", "e2e engine and PagerDuty provider")
        terminalreporter.write_line(ran)


@pytest.fixture(scope="session")
def tools() -> Path:
    """The bin directory with `pulumi` and its Python language host."""
    try:
        return built_tools()
    except ToolsNotBuilt as exc:
        _missing(f"the Pulumi CLI is {exc}; `make e2e` builds it")


@pytest.fixture(scope="session")
def provider(
    tools: Path,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
    record_testsuite_property: Callable[[str, object], None],
) -> Provider:
    chosen = choose_provider(tmp_path_factory.mktemp("plugin"))
    engine = f"pulumi {cli_version(tools)} from {tools}"
    pytestconfig.stash[_RAN] = f"engine: {engine}\nPagerDuty provider: {chosen.label}"
    record_testsuite_property("pulumi_engine", engine)
    record_testsuite_property("pagerduty_provider", chosen.label)
    print(f"PagerDuty provider: {chosen.label}")
    return chosen


def seeded_sandbox(stack_file: Path) -> Iterator[tuple[PagerDutySandbox, Snapshot]]:
    """A running sandbox holding the account `stack_file` needs, and a snapshot of it."""
    with PagerDutySandbox() as pd:
        apply_seed(pd.state, account_seed(load_stack(stack_file)))
        yield pd, snapshot(pd)


def snapshot(pd: PagerDutySandbox) -> Snapshot:
    with pd.state.lock:
        return {
            collection: {item["id"] for item in pd.state.directory.list(collection)}
            for collection in KINDS
        }


def ran_on(up: str, provider: Provider) -> None:
    """The engine's output shows the provider the summary names, and no other."""
    assert (STAND_IN in up) is provider.stand_in, up[-3000:]


def offline_declared(stack_file: Path, stack: str) -> Declared:
    preview = preview_stack_file(stack_file, stack)
    return {(r.type, r.name, r.parent, r.protect) for r in preview.registrations}


def engine_declared(export: dict[str, Any]) -> Declared:
    resources = export["deployment"].get("resources") or []
    names = {r["urn"]: r["urn"].rsplit("::", 1)[-1] for r in resources}
    stack_urns = {r["urn"] for r in resources if r["type"] == "pulumi:pulumi:Stack"}
    return {
        (
            r["type"],
            names[r["urn"]],
            None if r.get("parent") in stack_urns else names.get(r.get("parent")),
            bool(r.get("protect")),
        )
        for r in resources
        if r["type"] != "pulumi:pulumi:Stack" and not r["type"].startswith("pulumi:providers:")
    }


def by_name(pd: PagerDutySandbox, collection: str) -> dict[str, dict[str, Any]]:
    """A copy of the collection's objects by name (the sandbox changes its own in place)."""
    with pd.state.lock:
        return copy.deepcopy({item["name"]: item for item in pd.state.directory.list(collection)})
