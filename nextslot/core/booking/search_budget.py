"""A budget of slot searches per business, so one business hammering availability cannot slow the others.

Slot searches are the expensive read (every resource's rules, claims and calendars over a window), and every
way in reaches them: agents' tools over MCP and voice webhooks, the staff API, the booking pages, chats. So
the budget is counted here, where they all meet, per business whatever the key, token or address asking. A
moving window of the `limits` library (as the edges' own rate limits), counted in memory per process: N server
processes allow N times the budget.
"""
from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from nextslot.core.results import Rejected

RATE_LIMITED = "rate_limited"


class SlotSearchBudget:
    """Slot searches per business in a moving window, e.g. "600/minute"."""

    def __init__(self, rate: str):
        self.item: RateLimitItem = parse(rate)
        self._window = MovingWindowRateLimiter(MemoryStorage())

    def refusal(self, business_id: int) -> Rejected | None:
        """None if the search may go ahead (and is counted); else a `rate_limited` refusal with its wait."""
        if self._window.hit(self.item, "slot_searches", str(business_id)):
            return None
        reset = self._window.get_window_stats(self.item, "slot_searches", str(business_id)).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        return Rejected(RATE_LIMITED, f"Too many slot searches for this business (at most {self.item}); try again "
                                      f"in {wait} seconds.", details=(("retry_after", str(wait)),))


def retry_after(rejected: Rejected) -> int | None:
    """The seconds a `rate_limited` refusal asks the caller to wait, else None."""
    wait = dict(rejected.details).get("retry_after")
    return int(wait) if rejected.code == RATE_LIMITED and wait is not None and wait.isdigit() else None
