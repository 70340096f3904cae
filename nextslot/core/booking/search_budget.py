"""A budget of slot searches per business, so one business hammering availability cannot slow the others.

Slot searches are the expensive read (every resource's rules, claims and calendars over a window), and every
way in reaches them: agents' tools over MCP and voice webhooks, the staff API, the booking pages, chats. So
the budget is counted here, where they all meet, per business whatever the key, token or address asking:

- at most `at_once` of a business's searches run at a time in a process; the next waits its turn (sleeping,
  costing nothing). Python runs one thread at a time, so ten heavy searches of one business running at once
  left another business's search a tenth of the process: 2-5 ms became 330 ms;
- a moving window of the `limits` library (as the edges' own rate limits), e.g. "600/minute", where a search
  counts once for each 50 ms of this process's CPU it took (a week of a small clinic takes 1-7 ms: once), so a
  business whose searches are costly gets fewer of them, not more of the machine.

Counted in memory per process: N server processes allow N times the budget.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from nextslot.core.results import Rejected
from nextslot.fair_share import ThreadShare
from nextslot.storage.gate import on_event_loop

RATE_LIMITED = "rate_limited"
AT_ONCE = 2  # a business's searches running at a time in a process
PLACES = 10_000  # for every business together: more than a process has threads, so only AT_ONCE binds
TURN_TIMEOUT = 30.0  # then `rate_limited`: send again
COST_UNIT = 0.05  # seconds of a thread's CPU one search counts for (a first search of a business loads its plan)
T = TypeVar("T")


class SlotSearchBudget:
    """Slot searches per business: `at_once` at a time, and a moving window such as "600/minute"."""

    def __init__(self, rate: str, at_once: int = AT_ONCE):
        self.item: RateLimitItem = parse(rate)
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self._running = ThreadShare(PLACES, at_once)  # only each business's own cap binds

    def run(self, business_id: int, search: Callable[[], T]) -> T | Rejected:
        """The search's result, run in its business's turn and counted by the CPU it took; or `rate_limited`."""
        if refused := self.refusal(business_id):
            return refused
        party, turns = str(business_id), not on_event_loop()  # a turn is never waited for on the event loop
        if turns and not self._running.take(party, TURN_TIMEOUT):
            return limited(f"Too many slot searches at once for this business (at most {self._running.most}); try "
                           "again in 1 seconds.", 1)
        started = time.thread_time()
        try:
            return search()
        finally:
            if turns:
                self._running.give_back(party)
            self.charge(business_id, time.thread_time() - started)

    def refusal(self, business_id: int) -> Rejected | None:
        """None if a search may go ahead (and is counted); else a `rate_limited` refusal with its wait."""
        if self._window.hit(self.item, "slot_searches", str(business_id)):
            return None
        reset = self._window.get_window_stats(self.item, "slot_searches", str(business_id)).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        return limited(f"Too many slot searches for this business (at most {self.item}); try again in {wait} "
                       "seconds.", wait)

    def charge(self, business_id: int, cpu_seconds: float) -> None:
        """Count a search once more for each further COST_UNIT of CPU it took, as far as the window has room."""
        extra = math.ceil(cpu_seconds / COST_UNIT) - 1
        if extra > 0:
            room = self._window.get_window_stats(self.item, "slot_searches", str(business_id)).remaining
            if (cost := min(extra, room)) > 0:
                self._window.hit(self.item, "slot_searches", str(business_id), cost=cost)


def limited(message: str, wait: int) -> Rejected:
    return Rejected(RATE_LIMITED, message, details=(("retry_after", str(wait)),))


def retry_after(rejected: Rejected) -> int | None:
    """The seconds a `rate_limited` refusal asks the caller to wait, else None."""
    wait = dict(rejected.details).get("retry_after")
    return int(wait) if rejected.code == RATE_LIMITED and wait is not None and wait.isdigit() else None
