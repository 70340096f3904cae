"""What one sender may make at a business in a day through the public ways in, whatever contacts it gives.

The booking page and a customer's own assistant at /b/{slug}/mcp count by the client's address (an IPv6 /64; the two
together), the voice lines by the caller id (a voice platform calls from the same few addresses for every caller;
every withheld number together, as the code budget counts them). Each may make `public_bookings_per_day`
bookings (a series once) and waitlist places a day at a business, and as many holds; past it the call answers
`too_many_bookings` (`too_many_holds`) and does nothing. Only what was made counts: a taken time, a refusal or a
replayed retry costs nothing, and a retry of what was made (its idempotency key already answered: a platform's
resent call, a double submit) gets its first answer past the budget too. Made-up numbers from one address or one
phone therefore fill no calendar and send no flood of confirmations; what one contact may have, whoever asks, is
the core's (core/booking/public_caps.py). Counted in the database, so every server process shares one budget
(core/booking/sender_budgets.py): a write takes its place before it runs and gives it back when it made nothing,
so two writes of one sender at once cannot both take the last place; the day is the UTC day.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from nextslot.core.booking.sender_budgets import SenderPlace
from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.tools.registry import MADE, WRITE_BUDGETS, ToolReply, WriteBudget
from nextslot.tools.render import problem

NOT_DIALLED = re.compile(r"[^0-9+]")


class Place:
    """A write's place in its sender's day: the write runs inside `with place:` and calls `keep()` once it made
    something; leaving the block without that gives the place back (a taken time, a refusal, a replayed retry, an
    error). A retry of what was made past the budget has no place to give back."""

    def __init__(self, service: BookingService, taken: SenderPlace | None):
        self._service, self._taken, self._kept = service, taken, False

    def keep(self) -> None:
        self._kept = True

    def __enter__(self) -> Place:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._taken is not None and not self._kept:
            self._service.give_back_sender_place(self._taken)


@dataclass(frozen=True)
class PublicSender:
    """One sender at one business, and the budgets it spends."""

    service: BookingService
    business_id: int
    identity: str  # "address:203.0.113.9", "caller:+447911123456", "caller:withheld"
    who: Literal["address", "caller"]

    @classmethod
    def at_address(cls, service: BookingService, business_id: int, address: str) -> PublicSender:
        """A visitor of the page or a customer's assistant, by its address (`rate_limit.network_of`)."""
        return cls(service, business_id, f"address:{address}", "address")

    @classmethod
    def on_call(cls, service: BookingService, business_id: int, caller_phone: str | None) -> PublicSender:
        """A caller on a voice line, by the number the platform reports (withheld ones share one budget)."""
        number = NOT_DIALLED.sub("", caller_phone or "") or "withheld"
        return cls(service, business_id, f"caller:{number}", "caller")

    def place(self, kind: WriteBudget, key: str | None = None) -> Place | Rejected:
        """A place in this sender's day for one booking (series, waitlist place) or hold, or the answer when it has
        made its day's and this is not a retry of one of them (`key`: the write's idempotency key)."""
        taken = self.service.take_sender_place(self.business_id, kind, self.identity)
        if isinstance(taken, SenderPlace):
            return Place(self.service, taken)
        if key and self.service.answered(self.business_id, key):
            return Place(self.service, None)
        cap = taken.cap
        where = "on calls from this number" if self.who == "caller" else "from this connection"
        if kind == "holds":
            return Rejected("too_many_holds", f"{cap} holds have been made {where} here today, the most one caller "
                                              "may make. Nothing was held: book the time itself instead.",
                            details=(("cap", str(cap)), ("who", self.who)))
        return Rejected("too_many_bookings", f"{cap} bookings and waitlist places have been made {where} here "
                                             "today, the most one sender may make. Nothing was booked: the "
                                             "business's staff can book more.",
                        details=(("cap", str(cap)), ("who", self.who)))

    # --- the agent tools (/b/{slug}/mcp, the voice lines) ---------------------------------------------------------

    def run(self, tool: str, arguments: Any, request_key: str | None, call: Callable[[], ToolReply]) -> ToolReply:
        """Run one tool call within this sender's day: a booking, series, waitlist place or hold past it is answered
        as the tools answer a refusal (with a sentence to say, in the language the call names) and not run; a retry
        (the call's idempotency key, else the request's: `request_key`) of one that was made runs; any other call
        runs. Counted when it made something (not a retry's replayed answer)."""
        kind = WRITE_BUDGETS.get(tool)
        if kind is None:
            return call()
        given = arguments.get("idempotency_key") if isinstance(arguments, dict) else None
        place = self.place(kind, given if isinstance(given, str) and given else request_key)
        if isinstance(place, Rejected):
            language = arguments.get("language") if isinstance(arguments, dict) else None
            said = problem(place, language if isinstance(language, str) else None)
            return ToolReply(False, {"error": said.model_dump(mode="json")})
        with place:
            reply = call()
            if reply.ok and reply.data.get("outcome") in MADE and not reply.data.get("replayed"):
                place.keep()
        return reply
