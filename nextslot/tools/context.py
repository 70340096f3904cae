"""Who is calling a tool: the business (from its API key), the channel, what the platform knows, and whether the
caller is proved to be the customer a booking belongs to (anyone can say her phone number or read out a code)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from nextslot.core.service import BookingService
from nextslot.languages import choose
from nextslot.schemas.views import CustomerView

# the business's own agents, with its staff's reach: `/mcp` with its key or an app it approved (stdio too), and
# OpenAI function calling, which its own code runs
STAFF_CHANNELS = frozenset({"mcp", "openai"})


@dataclass(frozen=True)
class ToolContext:
    service: BookingService
    business_id: int
    channel: str  # mcp, openai, vapi, retell, elevenlabs: recorded as the booking's source and in its history
    caller_phone: str | None = None  # a voice platform's caller id, used when the model gives no phone
    idempotency_key: str | None = None  # a platform's own id for this tool call, used when the model gives none
    call_id: str | None = None  # the voice platform's id of the call, its name first ("vapi:..."): a withheld holder
    language: str | None = None  # the conversation's language: `say` comes in it when the call names none
    proved: frozenset[str] = frozenset()  # contacts proved the caller's own in this call: E.164 phones, emails
    holder: str | None = None  # a public caller's, on the holds it makes: it converts only those (None: any hold)

    def proving(self, *contacts: str | None) -> ToolContext:
        """This context with more contacts proved (the caller id, a one-time code's contact, a texting number)."""
        more = {c.lower() if "@" in c else c for c in contacts if c}
        return replace(self, proved=self.proved | more) if more - self.proved else self

    def answers_her(self, customer: CustomerView) -> bool:
        """Whether the caller may be answered as this customer, in her own language and zone and told why her deposit
        is asked: the business's own agents, or a caller proved to be her (her number calling or writing, a contact
        proved with a one-time code). Holding her number or her booking's code proves nothing."""
        if self.channel in STAFF_CHANNELS:
            return True
        return bool(customer.phone and customer.phone in self.proved
                    or customer.email and customer.email.lower() in self.proved)

    def zone_for(self, stated: str | None, customer: CustomerView) -> str | None:
        """The zone to give times of this customer's booking in: hers if the caller is proved to be her (else the one
        the call names), else the one the call names; None: the place's (the branch's, else the business's). Her
        stored zone says where she lives, so no one else hears it, whether or not the number is known."""
        if customer.timezone and self.answers_her(customer):
            return customer.timezone
        return stated

    def language_for(self, stated: str | None, customer: CustomerView) -> str:
        """The language to answer about this customer's booking in: the one the call names, else the conversation's,
        else hers if the caller is proved to be her, else the business's (the same for every number, known or not)."""
        if stated or self.language:
            return choose(stated, self.language)
        if self.answers_her(customer):
            return choose(customer.language)
        return self.business_language

    @cached_property
    def business_language(self) -> str:
        """The business's default language (its page's, `language` in its config), else English: read once."""
        record = self.service.business_by_id(self.business_id)
        return choose(record.details.get("language") if record is not None else None)
