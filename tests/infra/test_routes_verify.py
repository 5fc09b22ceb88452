"""`apica-pd routes verify` against the sandbox's REST API on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from apica_pagerduty.cli import main
from contract.redact import last4
from contract.routes_file import load_routes_file
from infra.pagerduty_api import PagerDutyApi
from infra.routes_verify import verify_routes
from infra.validate import load_stack
from sandbox.pulumi_apply import account_seed, apply_stack
from sandbox.seed import apply_seed
from sandbox.server import PagerDutySandbox

from .conftest import EXAMPLE, HOSTILE, raw_controls

TOKEN = "verify-token-0001"
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def pd() -> Iterator[PagerDutySandbox]:
    with PagerDutySandbox(token=TOKEN) as sandbox:
        yield sandbox


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """`apica-pd routes verify <args>` in-process with $PAGERDUTY_TOKEN set (unless None)."""

    def invoke(*args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
        if token is None:
            monkeypatch.delenv("PAGERDUTY_TOKEN", raising=False)
        else:
            monkeypatch.setenv("PAGERDUTY_TOKEN", token)
        code = main(["routes", "verify", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


class Account:
    """Services with Apica integrations in the sandbox, and the routes file naming them."""

    def __init__(self, pd: PagerDutySandbox, path: Path) -> None:
        self.pd, self.path = pd, path
        self.routes: dict[str, dict[str, Any]] = {}

    def route(self, name: str, service_name: str, **integration: Any) -> dict[str, Any]:
        service = self.pd.state.create_service(service_name)
        created = self.pd.state.add_integration(
            service["id"], name=f"Apica-{service_name}", **integration
        )
        self.routes[name] = {
            "service_name": service_name,
            "service_id": service["id"],
            "integration_name": created["name"],
            "routing_key": created["integration_key"],
        }
        self.write()
        return created

    def write(self) -> None:
        version = 2 if any("integration_id" in r for r in self.routes.values()) else 1
        doc = {"version": version, "stack": "prod", "routes": self.routes}
        self.path.write_text(json.dumps(doc), encoding="utf-8")

    def args(self) -> tuple[str, ...]:
        return ("--routes", str(self.path), "--api-url", self.pd.api_url)


@pytest.fixture
def account(pd: PagerDutySandbox, tmp_path: Path) -> Account:
    return Account(pd, tmp_path / "routes.json")


def test_every_route_of_an_applied_stack_is_ok(pd: PagerDutySandbox, tmp_path: Path, run: Run):
    stack = load_stack(EXAMPLE)
    apply_seed(pd.state, account_seed(stack))
    routes = tmp_path / "routes.json"
    routes.write_text(apply_stack(stack, "example", pd.api_url, TOKEN), encoding="utf-8")
    keys = {
        name: last4(route["routing_key"])
        for name, route in json.loads(routes.read_text())["routes"].items()
    }
    code, out, err = run("--routes", str(routes), "--api-url", pd.api_url)
    assert (code, err) == (0, "")
    assert out == (
        "checkout: ok: integration 'Apica-Checkout-API' on service 'Checkout API' takes "
        f"Events API v2 events (key {keys['checkout']})\n"
        "legacy-web: ok: integration 'Apica-Legacy-Web' on service 'Legacy Web' takes Events "
        f"API v2 events (key {keys['legacy-web']})\n"
        "search: ok: integration 'Apica-Search' on service 'Search' takes Events API v2 "
        f"events (key {keys['search']})\n"
        "status-page: ok: integration 'Apica-Status-Page' on service 'Status Page' takes "
        f"Events API v2 events (key {keys['status-page']})\n"
        "all 4 routes take Events API v2 events\n"
    )


def test_each_problem_is_named_and_exits_3(pd: PagerDutySandbox, account: Account, run: Run):
    good = account.route("good", "Good")
    gone = account.route("gone", "Gone")
    deleted = account.route("no-key", "No Key")
    account.route("v1", "Old Style", type="generic_events_api_inbound_integration")
    off = account.route("off", "Off")
    with pd.state.lock:
        directory = pd.state.directory
        directory.delete("services", gone["service"]["id"])
        directory.delete("integrations", deleted["id"])
        directory.get("services", off["service"]["id"])["status"] = "disabled"
    code, out, err = run(*account.args())
    assert (code, err) == (3, "")
    gone_id = gone["service"]["id"]
    assert out.splitlines() == [
        "good: ok: integration 'Apica-Good' on service 'Good' takes Events API v2 events "
        f"(key {last4(good['integration_key'])})",
        f"gone: PROBLEM: service {gone_id} ('Gone') does not exist: deleted, or the routes file "
        "is stale (`pulumi up`, then `apica-pd routes pull`)",
        "no-key: PROBLEM: no integration on service 'No Key' has the route's key "
        f"{last4(deleted['integration_key'])} (integration 'Apica-No Key' deleted or "
        "re-created? `pulumi up`, then `apica-pd routes pull`)",
        "v1: PROBLEM: integration 'Apica-Old Style' on service 'Old Style' has type "
        "'generic_events_api_inbound_integration', not events_api_v2_inbound_integration: it "
        "may not take the bridge's Events API v2 events; give it `integration: {type: "
        "events_api_v2}` in the stack file",
        "off: PROBLEM: service 'Off' is disabled: PagerDuty drops its events",
        "4 of 5 routes cannot page as routed",
    ]


def test_a_vendor_integration_of_another_type_names_its_vendor(
    pd: PagerDutySandbox, account: Account, run: Run
):
    nagios = next(v for v in pd.state.directory.list("vendors") if v["name"] == "Nagios")
    account.route("nagios", "Nagios", type="nagios_inbound_integration", vendor_id=nagios["id"])
    code, out, _ = run(*account.args())
    assert code == 3
    assert "has type 'nagios_inbound_integration', vendor 'Nagios', not " in out


def test_the_key_is_found_among_several_integrations(
    pd: PagerDutySandbox, account: Account, run: Run
):
    created = account.route("web", "Web")
    service_id = created["service"]["id"]
    pd.state.add_integration(service_id, name="Apica-Web")  # same name, another key
    pd.state.add_integration(service_id, name="Other")
    account.routes["web"]["integration_name"] = "Other"  # a stale name leads astray
    account.write()
    code, out, _ = run(*account.args())
    assert code == 0
    assert out.startswith("web: ok: integration 'Apica-Web' on service 'Web'")


class CountingReader(PagerDutyApi):
    """The real reader, counting the paths it asks for."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.paths: list[str] = []

    def get_or_none(self, path: str, params: Any = None) -> dict[str, Any] | None:
        self.paths.append(path)
        return super().get_or_none(path, params)


