"""infra.mock_runtime: the pulumi internals it relies on, and a program run under mocks.

A pulumi release that renames or reshapes one of the private things the runner uses
fails `test_the_installed_pulumi_has_every_internal_used` with the name of each.
"""

from __future__ import annotations

from importlib.metadata import version

import pulumi
import pytest

from infra.mock_runtime import INTERNALS, as_python, missing_internals, run_under_mocks
from infra.preview import PreviewMocks


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
