"""The booking page's chat (channel `web`): the same conversations, engine and tools as SMS and WhatsApp, for a
visitor told apart by a random cookie (stored only as its hash, `visitor_key`). Its messages are answered by the
scheduler processes like any other (the panel polls for the answer); its replies are read from the conversation,
not sent anywhere.

A web chat proves nothing by itself: it gives a name and phone to book with (as the booking page asks), and to
find, move or cancel a booking it must prove that booking's phone or email with a one-time code sent there
through the outbox. Only then are the tools bound to that contact (bound_tools.Sender); until then they answer
`verify_first`. A code lasts ten minutes and allows five tries; a chat may ask for three codes, and a
contact gets three an hour whichever chats (or public assistants) ask."""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from nextslot.conversations.words import guess_language, say
from nextslot.core.customers.contacts import normalize_phone
from nextslot.core.customers.proofs import issue_code, normalized_contact
from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.reminders.jobs import CONVERSATION_REPLY  # a code goes out as a conversation's message does
from nextslot.schemas.inputs import CONTROL
from nextslot.storage import wakeups
from nextslot.storage.tables import Business, Conversation, ConversationMessage, Customer, Notification

CODE_MINUTES, CODE_TRIES, CODES_PER_CHAT = 10, 5, 3
MAX_TEXT = 2000


@dataclass(frozen=True)
class Said:
    direction: str  # in, out
    text: str
    by: str | None  # out: model, guided, notice, handoff, staff


@dataclass(frozen=True)
class ChatView:
    name: str
    phone: str
    proved: str | None  # the contact it proved, if any
    code_pending: bool
    waiting: bool  # a message of the visitor's is not answered yet
    handed_off: bool
    messages: list[Said]


@dataclass(frozen=True)
class Received:
    conversation_id: int


@dataclass(frozen=True)
class CodeSent:
    """Said whether or not the contact is a booking's: a stranger learns nothing about who books here."""


@dataclass(frozen=True)
class Proved:
    contact: str


def visitor_key(token: str) -> str:
    return hashlib.sha256(f"chat:{token}".encode()).hexdigest()


def form_ticket(token: str) -> str:
    """What a chat form carries besides the cookie: another site can make a browser send the cookie, not read
    this (the embed needs a SameSite=None cookie)."""
    return hashlib.sha256(f"form:{token}".encode()).hexdigest()[:32]


def current(s: Session, business_id: int, key: str, now: datetime, idle: timedelta,
            lock: bool = False) -> Conversation | None:
    """The visitor's open chat, unless it has been quiet past the idle time (and no person has it)."""
    query = select(Conversation).where(Conversation.business_id == business_id, Conversation.channel == "web",
                                       Conversation.visitor_key == key, Conversation.status == "open")
    c = s.scalars(query.with_for_update() if lock else query).one_or_none()
    if c is not None and c.handoff_at is None and c.last_message_at <= now - idle:
        if not lock:
            return None
        c.status, c.closed_at = "closed", now
        s.flush()
        return None
    return c


def receive_web(service: BookingService, business_id: int, key: str, body: str, name: str, phone: str,
                idle: timedelta) -> Received | Rejected:
    """Store a visitor's message to be answered; the first one of a chat needs a name and a phone."""
    body = body.strip()[:MAX_TEXT]
    if not body:
        return Rejected("empty", "Write a message first.", "text")
    for field, value in (("text", body), ("customer.name", name)):
        if CONTROL.search(value):  # a NUL, an escape: nothing a person types, and PostgreSQL stores no NUL
            return Rejected("invalid_text", "This holds a control character; write it without.", field)
    now = service.now()
    with service.uow() as uow:
        s = uow.session
        c = current(s, business_id, key, now, idle, lock=True)
        if c is None:
            region = s.scalar(select(Business.country).where(Business.id == business_id)) or "US"
            if not name.strip():
                return Rejected("name_required", "Tell us your name to start a chat.", "customer.name")
            stated = normalize_phone(phone, region) if phone.strip() else Rejected(
                "phone_required", "Give a phone number to start a chat (bookings are made for it).", "customer.phone")
            if isinstance(stated, Rejected):
                return stated
            s.execute(insert(Conversation).values(
                business_id=business_id, channel="web", phone="", visitor_key=key,
                identity={"name": " ".join(name.split())[:200], "phone": stated},
                language=guess_language(body), status="open", mode="model", state={}, model_calls=0,
                last_message_at=now,
            ).on_conflict_do_nothing(index_elements=["business_id", "visitor_key"],
                                     index_where=text("status = 'open' and channel = 'web'")))
            c = current(s, business_id, key, now, idle, lock=True)
            assert c is not None
        s.add(ConversationMessage(business_id=business_id, conversation_id=c.id, direction="in", body=body,
                                  media={}, created_at=now))
        c.last_message_at = now
        wakeups.notify(s, wakeups.CONVERSATIONS)  # answered now, not at the next poll
        uow.commit()
        return Received(c.id)


