"""Pacing per routing key against PagerDuty's look-back window (pure; issue 13).

PagerDuty takes about 120 events per routing key over a 60-second look-back window and
documents no Retry-After. The store keeps a log of the attempts per key (`sends`,
written when a lane head is claimed, so replicas share it and sends still in flight
count): a key may send while fewer than `limit` attempts are in the window; else its
next slot is when the oldest that matters leaves it.

The window paced against is PagerDuty's and a margin longer: a send is logged when it
is claimed, and PagerDuty counts it when it arrives, a little later; without the margin
the first send after a full window reached PagerDuty while its oldest was, by a few
milliseconds, still in PagerDuty's window, and was refused.

A 429 comes anyway when something else sends on the key, or PagerDuty's limit is lower
than ours: the key's limit drops to the attempts in the window minus one (at least one)
and the key waits until the window allows that; each clean window since raises the
limit by one again. A Retry-After is honoured when present (capped), never needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.delivery.retry import MAX_RETRY_AFTER
from bridge.store.records import KeyWindow, Throttle

PAGERDUTY_WINDOW = 60.0
# More than a send takes to reach PagerDuty (claim, commit, request: milliseconds on
# loopback, a few hundred at worst across the internet), short against the window.
ARRIVAL_MARGIN = 0.5
WINDOW = PAGERDUTY_WINDOW + ARRIVAL_MARGIN
DEFAULT_LIMIT = 120


@dataclass(frozen=True)
class Pacing:
    """`next_slot` for a key's window; `after_429` for what a 429 leaves."""

    limit: int = DEFAULT_LIMIT
    window: float = WINDOW

    def __post_init__(self) -> None:
        if self.limit < 1 or not self.window > 0:
            raise ValueError("pacing needs limit >= 1 and window > 0")

    def limit_at(self, throttle: Throttle | None, now: float) -> int:
        """The key's limit now: a 429's, raised by one per clean window since."""
        if throttle is None:
            return self.limit
        clean_windows = int(max(now - throttle.since, 0.0) // self.window)
        return min(self.limit, throttle.limit + clean_windows)

    def next_slot(self, window: KeyWindow, now: float) -> float:
        """When the key may send next (<= now: now)."""
        limit = self.limit_at(window.throttle, now)
        slot = self._room_at(self._live(window, now), limit, now)
        if window.throttle is not None:
            slot = max(slot, window.throttle.not_before)
        return slot

    def after_429(self, window: KeyWindow, now: float, retry_after: float | None) -> Throttle:
        """The key's throttle after PagerDuty answered 429 (the refused attempt is in
        `window`: it was counted when claimed)."""
        live = self._live(window, now)
        limit = max(min(len(live) - 1, self.limit_at(window.throttle, now)), 1)
        not_before = self._room_at(live, limit, now)
        if retry_after is not None:
            not_before = max(not_before, now + min(max(retry_after, 0.0), MAX_RETRY_AFTER))
        return Throttle(limit=limit, since=now, not_before=not_before)

    def _live(self, window: KeyWindow, now: float) -> tuple[float, ...]:
        return tuple(sorted(t for t in window.sent_at if t > now - self.window))

    def _room_at(self, live: tuple[float, ...], limit: int, now: float) -> float:
        # With n sends in the window, a send needs n < limit: wait for the (n - limit + 1)
        # oldest to leave it.
        if len(live) < limit:
            return now
        return live[len(live) - limit] + self.window
