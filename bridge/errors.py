"""The bridge's errors: one small hierarchy, each carrying the context to act on it.

`reason` is a short machine label (it becomes the `reason` label of
`apica_bridge_webhooks_refused`); `str()` is the sentence a person reads. No error
ever holds a credential or an integration key in clear: use `contract.redact.last4`.
"""

from __future__ import annotations

from contract.errors import ApicaError


class BridgeError(ApicaError):
    """Base of every error the bridge raises on purpose."""

    reason = "bridge_error"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class ConfigError(BridgeError):
    """Configuration that cannot be used; the message names the variable or key."""

    reason = "config"


class StoreError(BridgeError):
    """A store that cannot be used as it is (a schema this bridge does not know)."""

    reason = "store"


class WebhookRefused(BridgeError):
    """An inbound webhook the bridge will not take; `status` is the HTTP answer."""

    status = 400

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class BadWebhook(WebhookRefused):
    """A body that cannot be read as an ASM alert (400): broken JSON, bad field."""

    status = 400


class BodyTooLarge(WebhookRefused):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__("too_large", f"body is larger than the limit of {limit} bytes")
        self.limit = limit


class UnsupportedContentType(WebhookRefused):
    status = 415

    def __init__(self, content_type: str) -> None:
        shown = content_type or "(none)"
        super().__init__(
            "unsupported_media_type",
            f"content type {shown!r} is not accepted; send application/json "
            "or application/x-www-form-urlencoded",
        )
        self.content_type = content_type


class UnknownRoute(WebhookRefused):
    """`/v1/asm/<route>` names a route that is not in the routes file (404)."""

    status = 404

    def __init__(self, route_name: str) -> None:
        super().__init__("unknown_route", f"no route named {route_name!r} in the routes file")
        self.route_name = route_name


class Unrouted(WebhookRefused):
    """`/v1/asm` got a check that no route claims and there is no catch-all (422)."""

    status = 422

    def __init__(self, check_key: str) -> None:
        super().__init__(
            "unrouted",
            f"no route claims check {check_key} (by check id, GUID or tag) and the "
            "routes file has no catch_all; add the check to a route or post to "
            "/v1/asm/<route>",
        )
        self.check_key = check_key


class InvalidEvent(BridgeError):
    """An event PagerDuty would refuse; it is never sent. `problems` lists each rule broken."""

    reason = "invalid_event"

    def __init__(self, problems: list[str], *, route_name: str | None = None) -> None:
        where = f"route {route_name!r}: " if route_name else ""
        super().__init__(f"{where}event breaks the Events API rules: " + "; ".join(problems))
        self.problems = problems
        self.route_name = route_name


class AsmApiError(BridgeError):
    """The ASM REST API answered something this client cannot use (a refused request,
    a body that is not what the API documents). `status` is the HTTP status, if any."""

    reason = "asm_api"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AsmAuthError(AsmApiError):
    """ASM refused the credential (401/403): retrying will not help, the credential must change."""

    reason = "asm_auth"


class AsmNotFound(AsmApiError):
    """ASM has no such check, or this ASM user cannot see it (404)."""

    reason = "asm_not_found"


class AsmUnavailable(AsmApiError):
    """ASM could not be reached or kept failing (network, timeouts, 429, 5xx) within the
    retries or the deadline; worth trying again later."""

    reason = "asm_unavailable"