def chat_view(service: BookingService, business_id: int, key: str, idle: timedelta) -> ChatView | None:
    with service.uow() as uow:
        s = uow.session
        c = current(s, business_id, key, service.now(), idle)
        if c is None:
            return None
        rows = s.execute(select(ConversationMessage.direction, ConversationMessage.body,
                                ConversationMessage.answered_by, ConversationMessage.processed_at)
                         .where(ConversationMessage.conversation_id == c.id).order_by(ConversationMessage.id)).all()
        identity = c.identity or {}
        return ChatView(identity.get("name", ""), identity.get("phone", ""),
                        identity.get("proved_phone") or identity.get("proved_email"),
                        bool(identity.get("pending")), any(r.direction == "in" and r.processed_at is None
                                                           for r in rows),
                        c.handoff_at is not None, [Said(r.direction, r.body, r.answered_by) for r in rows])


def send_code(service: BookingService, business_id: int, key: str, contact: str,
              idle: timedelta) -> CodeSent | Rejected:
    """Send a one-time code to a booking's phone (SMS) or email, if the contact is one of this business's
    customers; answer alike either way."""
    now = service.now()
    with service.uow() as uow:
        s = uow.session
        c = current(s, business_id, key, now, idle, lock=True)
        if c is None:
            return Rejected("no_chat", "Start a chat first.")
        business = s.get(Business, business_id)
        address = normalized_contact(contact, business.country)
        if isinstance(address, Rejected):
            return address
        identity = dict(c.identity or {})
        if identity.get("codes_sent", 0) >= CODES_PER_CHAT:
            return Rejected("too_many_codes", "No more codes for this chat; please call us instead.", "contact")
        customer = s.scalar(select(Customer.id).where(
            Customer.business_id == business_id,
            or_(Customer.phone == address, func.lower(Customer.email) == address)).limit(1))
        # a new chat is only a new cookie: the contact's own limit, shared with the public endpoint, holds across them
        issued = issue_code(uow, business_id, address, customer is not None, now)
        if isinstance(issued, Rejected):
            return issued
        _, code = issued
        identity["codes_sent"] = identity.get("codes_sent", 0) + 1
        identity["pending"] = {"contact": address, "hash": code_hash(c.id, code), "tries": 0,
                               "expires_at": (now + timedelta(minutes=CODE_MINUTES)).isoformat(),
                               "known": customer is not None}
        c.identity = identity
        if customer is not None:
            s.add(Notification(business_id=business_id, customer_id=customer, kind=CONVERSATION_REPLY, due_at=now,
                               status="pending", attempts=0, payload={
                                   "text": say(c.language, "code", business=business.name, code=code),
                                   "channel": "email" if "@" in address else "sms", "to": address,
                                   "subject": business.name}))
        uow.commit()
        return CodeSent()


def check_code(service: BookingService, business_id: int, key: str, code: str, idle: timedelta,
               new_key: str) -> Proved | Rejected:
    """Bind the chat to the contact the code was sent to, if it is the code; five tries, ten minutes. A proved
    chat is the visitor's under `new_key` (a new cookie): whoever held the old one (a shared computer's last
    user, or one who planted it) gets nothing of the proof."""
    now = service.now()
    with service.uow() as uow:
        s = uow.session
        c = current(s, business_id, key, now, idle, lock=True)
        identity = dict(c.identity or {}) if c is not None else {}
        pending = identity.get("pending")
        if c is None or not pending:
            return Rejected("no_code", "Ask for a code first.", "code")
        if datetime.fromisoformat(pending["expires_at"]) <= now or pending["tries"] >= CODE_TRIES:
            identity.pop("pending")
            c.identity = identity
            uow.commit()
            return Rejected("code_expired", "That code has expired or was tried too often; ask for a new one.",
                            "code")
        right = pending["known"] and hmac.compare_digest(pending["hash"], code_hash(c.id, code.strip()))
        if not right:
            identity["pending"] = {**pending, "tries": pending["tries"] + 1}
            c.identity = identity
            uow.commit()
            left = CODE_TRIES - pending["tries"] - 1
            return Rejected("wrong_code", f"That is not the code we sent. {left} tries left.", "code")
        contact = pending["contact"]
        identity.pop("pending")
        identity["proved_email" if "@" in contact else "proved_phone"] = contact
        c.identity, c.visitor_key = identity, new_key
        uow.commit()
        return Proved(contact)


def code_hash(conversation_id: int, code: str) -> str:
    return hashlib.sha256(f"{conversation_id}:{code}".encode()).hexdigest()
