"""A public MCP endpoint per business, /b/{slug}/mcp: what the booking page offers, for a customer's own
assistant, and like the page it needs no key.

Only the customer-facing tools (services, business information, free times, hold, book): finding, moving and
cancelling a booking would need the customer to prove the booking is theirs first, which this endpoint does
not do yet. Bookings go through the same core as the page's, so deposits and the no-show policy apply the
same; the source recorded is "public_mcp".

Budgets are the page's, per client address (`RateLimits.pages`): each request counts one, a hold or booking two
more, as a page POST costs three. An assistant's own idempotency key is scoped to the customer it books for
(their phone or email, else the address), so two strangers' assistants that both send "booking-1" never
receive each other's booking.
"""
from __future__ import annotations

import hashlib
import json
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from nextslot.core.service import BookingService
from nextslot.server.mcp_http import OriginCheck
from nextslot.server.outages import OutageMiddleware
from nextslot.server.page_context import business_by_slug
from nextslot.server.rate_limit import RateLimit
from nextslot.server.rpc_errors import rpc_error
from nextslot.settings import Settings
from nextslot.tools.mcp_server import build_server
from nextslot.tools.registry import ToolReply, error

PUBLIC_TOOLS = ("list_services", "get_business_info", "find_available_slots", "hold_slot", "book_appointment")
WRITES = frozenset({"hold_slot", "book_appointment"})
WRITE_EXTRA = 2
PATH = re.compile(r"^/b/([^/]+)/mcp/?$")
INNER = "/mcp"
CHANNEL = "public_mcp"


@dataclass(frozen=True)
class PublicCaller:
    business_id: int
    address: str
    budget: RateLimit


CALLER: ContextVar[PublicCaller | None] = ContextVar("public_mcp_caller", default=None)


def calling_business() -> int | None:
    caller = CALLER.get()
    return caller.business_id if caller else None


def before_call(tool: str, arguments: dict[str, Any]) -> dict[str, Any] | ToolReply:
    """Charge a write to the caller's budget and scope its idempotency key to the customer it is for."""
    caller = CALLER.get()
    if caller is None or tool not in WRITES:
        return arguments
    if (wait := caller.budget.take(caller.address, WRITE_EXTRA)) > 0:
        return error("rate_limited", f"Too many bookings and holds from this address; try again in {wait} seconds.")
    key = arguments.get("idempotency_key")
    if isinstance(key, str) and key:
        whose = arguments.get("phone") or arguments.get("email") or caller.address
        digest = hashlib.sha256(json.dumps([str(whose), key]).encode()).hexdigest()
        arguments = {**arguments, "idempotency_key": f"{CHANNEL}:{digest}"}
    return arguments


class PublicMcp:
    """The one MCP server behind every business's public endpoint; the business comes from the path."""

    def __init__(self, service: BookingService, settings: Settings):
        self.service = service
        self.server = build_server(service, calling_business, tools=PUBLIC_TOOLS, channel=CHANNEL,
                                   before_call=before_call)
        app = self.server.streamable_http_app(
            streamable_http_path=INNER, stateless_http=True, json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))  # OriginCheck does
        app.add_middleware(OutageMiddleware)
        app.add_middleware(OriginCheck, settings=settings)
        self.app = app

    async def handle(self, slug: str, scope: Scope, receive: Receive, send: Send) -> None:
        budget: RateLimit = scope["app"].state.rate_limits.pages
        address = scope["client"][0] if scope.get("client") else "unknown"
        if (wait := budget.take(address)) > 0:
            refusal = rpc_error(429, "rate_limited", f"Too many requests from this address; try again in {wait} "
                                "seconds.", headers={"Retry-After": str(wait)}, retry_after=wait)
            await refusal(scope, receive, send)
            return
        business = await anyio.to_thread.run_sync(business_by_slug, self.service, slug)
        if business is None:
            await rpc_error(404, "unknown_business", f"No business '{slug}'.")(scope, receive, send)
            return
        token = CALLER.set(PublicCaller(business.id, address, budget))
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
