"""infra.mock_runtime: the pulumi internals it relies on, and a program run under mocks.

A pulumi release that renames or reshapes one of the private things the runner uses
fails `test_the_installed_pulumi_has_every_internal_used` with the name of each.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from importlib.metadata import version

import pulumi
import pytest

from infra.mock_runtime import INTERNALS, as_python, missing_internals, run_under_mocks
from infra.preview import PreviewMocks

from .conftest import EXAMPLE, REPO


def test_the_installed_pulumi_has_every_internal_used() -> None:
    assert missing_internals() == []


def test_a_changed_internal_is_named_in_one_line() -> None:
    def gone() -> object:
        raise AttributeError("_sync_await")

    checks = {**INTERNALS, "pulumi.runtime.sync_await._sync_await": gone, "x.y(z=...)": bool}
    assert missing_internals(checks) == [
        f"pulumi {version('pulumi')} changed {name}, which infra/mock_runtime.py uses "
        "(written for pulumi 3.272): update the module for this release"
        for name in ("pulumi.runtime.sync_await._sync_await", "x.y(z=...)")
    ]


def test_a_run_records_registrations_look_ups_and_outputs() -> None:
    def program() -> None:
        parent = pulumi.ComponentResource("test:index:Thing", "thing")
        pulumi.export("plain", {"count": 2})
        pulumi.export("hidden", pulumi.Output.secret("s3cret"))
        pulumi.export("parent", parent.urn)

    run = run_under_mocks(program, PreviewMocks(), "unit")
    ((request, _, urn, _),) = run.registrations
    assert (request.type, request.name) == ("test:index:Thing", "thing")
    assert urn == "urn:pulumi:unit::apica-pagerduty::pulumi:pulumi:Stack$test:index:Thing::thing"
    assert run.calls == ()
    assert dict(run.outputs) == {
        "plain": (False, {"count": 2}),
        "hidden": (True, "s3cret"),
        "parent": (False, urn),
    }


def test_errors_of_the_program_propagate_after_the_run() -> None:
    def program() -> None:
        pulumi.export("broken", pulumi.Output.from_input(1).apply(_refuse))

    with pytest.raises(pulumi.RunError, match=r"^refused$"):
        run_under_mocks(program, PreviewMocks())


def _refuse(value: object) -> object:
    raise pulumi.RunError("refused")


def test_mock_inputs_read_as_the_program_wrote_them() -> None:
    assert as_python({"numLoops": 2.0, "rules": [{"escalationDelayInMinutes": 30.0}]}) == {
        "num_loops": 2,
        "rules": [{"escalation_delay_in_minutes": 30}],
    }
    assert as_python({"ratio": 0.5, "unset": None}) == {"ratio": 0.5}
    assert as_python(["PX1", "other"], {"PX1": "${web.id}"}.get) == ["${web.id}", None]


# -- event loops ---------------------------------------------------------------------


def _open_loops() -> set[int]:
    gc.collect()
    return {
        id(o) for o in gc.get_objects()
        if isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed()
    }


@pytest.mark.parametrize("fails", [False, True], ids=["ok", "program-error"])
def test_a_run_leaves_no_event_loop_open_and_no_task_pending(
    fails: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK makes a loop on each thread it uses; a loop left for the garbage collector
    can be finalized after its self-pipe at exit and print a traceback to stderr, and a
    task left pending on a closed loop prints "Task was destroyed but it is pending!"."""

    def program() -> None:
        pulumi.ComponentResource("test:index:Thing", "thing")
        first = pulumi.Output.from_input(1).apply(_refuse if fails else str)
        # Outputs that wait on a failed one are still pending when the run re-raises.
        pulumi.export("value", pulumi.Output.secret(first).apply(str))
        pulumi.export("other", pulumi.Output.all(first, 2).apply(str))

    before = _open_loops()
    try:
        run_under_mocks(program, PreviewMocks())
    except pulumi.RunError:
        assert fails
    else:
        assert not fails
    assert _open_loops() - before == set()
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def test_plan_exits_with_nothing_on_stderr() -> None:
    """`apica-pd plan` in a fresh interpreter each time: before the loops were closed,
    about one run in ten printed "Exception ignored in: BaseEventLoop.__del__"."""
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, "-m", "apica_pagerduty", "plan", str(EXAMPLE)],
            cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        )
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout
