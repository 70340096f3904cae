"""Customers' replies over SMS and WhatsApp: confirm or cancel through the core, STOP and START, and a
question back when the reply is not clear. Every reply is stored with what it was read as and answered."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from nextslot.conversations.intake import (
    Incoming,
    already_received,
    has_open_conversation,
    last_chatted,
    receive,
)
from nextslot.conversations.words import say
from nextslot.core.customers import replies
from nextslot.core.customers.replies import OfferTarget, Sender, Target
from nextslot.core.results import Booked, Rejected, SlotTaken
from nextslot.core.service import BookingService
from nextslot.reminders.replies import Intent, Reply, parse_reply, twilio_opt_change
from nextslot.reminders.reply_words import ANSWERS
from nextslot.reminders.templates import spoken_when
from nextslot.reminders.whatsapp_window import record_inbound
from nextslot.schemas.commands import BookingChange
from nextslot.tools.phrases import cost_phrase, phrase

ANSWER_WAIT_SECONDS = 10.0  # within the 15 s Twilio waits for a webhook's answer
# a sending number's next keyword answer: "answer", "notice" (one word that it is past its budget) or "silent"
Budget = Callable[[str], str]


@dataclass(frozen=True)
class Conversations:
    """The webhook's side of conversations: how long one lasts idle, the number written to, any media."""

    idle: timedelta
    to: str | None = None
    media: dict[str, Any] = field(default_factory=dict)


def handle_reply(service: BookingService, channel: str, sender: str, body: str,
                 provider_id: str | None = None, conversations: Conversations | None = None,
                 budget: Budget | None = None, quoting: str | None = None,
                 opt_out_type: str | None = None) -> str | None:
    """Act on one inbound message and return the answer to send back (a retried message is answered again,
    not acted on again; "" is no answer). With `conversations`, a message that is not a clear keyword answer, or
    comes in the middle of a conversation, is stored for the conversation instead and None returned: answered
    later. With `budget`, a number past its keyword answers gets one word about it, then silence: a STOP or START
    is still kept, anything else is stored `rate_limited` and does nothing (each answer is a text we pay for).
    `quoting`: the provider's id of our message the reply quotes, whose booking it then answers. An SMS Twilio took
    as an opt-out (`opt_out_type`, Twilio's OptOutType, else its keywords) is kept as one, as Twilio keeps it; a bare
    CANCEL still cancels, its answer going by the outbox's next channel (Twilio drops any SMS to the number now)."""
    phone = sender.removeprefix("whatsapp:")
    if channel == "whatsapp":  # the customer wrote: WhatsApp takes free text from us for the next 24 hours
        with service.uow() as uow:
            record_inbound(uow.session, phone, conversations.to if conversations else None, service.now(),
                           conversations.idle if conversations else timedelta(minutes=30))
            uow.commit()
    if (seen := replies.answer_already_given(service.uow(), provider_id)) is not None:
        return seen
    if conversations:
        with service.uow() as uow:
            if already_received(uow.session, provider_id):
                return None
    who = replies.sender(service.uow(), phone, tuple(ANSWERS))
    reply = parse_reply(body)
    twilio = twilio_opt_change(body, opt_out_type) if channel == "sms" else None
    if twilio is Intent.STOP and reply.intent is not Intent.CANCEL \
            or twilio is Intent.START and reply.intent is not Intent.CONFIRM:
        reply = Reply(twilio, reply.codes)  # Twilio's keyword, and nothing else to act on
    elif twilio is not None:  # a bare CANCEL (or YES): Twilio stopped (or resumed) every SMS, and it answers a booking
        replies.follow_opt_change(service.uow(), dict(channel=channel, sender=phone, body=body), who,
                                  twilio is Intent.STOP, service.now())
    quoted = replies.quoted_booking(service.uow(), who.customer_ids, quoting)  # a yes or no to that, not the chat
    if conversations and reply.intent not in (Intent.STOP, Intent.START) and twilio is not Intent.STOP and (
            reply.intent is Intent.UNCLEAR or conversations.media or quoted is None and (
                has_open_conversation(service, channel, phone, conversations.idle)
                or answers_the_chat(service, channel, phone, reply, who))):
        incoming = Incoming(channel, phone, body, provider_id, conversations.to, conversations.media)
        if receive(service, incoming, conversations.idle):
            return None
    record = dict(channel=channel, sender=phone, provider_id=provider_id, body=body, intent=reply.intent.value)
    if not replies.claim_reply(service.uow(), record, service.now()):
        return first_copys_answer(service, provider_id)  # Twilio sent it again while we were answering it
    words = ANSWERS[who.language]
    spent = budget(phone) if budget is not None else "answer"
    if twilio is Intent.STOP and reply.intent is Intent.CANCEL:  # Twilio drops any SMS to the number now; the
        words = {key: "" for key in words}  # cancellation's own message goes by the next channel (its outbox row)

    if reply.intent in (Intent.STOP, Intent.START):
        stop = reply.intent is Intent.STOP
        replies.set_opt_out(service.uow(), who.customer_ids, channel, stop)
        return store(service, record, words["stopped" if stop else "started"] if spent == "answer" else "",
                     "opted_out" if stop else "opted_in", who)
    if spent != "answer":
        return store(service, record, say(who.language, "slow_down") if spent == "notice" else "", "rate_limited",
                     who)
    if conversations and (owner := replies.number_owner(service.uow(), conversations.to)) is not None:
        # written to a business's own number: a yes or no is about that business's bookings, not another's
        who = replies.sender(service.uow(), phone, tuple(ANSWERS), business_id=owner)
        quoted = replies.quoted_booking(service.uow(), who.customer_ids, quoting)
    if reply.intent in (Intent.CONFIRM, Intent.CANCEL) and not reply.codes and quoted is None:
        offer = replies.offer_answered(service.uow(), who.customer_ids, service.now())
        if offer is not None:  # a yes or no right after a waitlist offer is about the offer
            return answer_offer(service, record, who, offer, reply.intent is Intent.CONFIRM, channel, words)
    target = replies.target_booking(service.uow(), who.customer_ids, reply.codes, reply.names_a_code,
                                    service.now(), quoted)
    if target is None:
        return store(service, record, words["no_booking"], "no_booking", who)
    details = {"service": target.service_name, "when": spoken_when(target.starts_at, target.zone, who.language)}
    if reply.intent is Intent.UNCLEAR:
        return store(service, record, words["unclear"].format(**details), "asked_again", who, target)
    change = BookingChange(code=target.code, source=channel, actor="customer")
    if reply.intent is Intent.CONFIRM:
        result, outcome = service.confirm(target.business_id, change), "confirmed"
    else:
        if replies.asked_late_terms(service.uow(), target, service.now()):  # a second cancel within the hour of being told the cost accepts it
            change = change.model_copy(update={"late_terms": "accept"})
        result, outcome = service.cancel(target.business_id, change), "cancelled"
    if isinstance(result, Rejected) and result.code == "late_terms_not_accepted":
        facts = dict(result.details)
        question = result.message if who.language == "en" or not facts else phrase(
            "late_terms", who.language, hours=facts["hours"],
            cost=cost_phrase(facts["cost"], facts["amount"], facts["kind"], who.language))
        return store(service, record, words["late_terms"].format(reason=question), "late_terms_asked", who,
                     target)
    if isinstance(result, Rejected):
        return store(service, record, words["refused"].format(**details, reason=result.message), "refused", who,
                     target)
    return store(service, record, words[outcome].format(**details), outcome, who, target)


def answers_the_chat(service: BookingService, channel: str, phone: str, reply: Reply, who: Sender) -> bool:
    """Whether a bare answer ("2", "no") is to the number's chat that went idle, not a reminder's C or X (which
    would cancel its next booking): it chatted lately, and no message of ours asked for a yes or no since."""
    if reply.codes or (chatted := last_chatted(service, channel, phone)) is None:
        return False
    return not replies.asked_since(service.uow(), who.customer_ids, chatted)


def first_copys_answer(service: BookingService, provider_id: str | None) -> str | None:
    """The answer of the first copy of this message, still being acted on, once it is given; None if that takes
    longer than Twilio waits for a webhook (the copy then acts on nothing: a second act could reach another
    booking)."""
    deadline = time.monotonic() + ANSWER_WAIT_SECONDS
    while (seen := replies.answer_already_given(service.uow(), provider_id)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


def answer_offer(service: BookingService, record: dict, who: Sender, offer: OfferTarget, yes: bool,
                 channel: str, words: dict[str, str]) -> str:
    details = {"service": offer.service_name, "when": spoken_when(offer.starts_at, offer.zone, who.language)}
    target = Target(None, offer.business_id, offer.customer_id, "", offer.service_name, offer.starts_at, offer.zone)
    if not yes:
        service.decline_offer(offer.offer_id, channel)
        return store(service, record, words["offer_declined"], "offer_declined", who, target)
    result = service.accept_offer(offer.offer_id, channel)
    if isinstance(result, Booked):
        booked = Target(result.booking.id, offer.business_id, offer.customer_id, result.booking.code,
                        offer.service_name, offer.starts_at, offer.zone)
        return store(service, record, words["offer_booked"].format(**details, code=result.booking.code_spoken),
                     "offer_accepted", who, booked)
    if isinstance(result, SlotTaken):
        times = [spoken_when(a.starts_at.utc, offer.zone, who.language) for a in result.alternatives]
        openings = words["openings"].format(times="; ".join(times)) if times else words["no_openings"]
        return store(service, record, words["offer_gone"].format(**details, openings=openings), "offer_lost", who,
                     target)
    return store(service, record, words["refused"].format(**details, reason=result.message), "refused", who, target)


def store(service: BookingService, record: dict, answer: str, outcome: str, who: Sender,
          target: Target | None = None) -> str:
    replies.store_reply(service.uow(), record, answer, outcome, who, service.now(), target)
    return answer
