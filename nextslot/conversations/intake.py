"""Receiving a message into a conversation: find the business it is for, the number's open conversation (a new
one after the idle time), and store the message to be answered by a scheduler process. Quick and idempotent, so
the webhook can acknowledge at once: a MessageSid Twilio sends again is stored once."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from nextslot.conversations.words import guess_language
from nextslot.core.service import BookingService
from nextslot.storage import wakeups
from nextslot.storage.tables import Booking, Business, Conversation, ConversationMessage, Customer

CHOICES_REMEMBERED = timedelta(days=1)  # how long a chat's numbered choices stay what a bare number answers


@dataclass(frozen=True)
class Incoming:
    channel: str  # sms, whatsapp
    phone: str  # E.164, without "whatsapp:"
    body: str
    provider_id: str | None = None  # Twilio's MessageSid
    to: str | None = None  # the number written to, without "whatsapp:"
    media: dict[str, Any] = field(default_factory=dict)  # {"items": [{"url", "type"}]} or {"location": {...}}


def already_received(session: Session, provider_id: str | None) -> bool:
    return bool(provider_id) and session.scalar(
        select(exists().where(ConversationMessage.provider_id == provider_id)))


def has_open_conversation(service: BookingService, channel: str, phone: str, idle: timedelta) -> bool:
    """Whether this number is mid-conversation on this channel (so "1" is a choice there, not a confirm)."""
    with service.uow() as uow:
        return bool(uow.session.scalar(select(exists().where(
            Conversation.phone == phone, Conversation.channel == channel, Conversation.status == "open",
            or_(Conversation.last_message_at > service.now() - idle, Conversation.handoff_at.is_not(None))))))


def last_chatted(service: BookingService, channel: str, phone: str) -> datetime | None:
    """When this number last wrote in a chat with us on this channel, if within CHOICES_REMEMBERED: a bare answer
    then picks from the chat's choices ("2 My bookings", "no"), even after the chat went idle, unless a message
    about a booking asked something since."""
    with service.uow() as uow:
        return uow.session.scalar(select(func.max(Conversation.last_message_at)).where(
            Conversation.phone == phone, Conversation.channel == channel,
            Conversation.last_message_at > service.now() - CHOICES_REMEMBERED))


def business_for(session: Session, message: Incoming, now: datetime, idle: timedelta) -> int | None:
    """Whose conversation this is: the business that gave out the number written to
    (`details.conversations.numbers`), else the open conversation's, else the one the number last booked with,
    else the only business."""
    if message.to:
        owner = session.scalars(select(Business.id).where(
            Business.details.contains({"conversations": {"numbers": [message.to]}})).order_by(Business.id)).first()
        if owner:
            return owner
    open_one = session.scalar(select(Conversation.business_id).where(
        Conversation.phone == message.phone, Conversation.channel == message.channel,
        Conversation.status == "open", Conversation.last_message_at > now - idle)
        .order_by(Conversation.last_message_at.desc()).limit(1))
    if open_one:
        return open_one
    booked_with = session.scalar(select(Booking.business_id).join(Customer, Customer.id == Booking.customer_id)
                                 .where(Customer.phone == message.phone).order_by(Booking.created_at.desc()).limit(1))
    if booked_with:
        return booked_with
    only = session.scalars(select(Business.id).limit(2)).all()
    return only[0] if len(only) == 1 else None


def receive(service: BookingService, message: Incoming, idle: timedelta) -> bool:
    """Store the message in its conversation, waiting to be answered; False if no business could be told apart
    (the caller answers it another way). A message already stored (Twilio's retry) is True, stored once."""
    now = service.now()
    with service.uow() as uow:
        s = uow.session
        if already_received(s, message.provider_id):
            return True
        business_id = business_for(s, message, now, idle)
        if business_id is None:
            return False
        conversation = open_conversation(s, business_id, message, now, idle)
        stored = s.execute(insert(ConversationMessage).values(
            business_id=business_id, conversation_id=conversation.id, direction="in",
            provider_id=message.provider_id, body=message.body[:5000], media=message.media, created_at=now,
        ).on_conflict_do_nothing(index_elements=["provider_id", "business_id"]).returning(ConversationMessage.id)).scalar()
        if stored is not None:
            conversation.last_message_at = now
            wakeups.notify(s, wakeups.CONVERSATIONS)  # a scheduler process answers it now, not at its next poll
        uow.commit()
    return True


def open_conversation(s: Session, business_id: int, message: Incoming, now: datetime,
                      idle: timedelta) -> Conversation:
    """The number's open conversation, locked until commit (so its messages get ids in arrival order); an idle
    one with nothing waiting is closed and a new one begun."""
    conversation = locked_open(s, business_id, message)
    if (conversation is not None and conversation.handoff_at is None and conversation.last_message_at <= now - idle
            and not waiting(s, conversation.id)):
        conversation.status, conversation.closed_at = "closed", now
        s.flush()
        conversation = None
    if conversation is None:
        customer = s.execute(select(Customer.id, Customer.language).where(
            Customer.business_id == business_id, Customer.phone == message.phone)).first()
        # the words of the first message win over the stored language (which defaults to English)
        language = guess_language(message.body, customer.language if customer and customer.language else "en")
        s.execute(insert(Conversation).values(
            business_id=business_id, customer_id=customer.id if customer else None, channel=message.channel,
            phone=message.phone, language=language, status="open", mode="model", state={}, model_calls=0,
            last_message_at=now, identity={"to": message.to} if message.to else {},  # replies go out from it
        ).on_conflict_do_nothing(index_elements=["business_id", "phone", "channel"],
                                 index_where=text("status = 'open' and channel <> 'web'")))
        conversation = locked_open(s, business_id, message)  # ours, or the one a concurrent webhook just made
    assert conversation is not None
    return conversation


def locked_open(s: Session, business_id: int, message: Incoming) -> Conversation | None:
    return s.scalars(select(Conversation).where(
        Conversation.business_id == business_id, Conversation.phone == message.phone,
        Conversation.channel == message.channel, Conversation.status == "open")
        .with_for_update().execution_options(populate_existing=True)).one_or_none()


def waiting(s: Session, conversation_id: int) -> bool:
    return bool(s.scalar(select(func.count()).select_from(ConversationMessage).where(
        ConversationMessage.conversation_id == conversation_id, ConversationMessage.direction == "in",
        ConversationMessage.processed_at.is_(None))))
