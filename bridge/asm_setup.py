"""The exact ASM "Custom" webhook target for each route, so nobody composes it by hand.

Written for someone setting up ASM for the first time, in ASM's own words (Manage
Alerts > Recipients > Webhook, Service: Custom; Request Headers with their T and R
flags; Trigger and Resolve Sequence). Secrets show by their last four characters,
with where they live and how to print them; a URL ASM cannot reach is warned about.

Body design, because ASM pastes placeholder values as raw text:

- every value is quoted, so an empty placeholder (no result GUID) stays valid JSON;
- the message is `%QM%` (ASM turns `"` into `'`), never `%M%`;
- fixed-shape fields come first, free text (location, groups, tags, check name)
  after, the message last: text injected through a value can then only make the
  body ambiguous (refused with 400), never change another field;
- `"format": "asm-raw"` tells the bridge to read values literally, so a message
  like `C:\\temp` keeps its backslash.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bridge.intake.asm import RAW_FORMAT
from bridge.intake.auth import Credentials
from contract.redact import last4
from contract.routes_file import RoutesFile

CONTENT_TYPE = "application/json"
METHOD = "POST"
NAVIGATION = ("In ASM: Manage Alerts > Recipients > Webhook (the webhook symbol next to a "
              "recipient), Service: Custom; fill in the parts below, then Add Custom WebHook "
              "Target.")
HEADER_FLAGS = ("Request Headers: add each, and tick both T (Trigger) and R (Resolve) on "
                "each (A and F off). Without R, every resolve is refused (401 without the "
                "credential, 415 without the Content-Type) and incidents never close.")

# (field, placeholder) in body order; see the module docstring for why this order.
BODY_FIELDS: tuple[tuple[str, str], ...] = (
    ("severity", "%S%"),
    ("old_severity", "%OLD_SEV_CHAR%"),
    ("check_id", "%CHECK_ID%"),
    ("check_guid", "%CHECK_GUID%"),
    ("check_type", "%CHECK_TYPE%"),
    ("timestamp", "%UTC-T%"),
    # %RESULT_G-U-I-D%: the result id with dashes, as ASM's API gives it (`identifier`);
    # %RESULT_GUID% is the same id without dashes (the bridge reads both).
    ("result_guid", "%RESULT_G-U-I-D%"),
    ("location", "%LOCATION%"),
    ("groups", "%GROUPS%"),
    ("tags", "%CHECK_TAGS%"),
    ("check_name", "%CHECK_NAME%"),
    ("message", "%QM%"),
)

# What ASM would put in for a typical event: for `--example` and the docs.
SAMPLE_VALUES: dict[str, str] = {
    "S": "E", "OLD_SEV_CHAR": "W", "CHECK_ID": "101",
    "CHECK_GUID": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "CHECK_TYPE": "URL",
    "UTC-T": "2026-11-26T10:00:00", "RESULT_G-U-I-D": "0c2d2b1e-3d64-4d1e-9f7a-5b0a8a3e2f10",
    "LOCATION": "Stockholm, Sweden", "GROUPS": "Shop, Production",
    "CHECK_TAGS": "Team: Checkout; Tier: 1", "CHECK_NAME": "Checkout page",
    "QM": "HTTP 500 from https://shop.example.com/checkout",
}
_PLACEHOLDER = re.compile(r"%([A-Z][A-Z0-9_-]*)%")


@dataclass(frozen=True)
class TargetRequest:
    url: str
    method: str
    content_type: str
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class SetupNotes:
    """What goes with every target: where the credential lives, and what is wrong."""

    credential: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetSetup:
    route_name: str
    service_name: str
    service_id: str
    integration_name: str
    routing_key_last4: str
    authentication: str  # what to choose in ASM's Authentication section
    trigger: TargetRequest
    resolve: TargetRequest


def body_template(action: str) -> str:
    """The JSON body with ASM placeholders for the Trigger or Resolve sequence."""
    fields = [("format", RAW_FORMAT), ("action", action), *BODY_FIELDS]
    lines = [f'  "{name}": "{value}"' for name, value in fields]
    return "{\n" + ",\n".join(lines) + "\n}"


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute placeholders as ASM does: raw text, no escaping, in one pass."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def auth_settings(
    credentials: Credentials, token_header: str, *, reveal: bool = False
) -> tuple[dict[str, str], str]:
    """(headers for ASM's Request Headers, what to set under Authentication)."""
    content = {"Content-Type": CONTENT_TYPE}  # without it, every webhook gets 415
    if credentials.tokens:
        token = credentials.tokens[0]
        shown = token if reveal else f"<token {last4(token)}>"
        return ({token_header: shown, **content},
                "none (leave it unset: the token header authenticates)")
    if credentials.basic:
        user, password = credentials.basic[0]
        shown = password if reveal else f"<password {last4(password)}>"
        return content, f"Basic: user {user}, password {shown}"
    return content, "none (WARNING: the bridge has no credentials configured)"


def setup_notes(
    from_env: Credentials,
    credentials_file: Path | None,
    bridge_url: str,
    *,
    public_url_given: bool,
    reveal: bool = False,
) -> SetupNotes:
    """Where the credential shown comes from and how to print it; warnings for ASM's sake.

    `from_env` are the credentials of APICA_PD_TOKENS / APICA_PD_BASIC_AUTH; the first
    token (else the first Basic user) is the one shown, from the environment if it has
    one, else from `credentials_file`.
    """
    warnings = []
    host = urlsplit(bridge_url).hostname or ""
    if not public_url_given:
        warnings.append(
            f"WARNING: no --public-url (or APICA_PD_PUBLIC_URL): the URLs below are the "
            f"bridge's listen address {bridge_url}, which ASM cannot reach. Give the "
            "https:// URL ASM reaches (the proxy in front of the bridge)."
        )
    elif _unreachable(host):
        warnings.append(
            f"WARNING: the public URL {bridge_url} is a loopback or unspecified address, "
            "which ASM cannot reach. Give the https:// URL ASM reaches."
        )
    file = f"the credentials file {credentials_file} (APICA_PD_CREDENTIALS_FILE)"
    if from_env.tokens:
        where = "The token is the first one in APICA_PD_TOKENS."
    elif from_env.basic:
        where = "The password is the first user's in APICA_PD_BASIC_AUTH."
    elif credentials_file is not None:
        where = f"The credential is the first `token` (else `basic`) line of {file}."
    else:
        warnings.append(
            "WARNING: the bridge has no credentials configured (APICA_PD_TOKENS, "
            "APICA_PD_BASIC_AUTH or APICA_PD_CREDENTIALS_FILE): anyone who reaches it can "
            "page."
        )
        return SetupNotes("There is no credential to set.", tuple(warnings))
    how = ("It is printed in full above (--reveal): paste it into ASM, do not keep this "
           "output." if reveal else
           "It is never printed in full unless asked (nor ever logged): run asm-setup "
           "again with --reveal to print it for pasting into ASM.")
    return SetupNotes(f"{where} {how}", tuple(warnings))


def _unreachable(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def target_setups(
    routes: RoutesFile,
    bridge_url: str,
    credentials: Credentials,
    token_header: str,
    *,
    reveal: bool = False,
) -> list[TargetSetup]:
    headers, authentication = auth_settings(credentials, token_header, reveal=reveal)
    setups = []
    for name, route in routes.routes.items():
        url = f"{bridge_url.rstrip('/')}/v1/asm/{name}"

        def request(action: str, url: str = url) -> TargetRequest:
            return TargetRequest(url, METHOD, CONTENT_TYPE, dict(headers), body_template(action))

        setups.append(TargetSetup(
            route_name=name,
            service_name=route.service_name,
            service_id=route.service_id,
            integration_name=route.integration_name,
            routing_key_last4=last4(route.routing_key.get_secret_value()),
            authentication=authentication,
            trigger=request("trigger"),
            resolve=request("resolve"),
        ))
    return setups


def render_json(setups: list[TargetSetup], notes: SetupNotes) -> str:
    return json.dumps({"warnings": list(notes.warnings), "credential": notes.credential,
                       "targets": [asdict(s) for s in setups]}, indent=2) + "\n"


def render_text(setups: list[TargetSetup], notes: SetupNotes) -> str:
    out: list[str] = [*notes.warnings, *([""] if notes.warnings else [])]
    for setup in setups:
        out += [
            f"== Route {setup.route_name}: PagerDuty service {setup.service_name!r} "
            f"({setup.service_id}), integration {setup.integration_name!r} "
            f"(key {setup.routing_key_last4})",
            NAVIGATION,
            f"Service Name:          {setup.integration_name}",
            f"Global Authentication: {setup.authentication}",
            HEADER_FLAGS,
        ]
        # The same headers go with both sequences: ASM sets them once per target.
        out += [f"  {name}: {value}" for name, value in setup.trigger.headers.items()]
        out.append(notes.credential)
        for label, req in (("Trigger", setup.trigger), ("Resolve", setup.resolve)):
            out += [
                "-- Trigger Sequence (Severity: F, E and W; one body for all three)"
                if label == "Trigger" else "-- Resolve Sequence",
                f"URL:          {req.url}",
                f"Method:       {req.method}",
                f"Content-Type: {req.content_type}",
                "Data:", req.body,
            ]
        out.append("")
    out.append(
        "Each check: add an alert to the target above for severities F, E and W. "
        "Keep %QM% (not %M%) in the body."
    )
    return "\n".join(out) + "\n"