def test_a_version_2_route_asks_for_its_integration_by_id(pd: PagerDutySandbox, account: Account):
    first = account.route("web", "Web")
    service_id = first["service"]["id"]
    pd.state.add_integration(service_id, name="Apica-Web")
    routed = pd.state.add_integration(service_id, name="Other")
    account.routes["web"].update(routing_key=routed["integration_key"], integration_id=routed["id"])
    account.write()
    reader = CountingReader(pd.api_url, TOKEN)
    [check] = verify_routes(load_routes_file(account.path), reader)
    assert check.ok
    assert reader.paths == [
        f"/services/{service_id}",
        f"/services/{service_id}/integrations/{routed['id']}",
    ]


def test_the_token_file_wins_and_no_token_is_printed(
    pd: PagerDutySandbox, account: Account, run: Run, tmp_path: Path
):
    account.route("web", "Web")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    code, _, _ = run(*account.args(), "--token-file", str(token_file), token="wrong-token-99")
    assert code == 0
    code, out, err = run(*account.args(), token="wrong-token-99")
    assert (code, out) == (1, "")
    assert err == (
        "routes verify: GET /services/"
        f"{account.routes['web']['service_id']}: answered 401 (Authentication failed): "
        "PagerDuty refused the token: check PAGERDUTY_TOKEN or --token-file (an EU account "
        "needs --api-url https://api.eu.pagerduty.com)\n"
    )
    assert "wrong-token" not in err


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param(
            lambda tmp: ((), None),
            "routes verify: no PagerDuty REST API token: set PAGERDUTY_TOKEN or pass "
            "--token-file FILE",
            id="no-token",
        ),
        pytest.param(
            lambda tmp: (("--token-file", _write(tmp / "t", "")), None),
            "routes verify: token file {tmp}/t is empty",
            id="empty-token-file",
        ),
        pytest.param(
            lambda tmp: (("--token-file", _write(tmp / "t", "one two\n")), None),
            "routes verify: token file {tmp}/t must hold one token: one line, no spaces",
            id="two-words",
        ),
        pytest.param(
            lambda tmp: (("--token-file", str(tmp)), None),
            "routes verify: cannot read {tmp}: is a directory, not a token file",
            id="token-file-is-a-directory",
        ),
    ],
)
def test_without_a_usable_token_nothing_is_checked(
    account: Account, run: Run, tmp_path: Path, setup: Any, message: str
):
    account.route("web", "Web")
    extra, token = setup(tmp_path)
    code, out, err = run(*account.args(), *extra, token=token)
    assert (code, out) == (1, "")
    assert err == message.format(tmp=tmp_path) + "\n"


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_bad_routes_file_is_one_line(account: Account, run: Run, tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 4, "routes": {}}', encoding="utf-8")
    code, out, err = run("--routes", str(bad), "--api-url", account.pd.api_url)
    assert (code, out) == (1, "")
    assert err == (
        f"routes verify: {bad}: version must be 1, 2 or 3 (got 4); regenerate it with this "
        "release's `apica-pd routes pull`\n"
    )


def test_an_api_url_that_is_not_http_is_one_line(account: Account, run: Run):
    # (An unreachable one is retried with backoff: infra.pagerduty_api's tests pin it.)
    account.route("web", "Web")
    code, out, err = run("--routes", str(account.path), "--api-url", "ftp://example.com")
    assert (code, out) == (1, "")
    assert err == (
        "routes verify: --api-url must be an http(s) URL, e.g. https://api.pagerduty.com\n"
    )


@pytest.mark.parametrize("value", HOSTILE)
def test_names_from_pagerduty_are_escaped(
    pd: PagerDutySandbox, account: Account, run: Run, value: str
):
    created = account.route("web", "Web")
    with pd.state.lock:
        pd.state.directory.get("integrations", created["id"])["name"] = value
    code, out, _ = run(*account.args())
    assert code == 0
    assert raw_controls(out) == []
    assert len(out.splitlines()) == 2
