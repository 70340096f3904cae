"""The staff's side of conversations: the inbox (those handed to a person first, then the latest), one
conversation's whole exchange with what the agent did, a staff reply (sent on the conversation's own channel
through the outbox, so receipts and fallback apply), and handing it back to the agent."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from nextslot.conversations.engine import add_reply
from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.storage.tables import (
    Conversation,
    ConversationMessage,
    ConversationToolCall,
    Customer,
    DeliveryAttempt,
    Notification,
)

RECENT = 50
WRITES = ("book_appointment", "book_series", "reschedule_appointment", "cancel_appointment", "confirm_appointment",
          "join_waitlist")
MAX_REPLY = 1500  # ten SMS segments: a staff reply is a message, not a letter


@dataclass(frozen=True)
class InboxRow:
    id: int
    channel: str
    who: str  # the customer's name, else their number (a web chat: the name it gave)
    phone: str
    status: str
    handoff_at: datetime | None
    handoff_reason: str | None
    last_message_at: datetime
    last_text: str


@dataclass(frozen=True)
class Line:
    """One message in the exchange, or one thing the agent did."""

    at: datetime
    kind: str  # in, out, action
    text: str
    by: str | None = None  # out: model, guided, notice, handoff, staff (and the staff member's name)
    delivery: str | None = None  # out over SMS/WhatsApp: the outbox row's status (and the channel, if another)
    note: str | None = None  # in: why it was not answered (too many messages, answering kept failing)


@dataclass(frozen=True)
class Exchange:
    conversation: InboxRow
    language: str
    lines: list[Line]


@dataclass(frozen=True)
class Replied:
    message_id: int


@dataclass(frozen=True)
class HandedBack:
    conversation_id: int


def inbox(service: BookingService, business_id: int, limit: int = RECENT) -> list[InboxRow]:
    """Conversations waiting for a person (longest waiting first), then the most recent others."""
    with service.uow() as uow:
        s = uow.session
        waiting = s.scalars(select(Conversation).where(
            Conversation.business_id == business_id, Conversation.handoff_at.is_not(None),
            Conversation.status == "open").order_by(Conversation.handoff_at, Conversation.id)).all()
        recent = s.scalars(select(Conversation).where(
            Conversation.business_id == business_id, Conversation.id.not_in([c.id for c in waiting]))
            .order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(limit)).all()
        return [row_of(s, c) for c in [*waiting, *recent]]


def row_of(s: Any, c: Conversation) -> InboxRow:
    name = (c.identity or {}).get("name") if c.channel == "web" else s.scalar(select(Customer.name).where(
        Customer.business_id == c.business_id, Customer.phone == c.phone))
    last = s.scalar(select(ConversationMessage.body).where(ConversationMessage.conversation_id == c.id)
                    .order_by(ConversationMessage.id.desc()).limit(1)) or ""
    phone = c.phone or (c.identity or {}).get("proved_phone") or (c.identity or {}).get("phone") or ""
    return InboxRow(c.id, c.channel, name or phone or "web visitor", phone, c.status, c.handoff_at,
                    c.handoff_reason, c.last_message_at, last[:140])


def exchange(service: BookingService, business_id: int, conversation_id: int) -> Exchange | None:
    """The conversation's messages in and out, with what the agent booked, moved or cancelled, in order."""
    with service.uow() as uow:
        s = uow.session
        c = s.get(Conversation, conversation_id)
        if c is None or c.business_id != business_id:
            return None
        messages = s.execute(select(ConversationMessage, Notification.status)
                             .outerjoin(Notification, Notification.id == ConversationMessage.notification_id)
                             .where(ConversationMessage.conversation_id == c.id)
                             .order_by(ConversationMessage.id)).all()
        went = dict(s.execute(  # the channel each reply last went out on (WhatsApp outside its window: SMS)
            select(DeliveryAttempt.notification_id, DeliveryAttempt.channel)
            .where(DeliveryAttempt.notification_id.in_([m.notification_id for m, _ in messages if m.notification_id]),
                   DeliveryAttempt.status != "skipped").order_by(DeliveryAttempt.id)).all())
        lines = [Line(m.created_at, m.direction, m.body or media_note(m.media),
                      (f"staff: {m.staff_name}" if m.staff_name else m.answered_by),
                      f"{status} by {went[m.notification_id]}" if status and went.get(m.notification_id, c.channel)
                      != c.channel else status, NOT_ANSWERED.get(m.error or ""))
                 for m, status in messages]
        actions = s.scalars(select(ConversationToolCall).where(
            ConversationToolCall.conversation_id == c.id, ConversationToolCall.tool.in_(WRITES))
            .order_by(ConversationToolCall.id)).all()
        lines += [Line(a.created_at, "action", action_note(a), a.by) for a in actions]
        lines.sort(key=lambda line: line.at)  # stable: an action sits after the message it answered
        return Exchange(row_of(s, c), c.language, lines)


NOT_ANSWERED = {"rate_limited": "not answered: too many messages this hour",
                "gave_up": "answering it kept failing: handed to staff"}


def media_note(media: dict[str, Any]) -> str:
    if media.get("location"):
        return "(a location)"
    return f"({len(media.get('items', []))} attachment(s))" if media.get("items") else ""


def action_note(call: ConversationToolCall) -> str:
    """`book_appointment: booked K7M4PX` — what a write tool did, from its stored result."""
    if not call.ok:
        problem = (call.result or {}).get("error", {})
        return f"{call.tool}: refused ({problem.get('code', 'error')})"
    result = call.result or {}
    appointment = result.get("appointment") or {}
    outcome = result.get("outcome") or result.get("status") or "done"
    detail = " ".join(str(x) for x in (appointment.get("code"), appointment.get("starts_at")) if x)
    return f"{call.tool}: {outcome}{' ' + detail if detail else ''}"


def staff_reply(service: BookingService, business_id: int, conversation_id: int, text: str,
                staff_name: str) -> Replied | Rejected:
    """Send a staff member's words to the customer on the conversation's channel. Replying takes the
    conversation over: the agent stays silent until it is handed back."""
    text = text.strip()
    if not text:
        return Rejected("empty", "Write a reply first.", "text")
    if len(text) > MAX_REPLY:
        return Rejected("too_long", f"Keep a reply under {MAX_REPLY} characters.", "text")
    now = service.now()
    with service.uow() as uow:
        s = uow.session
        c = s.get(Conversation, conversation_id, with_for_update=True)
        if c is None or c.business_id != business_id:
            return Rejected("not_found", "There is no such conversation here.")
        if c.status != "open":
            return Rejected("closed", "This conversation has ended; the customer's next message starts a new one.")
        if c.handoff_at is None:
            c.handoff_at, c.handoff_reason = now, "staff"
        message = add_reply(s, c, text, "staff", now, staff_name=staff_name[:200])
        c.last_message_at = now
        s.flush()
        uow.commit()
        return Replied(message.id)


def hand_back(service: BookingService, business_id: int, conversation_id: int) -> HandedBack | Rejected:
    """Let the agent answer the conversation again, from its menu (the next message is its to answer)."""
    with service.uow() as uow:
        c = uow.session.get(Conversation, conversation_id, with_for_update=True)
        if c is None or c.business_id != business_id:
            return Rejected("not_found", "There is no such conversation here.")
        c.handoff_at, c.handoff_reason, c.state = None, None, {}
        uow.commit()
        return HandedBack(c.id)
