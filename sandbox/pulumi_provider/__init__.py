"""A stand-in for `pulumi-resource-pagerduty` 4.37.0, the real Pulumi engine's PagerDuty plugin.

The real plugin (a bridged Terraform provider) cannot be obtained from any registry
the project's CI reaches, so `pulumi up` runs against this substitute instead: a
Python gRPC server implementing Pulumi's ResourceProvider service for the four
resources and six look-ups the project uses. It sends PagerDuty's REST API the
calls the real provider sends (terraform-provider-pagerduty v3.32.4's bodies,
read-backs, 404 handling and retries) and plans like it (Terraform's defaults,
ForceNew replaces, Optional+Computed properties kept from state). Every message
it shows names it as a stand-in. docs/sandbox.md says how to install and use it.
"""

from __future__ import annotations

# The version the pulumi_pagerduty 4.37.0 SDK asks the engine for.
PROVIDER_VERSION = "4.37.0"
PACKAGE = "pagerduty"
# In every message and log line, so nobody mistakes this for the real plugin.
STAND_IN = f"apica-pd stand-in for pulumi-resource-{PACKAGE} {PROVIDER_VERSION}"
# Names the call log file (each REST call and RPC, debug level), for tests; unset: no log.
CALL_LOG_ENV = "APICA_PD_STAND_IN_LOG"


def labelled(message: str) -> str:
    """`message` as the stand-in says it."""
    return f"{STAND_IN}: {message}"
