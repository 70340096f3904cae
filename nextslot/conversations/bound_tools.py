"""The registry's tools bound to the person writing: in an SMS or WhatsApp conversation the phone number is the
customer's identity, so lookups, moves, cancels and confirmations reach only that number's own bookings at this
business, and bookings are made for that number. A web chat has proved nothing until it gives the one-time code
sent to a booking's phone or email: until then it may browse and book (with the phone it gave, like the booking
page), and every lookup or change answers `verify_first`; after, it is bound to the contact it proved. Enforced
here, on the arguments and the database, never in a prompt: whatever a message talks the model into, a call
about someone else's booking finds nothing."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select

from nextslot.core.booking.codes import normalize_code
from nextslot.storage.tables import Booking, ConversationToolCall, Customer
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import TOOLS, ToolReply, error, execute

LOOKUPS = ("find_appointments", "customer_history")  # the proved contact's own, whatever the arguments say
WRITES = ("book_appointment", "book_series", "join_waitlist")  # made for the sender's contact
BY_CODE = {"reschedule_appointment", "cancel_appointment", "confirm_appointment"}


@dataclass(frozen=True)
class Sender:
    """Who the tools act for: a contact the conversation has proved (an SMS or WhatsApp number proves itself),
    and on the web the phone it only said (good for booking, never for looking up)."""

    phone: str | None = None  # proved
    email: str | None = None  # proved
    stated_phone: str | None = None
    conversation_id: int | None = None  # the chat: a hold it made itself is the only one it may book with

    @property
    def proved(self) -> bool:
        return bool(self.phone or self.email)


def execute_as_sender(name: str, arguments: Mapping[str, Any] | str | None, ctx: ToolContext) -> ToolReply:
    """Run a tool for the conversation's sender (`ctx.caller_phone`, E.164) and no one else."""
    if not ctx.caller_phone:
        raise ValueError("a conversation's tool context needs the sender's phone")
    return execute_bound(name, arguments, ctx, Sender(phone=ctx.caller_phone))


def execute_bound(name: str, arguments: Mapping[str, Any] | str | None, ctx: ToolContext,
                  sender: Sender) -> ToolReply:
    """Run a tool for `sender` and no one else; a booking of the contact it proved is answered as hers."""
    ctx = ctx.proving(sender.phone, sender.email)
    args: Any = arguments
    if isinstance(arguments, str):
        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return execute(name, arguments, ctx)  # the registry explains the bad JSON
    if not isinstance(args, Mapping):
        return execute(name, args, ctx)
    args = dict(args)
    spec = TOOLS.get(name)
    if ctx.language and spec is not None and "language" in spec.input_model.model_fields and not args.get("language"):
        args["language"] = ctx.language  # the tool's sentences in the conversation's language
    if name in LOOKUPS or name in BY_CODE:
        if not sender.proved:
            return error("verify_first", "This chat has not confirmed a phone number or email yet. Ask the "
                                         "customer to use \"It's my booking\" below the chat to get a one-time "
                                         "code; only then can their bookings be found or changed.")
    if name in LOOKUPS:
        args["phone"], args["email"] = sender.phone, sender.email  # another contact is someone else
    if name in WRITES:
        args["phone"], args["email"] = sender.phone or sender.stated_phone, sender.email
    if name in WRITES and args.get("hold_id") is not None and not held_here(ctx, sender, args["hold_id"]):
        return error("unknown_hold", f"No hold {args['hold_id']} was made in this conversation. Book the time "
                                     "itself, or hold it first with hold_slot.", "hold_id")
    if name in BY_CODE and isinstance(args.get("code"), str) and not owns(ctx, sender, args["code"]):
        return error("unknown_booking", f"No booking with code {args['code']} for the person writing to us. "
                                        "Use find_appointments to list this customer's own bookings.", "code")
    return execute(name, args, ctx)


def held_here(ctx: ToolContext, sender: Sender, hold_id: Any) -> bool:
    """Whether this conversation made the hold (its hold_slot answered with the id): hold ids count up, so a
    message could name another caller's, and book the time they are holding while they give their details."""
    if sender.conversation_id is None or not isinstance(hold_id, int) or isinstance(hold_id, bool):
        return False
    with ctx.service.uow() as uow:
        return uow.session.scalar(select(ConversationToolCall.id).where(
            ConversationToolCall.conversation_id == sender.conversation_id, ConversationToolCall.tool == "hold_slot",
            ConversationToolCall.ok, ConversationToolCall.result["hold_id"].as_integer() == hold_id).limit(1)) is not None


def owns(ctx: ToolContext, sender: Sender, code: str) -> bool:
    """Whether the booking with this code, at this business, belongs to the sender's proved contact."""
    mine = []
    if sender.phone:
        mine.append(Customer.phone == sender.phone)
    if sender.email:
        mine.append(func.lower(Customer.email) == sender.email.lower())
    if not mine:
        return False
    with ctx.service.uow() as uow:
        return uow.session.scalar(
            select(Booking.id).join(Customer, Customer.id == Booking.customer_id)
            .where(Booking.business_id == ctx.business_id, Booking.code == normalize_code(code), or_(*mine))
        ) is not None
