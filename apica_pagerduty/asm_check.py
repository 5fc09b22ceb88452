"""`apica-pd asm check FILE...`: stack files held against the checks ASM really has.

Each stack file is loaded and validated as `apica-pd validate` does; then, against
the checks the ASM credential sees (one `GET /checks`), as the bridge matches them:

- every claimed check id and GUID is an ASM check, and an enabled one;
- every tag claim matches at least one enabled check (tags compared as the bridge does);
- no ASM check is claimed by two services, by ids, GUIDs and tags together (the
  finding says which service the bridge would route it to);
- enabled ASM checks that no service claims are listed (a note, not a finding: the
  catch-all gets their alerts, or the bridge refuses them).

Findings are `file:line:col: message` lines on standard output, then a summary per
file. Exit status: 0 no findings, 1 findings or an invalid stack file, 2 usage error
or ASM unusable (unreachable, credential refused: one line on standard error). The
ASM credential comes from the environment or a file only (docs/asm.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TextIO

from contract.vocabulary import normal_tag_text, tag_claim_parts
from infra.messages import escape, quoted

if TYPE_CHECKING:  # the handler imports these itself: `apica-pd --help` stays fast
    from bridge.asm_api import AsmClient
    from bridge.asm_config import AsmApiSettings, AsmCredential
    from bridge.asm_model import AsmCheck
    from infra.model import Stack
    from infra.yaml_source import SourceMap

Kind = Literal["ids", "guids", "tags"]
KIND_ORDER: tuple[Kind, ...] = ("ids", "guids", "tags")  # the bridge matches in this order
MAX_NAMED = 5  # checks named in one finding; the rest are counted


def register(subparsers: argparse._SubParsersAction) -> None:
    asm = subparsers.add_parser(
        "asm", help="compare stack files with Apica ASM itself (needs an ASM credential)"
    )
    commands = asm.add_subparsers(dest="asm_command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="preflight: claimed checks exist and are enabled, no check claimed twice",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="stack file(s)")
    check.add_argument(
        "--api-url", help="ASM API base URL (default: APICA_PD_ASM_API_URL, else "
        "https://api-asm1.apica.io/v3)"
    )
    check.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    return check_command(args.files, api_url=args.api_url, env=os.environ)


# -- claims and findings (pure) ---------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One entry of a service's `integration.checks`, where it is in the file."""

    service: str
    service_order: int
    kind: Kind
    index: int
    value: int | str
    line: int | None = None
    col: int | None = None

    @property
    def path(self) -> tuple[str | int, ...]:
        return ("services", self.service, "integration", "checks", self.kind, self.index)

    @property
    def where(self) -> str:
        return f"services.{self.service}.integration.checks.{self.kind}[{self.index}]"

    @property
    def rank(self) -> tuple[int, int, int]:
        """Lower wins: the bridge tries ids, then GUIDs, then tags, routes in file order."""
        return (KIND_ORDER.index(self.kind), self.service_order, self.index)

    def describe(self) -> str:
        if self.kind == "ids":
            return f"check id {self.value}"
        return f"{'check GUID' if self.kind == 'guids' else 'tag'} {quoted(self.value)}"


@dataclass(frozen=True)
class Finding:
    line: int | None
    col: int | None
    message: str

    def render(self, file: str) -> str:
        if self.line is None:
            return f"{file}: {self.message}"
        return f"{file}:{self.line}:{self.col or 1}: {self.message}"


@dataclass(frozen=True)
class Report:
    """What one stack file's claims look like against ASM."""

    file: str
    claims: int
    checks: int
    findings: tuple[Finding, ...]
    unclaimed: tuple[AsmCheck, ...]  # enabled checks no claim matches
    unclaimed_disabled: int
    catch_all: str | None


def stack_claims(stack: Stack, positions: SourceMap | None = None) -> list[Claim]:
    """Every claim of every service, in file order, with its position when known."""
    claims: list[Claim] = []
    for order, (key, service) in enumerate(stack.services.items()):
        integration = service.integration
        values: dict[Kind, Sequence[int | str]] = {
            "ids": integration.check_ids, "guids": integration.check_guids,
            "tags": integration.check_tags,
        }
        for kind in KIND_ORDER:
            for index, value in enumerate(values[kind]):
                claim = Claim(key, order, kind, index, value)
                if positions is not None:
                    mark = positions.value(claim.path)
                    claim = Claim(key, order, kind, index, value, mark.line, mark.col)
                claims.append(claim)
    return claims


