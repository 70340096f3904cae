"""What one sender may make at a business in a day through the public ways in, whatever contacts it gives.

The booking page and a customer's own assistant at /b/{slug}/mcp count by the client's address (an IPv6 /64; the two
together), the voice lines by the caller id (a voice platform calls from the same few addresses for every caller;
every withheld number together, as the code budget counts them). Each may make `public_bookings_per_day`
bookings (a series once) and waitlist places a day at a business, and as many holds; past it the call answers
`too_many_bookings` (`too_many_holds`) and does nothing. Only what was made counts: a taken time, a refusal or a
replayed retry costs nothing, and a retry of what was made (its idempotency key already answered: a platform's
resent call, a double submit) gets its first answer past the budget too. Made-up numbers from one address or one phone therefore fill no calendar and send no
flood of confirmations; what one contact may have, whoever asks, is the core's (core/booking/public_caps.py).
Counted per server process with the other rate limits (server/rate_limit.py), so N processes allow N times this.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.server.rate_limit import RateLimit, RateLimits
from nextslot.tools.registry import MADE, WRITE_BUDGETS, ToolReply, WriteBudget
from nextslot.tools.render import problem

NOT_DIALLED = re.compile(r"[^0-9+]")


@dataclass(frozen=True)
class PublicSender:
    """One sender at one business, and the budgets it spends."""

    limits: RateLimits
    service: BookingService
    business_id: int
    identity: str  # "7:address:203.0.113.9", "7:caller:+447911123456", "7:caller:withheld"
    who: Literal["address", "caller"]

    @classmethod
    def at_address(cls, limits: RateLimits, service: BookingService, business_id: int,
                   address: str) -> PublicSender:
        """A visitor of the page or a customer's assistant, by its address (`rate_limit.network_of`)."""
        return cls(limits, service, business_id, f"{business_id}:address:{address}", "address")

    @classmethod
    def on_call(cls, limits: RateLimits, service: BookingService, business_id: int,
                caller_phone: str | None) -> PublicSender:
        """A caller on a voice line, by the number the platform reports (withheld ones share one budget)."""
        number = NOT_DIALLED.sub("", caller_phone or "") or "withheld"
        return cls(limits, service, business_id, f"{business_id}:caller:{number}", "caller")

    def budget(self, kind: WriteBudget) -> RateLimit:
        return self.limits.public_holds if kind == "holds" else self.limits.public_bookings

    def refusal(self, kind: WriteBudget, key: str | None = None) -> Rejected | None:
        """The answer when this sender has made its day's bookings (holds) and this is not a retry of one of them
        (`key`: the write's idempotency key), else None."""
        budget = self.budget(kind)
        if budget.allows(self.identity) or key and self.service.answered(self.business_id, key):
            return None
        cap = budget.item.amount
        where = "on calls from this number" if self.who == "caller" else "from this connection"
        if kind == "holds":
            return Rejected("too_many_holds", f"{cap} holds have been made {where} here today, the most one caller "
                                              "may make. Nothing was held: book the time itself instead.",
                            details=(("cap", str(cap)), ("who", self.who)))
        return Rejected("too_many_bookings", f"{cap} bookings and waitlist places have been made {where} here "
                                             "today, the most one sender may make. Nothing was booked: the "
                                             "business's staff can book more.",
                        details=(("cap", str(cap)), ("who", self.who)))

    def made(self, kind: WriteBudget) -> None:
        self.budget(kind).count(self.identity)

    # --- the agent tools (/b/{slug}/mcp, the voice lines) ---------------------------------------------------------

    def refused_call(self, tool: str, arguments: Any, request_key: str | None) -> ToolReply | None:
        """A booking, series, waitlist place or hold past this sender's day, answered as the tools answer a refusal
        (with a sentence to say, in the language the call names); None for any other call, and for a retry (the
        call's idempotency key, else the request's: `request_key`) of one that was made."""
        kind = WRITE_BUDGETS.get(tool)
        if kind is None:
            return None
        given = arguments.get("idempotency_key") if isinstance(arguments, dict) else None
        refused = self.refusal(kind, given if isinstance(given, str) and given else request_key)
        if refused is None:
            return None
        language = arguments.get("language") if isinstance(arguments, dict) else None
        said = problem(refused, language if isinstance(language, str) else None)
        return ToolReply(False, {"error": said.model_dump(mode="json")})

    def count_reply(self, tool: str, reply: ToolReply) -> None:
        """Count a call that made something (not a retry's replayed answer)."""
        kind = WRITE_BUDGETS.get(tool)
        if kind and reply.ok and reply.data.get("outcome") in MADE and not reply.data.get("replayed"):
            self.made(kind)
