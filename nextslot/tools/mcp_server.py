"""The agent tools as an MCP server, generated from the registry.

Built on the SDK's low-level `Server` so each tool publishes exactly its pydantic input and output
schemas, and every call goes through `registry.execute` like every other channel: a lost race is a
normal structured result, a model's mistake an `is_error` result carrying a structured error.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server

from nextslot.core.service import BookingService
from nextslot.settings import Settings
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import TOOLS, ToolReply, execute

DESTRUCTIVE = {"cancel_appointment"}
INSTRUCTIONS = (
    "Booking tools for one business. Find openings with find_available_slots, offer two or three, then "
    "book_appointment with the chosen starts_at. Read each result's `say` to the person. A slot_taken outcome "
    "means someone else just took the time: offer its alternatives."
)

BusinessOf = Callable[[], int | None]  # which business is calling: fixed for stdio, from the bearer key over HTTP
MissingScope = Callable[[str], str | None]  # the permission the caller lacks for a tool (OAuth scopes over HTTP)


def tool_list() -> list[types.Tool]:
    return [
        types.Tool(
            name=spec.name,
            description=spec.description,
            input_schema=spec.input_schema(),
            output_schema=spec.output_schema(),
            annotations=types.ToolAnnotations(
                read_only_hint=spec.read_only, destructive_hint=spec.name in DESTRUCTIVE,
                idempotent_hint=spec.read_only, open_world_hint=False,
            ),
        )
        for spec in TOOLS.values()
    ]


def call_result(reply: ToolReply) -> types.CallToolResult:
    content = [types.TextContent(type="text", text=reply.text())]
    if reply.ok:
        return types.CallToolResult(content=content, structured_content=reply.data)
    return types.CallToolResult(content=content, is_error=True)


def build_server(service: BookingService, business_of: BusinessOf,
                 missing_scope: MissingScope = lambda tool: None) -> Server[Any]:
    listed = types.ListToolsResult(tools=tool_list())

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return listed

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        business_id = business_of()
        if business_id is None:  # the HTTP layer refuses unauthenticated requests first; this is a backstop
            return call_result(ToolReply(False, {"error": {"code": "unauthorized", "message": "No business API key.",
                                                           "field": None, "suggestions": []}}))
        if params.name in TOOLS and (scope := missing_scope(params.name)):
            return call_result(ToolReply(False, {"error": {
                "code": "insufficient_scope", "field": None, "suggestions": [],
                "message": f"This connection may not use {params.name}: it needs the '{scope}' permission, "
                           "which was not granted. Ask the business to connect the app again and grant it."}}))
        tool_ctx = ToolContext(service, business_id, "mcp")
        reply = await anyio.to_thread.run_sync(execute, params.name, params.arguments or {}, tool_ctx)
        return call_result(reply)

    return Server("nextslot", version="0.1.0", instructions=INSTRUCTIONS, on_list_tools=list_tools,
                  on_call_tool=call_tool)


def stdio_business(service: BookingService, api_key: str | None, slug: str | None) -> int | str:
    """The business a stdio server acts for, or the reason it cannot start."""
    from nextslot.core.accounts.api_keys import business_for_key
    from nextslot.storage import queries

    if api_key:
        business_id = business_for_key(service.uow(), api_key)
        return business_id if business_id is not None else "that API key is unknown or revoked"
    if slug:
        with service.uow() as uow:
            business = queries.business_by_slug(uow.session, slug)
            return business.id if business else f"there is no business '{slug}'"
    return "give --api-key (or set NEXTSLOT_API_KEY) or --business SLUG"


def run_stdio(settings: Settings, api_key: str | None = None, business: str | None = None) -> int:
    """Serve the tools over stdio for one business until the client closes the pipe."""
    from mcp.server.stdio import stdio_server

    from nextslot.runtime import build_service

    service = build_service(settings)
    found = stdio_business(service, api_key, business)
    if isinstance(found, str):
        print(f"nextslot mcp: {found}", file=sys.stderr)
        return 2
    server = build_server(service, lambda: found)

    async def serve() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(serve)
    return 0
