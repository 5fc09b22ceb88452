"""`apica-pd asm check`: real stack files in tmp_path against the ASM sandbox."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apica_pagerduty.asm_check import Claim, check_claims, check_command, render_report
from apica_pagerduty.cli import main
from bridge.asm_api import AsmClient
from bridge.asm_model import AsmCheck
from sandbox.asm_api import AsmSandbox
from tests.conftest import ASM_TICKET

GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
STACK = f"""\
escalation_policies:
  web: {{name: Web, rules: [{{delay: 30m, targets: [{{schedule: Web Primary}}]}}]}}
services:
  checkout:
    name: Checkout
    escalation_policy: web
    integration:
      checks:
        ids: [101]
        guids: ["{GUID.upper()}"]
        tags: ["Team: Checkout"]
  search:
    name: Search
    escalation_policy: web
    integration:
      checks:
        tags: ["Tier: Gold"]
catch_all: search
"""


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    path = tmp_path / "prod.yaml"
    path.write_text(STACK)
    return path


@pytest.fixture
def healthy(asm: AsmSandbox) -> AsmSandbox:
    """ASM as the stack file expects it: every claim matches, nothing twice."""
    asm.state.add_check("Checkout page", id=101)
    asm.state.add_check("Checkout API", id=102, guid=GUID)
    asm.state.add_check("Cart", id=103, tags={" team ": ["CHECKOUT"]})  # the bridge's folding
    asm.state.add_check("Search", id=104, tags={"Tier": ["Gold", "Silver"]})
    return asm


def env_for(asm: AsmSandbox, **extra: str) -> dict[str, str]:
    return {"APICA_PD_ASM_API_URL": asm.api_url, "APICA_PD_ASM_AUTH_TICKET": ASM_TICKET, **extra}


def run(asm: AsmSandbox, *files: Path, env: dict[str, str] | None = None,
        api_url: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = check_command([str(f) for f in files], api_url=api_url,
                         env=env_for(asm) if env is None else env, out=out, err=err,
                         connect=lambda settings, credential: AsmClient(
                             settings, credential, sleep=lambda seconds: None))
    return code, out.getvalue(), err.getvalue()


def test_a_stack_that_matches_asm(healthy, stack):
    assert run(healthy, stack) == (
        0, f"{stack}: ok (4 claims checked against 4 ASM checks; 0 enabled checks unclaimed)\n",
        "")
    assert [r["path"] for r in healthy.state.requests()] == ["/v3/checks"]  # one call


def test_unclaimed_checks_are_listed_but_are_no_finding(healthy, stack):
    healthy.state.add_check("Careers", id=4242)
    healthy.state.add_check("Retired", id=4243, enabled=False)
    code, out, _ = run(healthy, stack)
    assert code == 0
    assert out.splitlines() == [
        f"{stack}: unclaimed: ASM check 4242 'Careers': no service claims it; the catch-all "
        "'search' gets its alerts",
        f"{stack}: ok (4 claims checked against 6 ASM checks; 1 enabled check unclaimed "
        "(and 1 disabled))",
    ]


def test_without_a_catch_all_the_bridge_refuses_unclaimed_alerts(healthy, tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_text(STACK.replace("catch_all: search\n", ""))
    healthy.state.add_check("Careers", id=4242)
    assert run(healthy, path)[1].splitlines()[0] == (
        f"{path}: unclaimed: ASM check 4242 'Careers': no service claims it; the bridge "
        "refuses its alerts (no catch_all)")


def test_missing_and_disabled_checks(asm, stack):
    asm.state.add_check("Checkout page", id=101, enabled=False)
    asm.state.add_check("Old cart", id=103, enabled=False, tags={"Team": ["Checkout"]})
    code, out, _ = run(asm, stack)
    assert code == 1
    assert out.splitlines() == [
        f"{stack}:9:15: services.checkout.integration.checks.ids[0]: ASM check 101 "
        "'Checkout page' is disabled",
        f"{stack}:10:17: services.checkout.integration.checks.guids[0]: no ASM check has GUID "
        f"'{GUID.upper()}' (or this ASM user cannot see it: see APICA_PD_ASM_CUSTOMER_CONTEXT)",
        f"{stack}:11:16: services.checkout.integration.checks.tags[0]: tag 'Team: Checkout' "
        "matches only disabled ASM checks (103 'Old cart')",
        f"{stack}:17:16: services.search.integration.checks.tags[0]: tag 'Tier: Gold' matches "
        "no ASM check",
        f"{stack}: 4 findings; 4 claims checked against 2 ASM checks; 0 enabled checks "
        "unclaimed",
    ]


def test_a_disabled_check_claimed_by_guid(healthy, stack):
    healthy.state.update_check(102, enabled=False)
    assert run(healthy, stack)[1].splitlines()[0] == (
        f"{stack}:10:17: services.checkout.integration.checks.guids[0]: check GUID "
        f"'{GUID.upper()}' is ASM check 102 'Checkout API', which is disabled")


def test_a_missing_id_with_customer_context_has_no_hint(healthy, stack, tmp_path):
    healthy.state.remove_check(101)
    _, out, _ = run(healthy, stack, env=env_for(healthy, APICA_PD_ASM_CUSTOMER_CONTEXT="1"))
    assert out.splitlines()[0] == (
        f"{stack}:9:15: services.checkout.integration.checks.ids[0]: no ASM check has id 101")


def test_a_check_claimed_by_id_in_one_service_and_by_tag_in_another(healthy, stack):
    # 101 is checkout's by id; its tag also satisfies search's "Tier: Gold".
    healthy.state.update_check(101, tags={"tier": ["gold"]})
    code, out, _ = run(healthy, stack)
    assert code == 1
    assert out.splitlines()[0] == (
        f"{stack}:17:16: services.search.integration.checks.tags[0]: tag 'Tier: Gold' matches "
        "ASM check 101 'Checkout page', which services.checkout.integration.checks.ids[0] "
        "(line 9) claims first: the bridge routes it to service 'checkout'; route each "
        "check to one service")


def test_tag_claims_of_two_services_on_many_checks(healthy, stack):
    for number in range(7):
        healthy.state.add_check(f"Both {number}", id=500 + number,
                                tags={"Team": ["Checkout"], "Tier": ["Gold"]})
    out = run(healthy, stack)[1].splitlines()
    assert out[0] == (
        f"{stack}:17:16: services.search.integration.checks.tags[0]: tag 'Tier: Gold' matches "
        "ASM checks 500 'Both 0', 501 'Both 1', 502 'Both 2', 503 'Both 3', 504 'Both 4' and "
        "2 more, which services.checkout.integration.checks.tags[0] (line 11) claims first: "
        "the bridge routes them to service 'checkout'; route each check to one service")
    assert out[1].startswith(f"{stack}: 1 finding; ")


def test_an_invalid_stack_file_is_reported_and_the_others_still_checked(healthy, stack,
                                                                        tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("services: []\n")
    code, out, _ = run(healthy, bad, stack)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{bad}:1:11: services: ")
    assert lines[-1] == (f"{stack}: ok (4 claims checked against 4 ASM checks; 0 enabled "
                         "checks unclaimed)")


def test_only_invalid_files_need_no_asm(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("services: []\n")
    with AsmSandbox() as gone:
        env = {"APICA_PD_ASM_API_URL": gone.api_url, "APICA_PD_ASM_AUTH_TICKET": ASM_TICKET}
    code, out, err = run(None, bad, env=env)  # type: ignore[arg-type]
    assert (code, err) == (1, "")
    assert out.startswith(f"{bad}:1:11: ")


def test_asm_unreachable_is_exit_2_in_one_line(stack):
    with AsmSandbox() as gone:
        url = gone.api_url
    env = {"APICA_PD_ASM_API_URL": url, "APICA_PD_ASM_AUTH_TICKET": ASM_TICKET}
    code, out, err = run(None, stack, env=env)  # type: ignore[arg-type]
    assert (code, out) == (2, "")
    assert err == (f"apica-pd asm check: ASM API {url[7:-3]}: GET /checks: cannot connect "
                   "(Connection refused) (4 attempts)\n")


def test_a_refused_credential_is_exit_2(healthy, stack):
    env = env_for(healthy, APICA_PD_ASM_AUTH_TICKET="00000000-0000-0000-0000-00000000BEEF")
    code, out, err = run(healthy, stack, env=env)
    assert (code, out) == (2, "")
    assert err == (f"apica-pd asm check: ASM API 127.0.0.1:{healthy.port}: GET /checks: ASM "
                   "refused the credential (401); check the auth_ticket ...BEEF (see "
                   "docs/asm.md)\n")


def test_no_credential_is_exit_2_before_anything_is_read(tmp_path):
    code, out, err = run(None, tmp_path / "missing.yaml", env={})  # type: ignore[arg-type]
    assert (code, out) == (2, "")
    assert err == ("apica-pd asm check: no ASM credential: set APICA_PD_ASM_AUTH_TICKET, "
                   "APICA_PD_ASM_BASIC_AUTH (user:password) or APICA_PD_ASM_CREDENTIALS_FILE "
                   "(see docs/asm.md)\n")


def test_names_from_asm_cannot_forge_lines(healthy, stack):
    healthy.state.add_check("Careers\x1b[2K\nstacks/x.yaml: ok", id=4242)
    out = run(healthy, stack)[1]
    assert out.splitlines()[0] == (
        f"{stack}: unclaimed: ASM check 4242 'Careers\\x1b[2K\\nstacks/x.yaml: ok': no "
        "service claims it; the catch-all 'search' gets its alerts")


def test_several_files_each_get_their_report(healthy, stack, tmp_path):
    other = tmp_path / "dev.yaml"
    other.write_text(STACK.replace("ids: [101]", "ids: [999]"))
    code, out, _ = run(healthy, stack, other)
    assert code == 1
    assert out.splitlines() == [
        f"{stack}: ok (4 claims checked against 4 ASM checks; 0 enabled checks unclaimed)",
        f"{other}:9:15: services.checkout.integration.checks.ids[0]: no ASM check has id 999 "
        "(or this ASM user cannot see it: see APICA_PD_ASM_CUSTOMER_CONTEXT)",
        f"{other}: unclaimed: ASM check 101 'Checkout page': no service claims it; the "
        "catch-all 'search' gets its alerts",
        f"{other}: 1 finding; 4 claims checked against 4 ASM checks; 1 enabled check "
        "unclaimed",
    ]


def test_the_command_line(healthy, stack, monkeypatch, capsys):
    monkeypatch.setenv("APICA_PD_ASM_AUTH_TICKET", ASM_TICKET)
    monkeypatch.delenv("APICA_PD_ASM_API_URL", raising=False)
    assert main(["asm", "check", str(stack), "--api-url", healthy.api_url]) == 0
    assert capsys.readouterr().out.startswith(f"{stack}: ok (")
    with pytest.raises(SystemExit) as exited:
        main(["asm", "check"])
    assert exited.value.code == 2


def test_the_bridge_s_order_decides_who_wins():
    """Pure: GUIDs win over tags, ids over both, then the file's order of services."""
    check = AsmCheck(id=7, guid=GUID, name="Seven", enabled=True, tags={"Team": ("A",)})
    claims = [Claim("first", 0, "tags", 0, "Team"), Claim("second", 1, "guids", 0, GUID.upper(),
                                                          3, 5)]
    report = check_claims("s.yaml", claims, [check], None)
    assert [f.render("s.yaml") for f in report.findings] == [
        "s.yaml: services.first.integration.checks.tags[0]: tag 'Team' matches ASM check 7 "
        "'Seven', which services.second.integration.checks.guids[0] (line 3) claims first: "
        "the bridge routes it to service 'second'; route each check to one service"]
    assert render_report(report)[-1] == (
        "s.yaml: 1 finding; 2 claims checked against 1 ASM check; 0 enabled checks unclaimed")


_TEXT = st.text(alphabet=" aAbB:", min_size=0, max_size=4)


@given(tags=st.dictionaries(_TEXT, st.lists(_TEXT, max_size=3), max_size=3),
       claims=st.lists(_TEXT.filter(lambda t: t.strip(": ") != ""), min_size=1, max_size=4))
def test_tag_claims_match_as_the_bridge_matches_them(tags, claims):
    from apica_pagerduty.asm_check import tag_hits
    from bridge.intake.matching import tag_claims
    from contract.vocabulary import normal_tag_text, tag_claim_parts

    check = AsmCheck(id=1, guid=GUID, name="c", enabled=True,
                     tags={k: tuple(v) for k, v in tags.items()})
    made = [Claim("s", 0, "tags", index, text) for index, text in enumerate(claims)]
    by_key: dict = {}
    for claim in made:
        key, value = tag_claim_parts(str(claim.value))
        by_key.setdefault(key, []).append((claim, value))
    folded = {normal_tag_text(k): {normal_tag_text(v) for v in vs} for k, vs in tags.items()}
    assert tag_hits(check, by_key) == [c for c in made if tag_claims(str(c.value), folded)]