def check_claims(
    file: str,
    claims: Sequence[Claim],
    checks: Sequence[AsmCheck],
    catch_all: str | None,
    *,
    customer_context: bool = False,
) -> Report:
    """The findings for one stack file's claims against ASM's checks (`customer_context`:
    whether they are the account's checks or only the ASM user's)."""
    by_id: dict[int | str, list[Claim]] = {}
    by_guid: dict[str, list[Claim]] = {}
    # Tag claims by folded key: (claim, folded value or None for "any value").
    by_tag_key: dict[str, list[tuple[Claim, str | None]]] = {}
    for claim in claims:
        if claim.kind == "ids":
            by_id.setdefault(claim.value, []).append(claim)
        elif claim.kind == "guids":
            by_guid.setdefault(str(claim.value).lower(), []).append(claim)
        else:
            key, value = tag_claim_parts(str(claim.value))
            by_tag_key.setdefault(key, []).append((claim, value))
    matched: dict[Claim, list[AsmCheck]] = {claim: [] for claim in claims}
    by_check: dict[int, list[Claim]] = {}
    for check in checks:
        hits = [*by_id.get(check.id, ()), *by_guid.get(check.guid.lower(), ()),
                *tag_hits(check, by_tag_key)]
        for claim in hits:
            matched[claim].append(check)
        if hits:
            by_check[check.id] = hits
    unseen = "" if customer_context else (
        " (or this ASM user cannot see it: see APICA_PD_ASM_CUSTOMER_CONTEXT)")
    findings = [f for claim in claims if (f := _missing(claim, matched[claim], unseen))]
    findings += _conflicts(checks, by_check)
    unclaimed = [c for c in checks if c.id not in by_check]
    return Report(
        file=file, claims=len(claims), checks=len(checks),
        findings=tuple(sorted(findings, key=lambda f: (f.line or 0, f.col or 0, f.message))),
        unclaimed=tuple(c for c in unclaimed if c.enabled),
        unclaimed_disabled=sum(not c.enabled for c in unclaimed),
        catch_all=catch_all,
    )


def tag_hits(
    check: AsmCheck, by_tag_key: Mapping[str, list[tuple[Claim, str | None]]]
) -> list[Claim]:
    """The tag claims `check` satisfies, as `bridge.intake.matching.tag_claims` decides
    (folded keys and values; a claim without a value wants the key only), in the
    claims' order. Indexed by key: an account has thousands of checks."""
    # Keys that fold alike: the last one stands, as in the bridge.
    tags = {normal_tag_text(key): {normal_tag_text(v) for v in values}
            for key, values in check.tags.items()}
    hits = [claim for key, values in tags.items() for claim, value in by_tag_key.get(key, ())
            if value is None or value in values]
    return sorted(hits, key=lambda claim: claim.rank)


def _missing(claim: Claim, found: list[AsmCheck], unseen: str) -> Finding | None:
    what = claim.describe()
    if not found:
        if claim.kind == "tags":
            text = f"{what} matches no ASM check"
        elif claim.kind == "ids":
            text = f"no ASM check has id {claim.value}{unseen}"
        else:
            text = f"no ASM check has GUID {quoted(claim.value)}{unseen}"
    elif any(check.enabled for check in found):
        return None
    elif claim.kind == "tags":
        text = f"{what} matches only disabled ASM checks ({_named(found)})"
    elif claim.kind == "ids":
        text = f"ASM check {_named(found)} is disabled"
    else:
        text = f"{what} is ASM check {_named(found)}, which is disabled"
    return Finding(claim.line, claim.col, f"{claim.where}: {text}")


