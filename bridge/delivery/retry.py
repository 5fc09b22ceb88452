"""Retry policy as data: what each Events API answer means for the event (pure).

Like python-pagerduty's `retry` table, the decision is a lookup, not a branch
forest: exact status first, then status class, then the default. The sender turns
the chosen `Rule` into an outcome; the worker turns "back off" into a time with
`Backoff` (exponential, full jitter, capped, forever: PagerDuty being down is not
a reason to drop a page).
"""

from __future__ import annotations

import email.utils
import enum
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class Behaviour(enum.Enum):
    DONE = "done"
    RETRY_AFTER = "retry_after"  # honour Retry-After, else back off
    BACKOFF = "backoff"
    DEAD = "dead"  # keep for a person
    DEAD_LOUD = "dead_loud"  # keep for a person and log an error: config is wrong


@dataclass(frozen=True)
class Rule:
    behaviour: Behaviour
    reason: str  # metric label and log word


STATUS_RULES: Mapping[int, Rule] = {
    400: Rule(Behaviour.DEAD, "invalid_event"),
    401: Rule(Behaviour.DEAD_LOUD, "unauthorized"),
    403: Rule(Behaviour.DEAD_LOUD, "forbidden"),
    404: Rule(Behaviour.DEAD_LOUD, "not_found"),
    408: Rule(Behaviour.BACKOFF, "timeout"),
    413: Rule(Behaviour.DEAD, "too_large"),
    429: Rule(Behaviour.RETRY_AFTER, "rate_limited"),
}
CLASS_RULES: Mapping[int, Rule] = {
    2: Rule(Behaviour.DONE, "delivered"),
    # Any other 4xx means this event will never be taken as it is: keep it, shout.
    4: Rule(Behaviour.DEAD_LOUD, "unexpected_status"),
    5: Rule(Behaviour.BACKOFF, "server_error"),
}
# 1xx/3xx (redirects are not followed: a POST must not turn into a GET) and
# anything odd: assume a proxy in the way, keep trying.
DEFAULT_RULE = Rule(Behaviour.BACKOFF, "unexpected_status")
# A 400 whose errors name the routing key: the routes file's key is wrong, so every event
# of the route would fail the same way (issue 9 item 16).
ROUTING_KEY_REFUSED = Rule(Behaviour.DEAD_LOUD, "routing_key_refused")
_NAMES_ROUTING_KEY = re.compile(r"routing[ _]?key", re.IGNORECASE)
TIMEOUT_RULE = Rule(Behaviour.BACKOFF, "timeout")
CONNECTION_RULE = Rule(Behaviour.BACKOFF, "connection_error")

# A Retry-After beyond this is treated as this: a misbehaving proxy must not
# park a page for a day.
MAX_RETRY_AFTER = 600.0


def rule_for(status: int, errors: Sequence[str] = ()) -> Rule:
    """The rule for an HTTP status from the Events API (and its `errors`, for a 400)."""
    if status == 400 and any(_NAMES_ROUTING_KEY.search(error) for error in errors):
        return ROUTING_KEY_REFUSED
    return STATUS_RULES.get(status) or CLASS_RULES.get(status // 100, DEFAULT_RULE)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * factor**(n-1)))."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0  # paging latency after an outage: at most a minute behind

    def ceiling(self, attempt: int) -> float:
        # Cap the exponent too, so attempt 10,000 does not overflow a float.
        exponent = min(max(attempt - 1, 0), 64)
        return min(self.cap, self.base * self.factor**exponent)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry after the `attempt`-th failed try (1-based)."""
        return (rng or random).uniform(0.0, self.ceiling(attempt))
