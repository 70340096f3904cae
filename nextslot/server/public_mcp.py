"""A public MCP endpoint per business, /b/{slug}/mcp: what the booking page offers, for a customer's own
assistant, and like the page it needs no key.

The customer-facing tools (services, business information, free times, book), and for a booking the customer
already has, find, move and cancel once they prove its phone or email: `request_code` sends a one-time code
there through the outbox, `verify_code` turns the code into a proof (30 minutes), and the three tools take that
proof and are bound to its contact (`conversations.bound_tools`, as an SMS conversation is to its number): no
argument reaches another customer's booking. Bookings go through the same core as the page's, so deposits and
the no-show policy apply the same; the source recorded is "public_mcp".

Budgets are the page's, per client address (`RateLimits.pages`): each request counts one, a write two more, as
a page POST costs three; and the bookings an address makes in a day are the page's and this endpoint's together
(`server/public_writes.py`). Codes have their own: per address (`RateLimits.codes`, `.code_checks`), per contact
(three an hour, in the database, whoever asks) and per code (five tries). An assistant's own idempotency key is
scoped to the customer it acts for (the proved contact, else the phone or email it books with, else the
address), so two strangers' assistants that both send "booking-1" never receive each other's booking.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from nextslot.conversations.bound_tools import Sender, execute_bound
from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.server.mcp_http import guard
from nextslot.server.page_context import business_by_slug
from nextslot.server.public_writes import PublicSender
from nextslot.server.rate_limit import RateLimits, network_of
from nextslot.server.rpc_errors import PUBLIC_MCP, rpc_error
from nextslot.settings import Settings
from nextslot.tools.contact_proof import PROOF_SPECS, PROVED_TOOLS
from nextslot.tools.context import ToolContext
from nextslot.tools.mcp_server import build_server
from nextslot.tools.registry import TOOLS, ToolReply, error, execute, execute_spec

# no holds: the page books at once, and an anonymous hold is a time anyone could keep from everyone (about a
# hundred held for ever from one address) or, its id counting up, book with for themselves
OPEN_TOOLS = ("list_services", "get_business_info", "find_available_slots", "book_appointment")
SPECS = (*(TOOLS[name] for name in OPEN_TOOLS), *PROOF_SPECS, *PROVED_TOOLS)
PUBLIC_TOOLS = tuple(spec.name for spec in SPECS)
OWN = {spec.name: spec for spec in PROOF_SPECS}
PROVED = frozenset(spec.name for spec in PROVED_TOOLS)
WRITES = frozenset({"book_appointment", "reschedule_appointment", "cancel_appointment", "request_code", "verify_code"})
WRITE_EXTRA = 2
PATH = PUBLIC_MCP
INNER = "/mcp"
CHANNEL = "public_mcp"


@dataclass(frozen=True)
class PublicCaller:
    business_id: int
    address: str
    limits: RateLimits


CALLER: ContextVar[PublicCaller | None] = ContextVar("public_mcp_caller", default=None)


def calling_business() -> int | None:
    caller = CALLER.get()
    return caller.business_id if caller else None


def before_call(tool: str, arguments: dict[str, Any]) -> dict[str, Any] | ToolReply:
    """Charge a write to the caller's budget, and a code asked for or tried to the address's code budgets."""
    caller = CALLER.get()
    if caller is None or tool not in WRITES:
        return arguments
    if (wait := caller.limits.pages.take(caller.address, WRITE_EXTRA)) > 0:
        return error("rate_limited", f"Too many changes from this address; try again in {wait} seconds.")
    codes = {"request_code": caller.limits.codes, "verify_code": caller.limits.code_checks}.get(tool)
    if codes is not None and (wait := codes.take(caller.address)) > 0:
        return error("rate_limited", f"Too many codes {'asked for' if tool == 'request_code' else 'tried'} from "
                                     f"this address; try again in {wait // 60 + 1} minutes.")
    return arguments


def scoped_key(arguments: dict[str, Any], whose: str) -> dict[str, Any]:
    key = arguments.get("idempotency_key")
    if isinstance(key, str) and key:
        digest = hashlib.sha256(json.dumps([whose, key]).encode()).hexdigest()
        return {**arguments, "idempotency_key": f"{CHANNEL}:{digest}"}
    return arguments


def run_public(name: str, arguments: Mapping[str, Any], ctx: ToolContext) -> ToolReply:
    """Run a public call: the code tools, a proved tool bound to its proof's contact, or an open tool."""
    args = dict(arguments)
    caller = CALLER.get()
    if name in OWN:
        return execute_spec(OWN[name], args, ctx)
    if name in PROVED:
        proof = args.pop("proof", None)
        if not isinstance(proof, str) or not proof.strip():
            return error("proof_required", "This needs the customer's `proof`: call request_code with the phone or "
                                           "email they booked with, then verify_code with the code they receive.",
                         "proof")
        contact = ctx.service.proven_contact(ctx.business_id, proof)
        if isinstance(contact, Rejected):
            return error(contact.code, contact.message, contact.field)
        sender = Sender(email=contact) if "@" in contact else Sender(phone=contact)
        return execute_bound(name, scoped_key(args, contact), ctx, sender)
    if args.get("hold_id") is not None:  # another channel's hold, by a guessed id: never this caller's
        return error("hold_not_offered", "Holds are not offered here: book the time itself.", "hold_id")
    whose = args.get("phone") or args.get("email") or (caller.address if caller else "")
    args = scoped_key(args, str(whose))
    if caller is None:
        return execute(name, args, ctx)
    # within this address's bookings today (a retry of one of them gets its first answer)
    sender = PublicSender.at_address(ctx.service, ctx.business_id, caller.address)
    return sender.run(name, args, ctx.idempotency_key, lambda: execute(name, args, ctx))


class PublicMcp:
    """The one MCP server behind every business's public endpoint; the business comes from the path."""

    def __init__(self, service: BookingService, settings: Settings):
        self.service = service
        self.server = build_server(service, calling_business, tools=SPECS, channel=CHANNEL,
                                   before_call=before_call, run=run_public)
        app = self.server.streamable_http_app(
            streamable_http_path=INNER, stateless_http=True, json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))  # OriginCheck does
        guard(app, settings, INNER)
        self.app = app

    async def handle(self, slug: str, scope: Scope, receive: Receive, send: Send) -> None:
        limits: RateLimits = scope["app"].state.rate_limits
        address = network_of(scope["client"][0] if scope.get("client") else "unknown")
        if (wait := limits.pages.take(address)) > 0:
            refusal = rpc_error(429, "rate_limited", f"Too many requests from this address; try again in {wait} "
                                "seconds.", headers={"Retry-After": str(wait)}, retry_after=wait)
            await refusal(scope, receive, send)
            return
        business = await anyio.to_thread.run_sync(business_by_slug, self.service, slug)
        if business is None:
            await rpc_error(404, "unknown_business", f"No business '{slug}'.")(scope, receive, send)
            return
        token = CALLER.set(PublicCaller(business.id, address, limits))
        try:
            await self.app({**scope, "path": INNER, "raw_path": INNER.encode()}, receive, send)
        finally:
            CALLER.reset(token)


class PublicMcpRoute:
    """Answers /b/{slug}/mcp before the booking page's routes (which would read "mcp" as a service)."""

    def __init__(self, app: ASGIApp, public: PublicMcp):
        self.app, self.public = app, public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (match := PATH.match(scope["path"])):
            await self.public.handle(match[1], scope, receive, send)
            return
        await self.app(scope, receive, send)
