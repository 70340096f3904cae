"""The registry's tools bound to the person writing: in a conversation the phone number is the customer's
identity, so lookups, moves, cancels and confirmations reach only that number's own bookings at this business,
and bookings are made for that number. Enforced here, on the arguments and the database, never in a prompt:
whatever a message talks the model into, a call about someone else's booking finds nothing."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from nextslot.core.booking.codes import normalize_code
from nextslot.storage.tables import Booking, Customer
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import ToolReply, error, execute

OWN_CONTACT = ("find_appointments", "customer_history", "book_appointment", "join_waitlist")  # phone = the sender's
BY_CODE = {"reschedule_appointment", "cancel_appointment", "confirm_appointment"}


def execute_as_sender(name: str, arguments: Mapping[str, Any] | str | None, ctx: ToolContext) -> ToolReply:
    """Run a tool for the conversation's sender (`ctx.caller_phone`, E.164) and no one else."""
    if not ctx.caller_phone:
        raise ValueError("a conversation's tool context needs the sender's phone")
    args: Any = arguments
    if isinstance(arguments, str):
        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return execute(name, arguments, ctx)  # the registry explains the bad JSON
    if not isinstance(args, Mapping):
        return execute(name, args, ctx)
    args = dict(args)
    if name in OWN_CONTACT:
        args["phone"], args["email"] = ctx.caller_phone, None  # another number or an email is someone else
    if name in BY_CODE and isinstance(args.get("code"), str) and not owns(ctx, args["code"]):
        return error("unknown_booking", f"No booking with code {args['code']} for the number writing to us. "
                                        "Use find_appointments to list this customer's own bookings.", "code")
    return execute(name, args, ctx)


def owns(ctx: ToolContext, code: str) -> bool:
    """Whether the booking with this code, at this business, belongs to the sender's number."""
    with ctx.service.uow() as uow:
        return uow.session.scalar(
            select(Booking.id).join(Customer, Customer.id == Booking.customer_id)
            .where(Booking.business_id == ctx.business_id, Booking.code == normalize_code(code),
                   Customer.phone == ctx.caller_phone)) is not None
