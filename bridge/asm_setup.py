"""The exact ASM "Custom" webhook target for each route, so nobody composes it by hand.

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

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from bridge.intake.asm import RAW_FORMAT
from bridge.intake.auth import Credentials
from contract.redact import last4
from contract.routes_file import RoutesFile

CONTENT_TYPE = "application/json"
METHOD = "POST"

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
    if credentials.tokens:
        token = credentials.tokens[0]
        shown = token if reveal else f"<token {last4(token)}>"
        return {token_header: shown}, "None (the token header authenticates)"
    if credentials.basic:
        user, password = credentials.basic[0]
        shown = password if reveal else f"<password {last4(password)}>"
        return {}, f"Basic: user {user}, password {shown}"
    return {}, "None (WARNING: the bridge has no credentials configured)"


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


def render_json(setups: list[TargetSetup]) -> str:
    return json.dumps({"targets": [asdict(s) for s in setups]}, indent=2) + "\n"


def render_text(setups: list[TargetSetup]) -> str:
    out: list[str] = []
    for setup in setups:
        out += [
            f"== Route {setup.route_name}: PagerDuty service {setup.service_name!r} "
            f"({setup.service_id}), integration {setup.integration_name!r} "
            f"(key {setup.routing_key_last4})",
            "In ASM: Alerts > Targets > add a Webhook target, Service: Custom.",
            f"Target name: {setup.integration_name}",
            f"Authentication: {setup.authentication}",
        ]
        for label, req in (("Trigger", setup.trigger), ("Resolve", setup.resolve)):
            out += [
                f"-- {label} sequence (same body for F, E and W)" if label == "Trigger"
                else f"-- {label} sequence",
                f"URL:          {req.url}",
                f"Method:       {req.method}",
                f"Content-Type: {req.content_type}",
            ]
            out += [f"Header:       {k}: {v}" for k, v in req.headers.items()]
            out += ["Body:", req.body]
        out.append("")
    out.append(
        "Each check: add an alert to the target above for severities F, E and W. "
        "Keep %QM% (not %M%) in the body."
    )
    return "\n".join(out) + "\n"