def _conflicts(checks: Sequence[AsmCheck], by_check: Mapping[int, list[Claim]]) -> list[Finding]:
    """One finding per losing claim and the claim that wins over it."""
    lost: dict[tuple[Claim, Claim], list[AsmCheck]] = {}
    for check in checks:
        claims = by_check.get(check.id, [])
        if len({claim.service for claim in claims}) < 2:
            continue
        winner = min(claims, key=lambda claim: claim.rank)
        for claim in claims:
            if claim.service != winner.service:
                lost.setdefault((claim, winner), []).append(check)
    findings = []
    for (claim, winner), found in lost.items():
        line = f" (line {winner.line})" if winner.line is not None else ""
        one = len(found) == 1
        findings.append(Finding(claim.line, claim.col, (
            f"{claim.where}: {claim.describe()} matches ASM check{'' if one else 's'} "
            f"{_named(found)}, which {winner.where}{line} claims first: the bridge routes "
            f"{'it' if one else 'them'} to service {winner.service!r}; route each check "
            "to one service"
        )))
    return findings


def _named(checks: Sequence[AsmCheck]) -> str:
    named = ", ".join(f"{c.id} {quoted(c.name)}" for c in checks[:MAX_NAMED])
    more = len(checks) - MAX_NAMED
    return named + (f" and {more} more" if more > 0 else "")


def render_report(report: Report) -> list[str]:
    """The lines `asm check` prints for one file: findings, unclaimed checks, a summary."""
    lines = [finding.render(report.file) for finding in report.findings]
    goes = (f"the catch-all {report.catch_all!r} gets its alerts" if report.catch_all
            else "the bridge refuses its alerts (no catch_all)")
    lines += [f"{report.file}: unclaimed: ASM check {c.id} {quoted(c.name)}: no service "
              f"claims it; {goes}" for c in report.unclaimed]
    counts = (f"{report.claims} claim{'s' * (report.claims != 1)} checked against "
              f"{report.checks} ASM check{'s' * (report.checks != 1)}; "
              f"{len(report.unclaimed)} enabled check{'s' * (len(report.unclaimed) != 1)} "
              "unclaimed")
    if report.unclaimed_disabled:
        counts += f" (and {report.unclaimed_disabled} disabled)"
    found = len(report.findings)
    lines.append(f"{report.file}: {found} finding{'s' * (found != 1)}; {counts}" if found
                 else f"{report.file}: ok ({counts})")
    return [escape(line) for line in lines]


# -- the command ---------------------------------------------------------------------


def check_command(
    files: Iterable[str],
    *,
    api_url: str | None,
    env: Mapping[str, str],
    out: TextIO | None = None,
    err: TextIO | None = None,
    connect: Callable[[AsmApiSettings, AsmCredential], AsmClient] | None = None,
) -> int:
    """The whole command; `connect` makes the ASM client (default: `AsmClient`)."""
    from bridge.asm_api import AsmClient
    from bridge.asm_config import load_asm_credential, load_asm_settings
    from bridge.errors import AsmApiError, ConfigError
    from infra.errors import StackFileInvalid

    out, err = out or sys.stdout, err or sys.stderr
    try:
        settings = load_asm_settings(env, api_url=api_url)
        credential = load_asm_credential(env)
    except ConfigError as exc:
        print(f"apica-pd asm check: {escape(str(exc))}", file=err)
        return 2
    invalid = 0
    loaded: list[tuple[str, list[Claim], str | None]] = []
    for path in files:
        try:
            stack, positions = _load(path)
        except StackFileInvalid as exc:
            invalid += 1
            for problem in exc.problems:
                print(escape(str(problem)), file=out)
            continue
        loaded.append((path, stack_claims(stack, positions), stack.catch_all))
    if not loaded:
        return 1
    try:
        with (connect or AsmClient)(settings, credential) as asm:
            checks = asm.list_checks()
    except AsmApiError as exc:
        print(f"apica-pd asm check: {escape(str(exc))}", file=err)
        return 2
    found = 0
    for path, claims, catch_all in loaded:
        report = check_claims(path, claims, checks, catch_all,
                              customer_context=settings.customer_context)
        found += len(report.findings)
        for line in render_report(report):
            print(line, file=out)
    return 1 if found or invalid else 0


def _load(path: str) -> tuple[Stack, SourceMap]:
    """The resolved stack and where its values are, from one read of the file."""
    from infra.validate import validate_document
    from infra.yaml_source import load_yaml

    document = load_yaml(path)
    return validate_document(document), document.positions

