"""The agent tools as an MCP server, generated from the registry.

Built on the SDK's low-level `Server` so each tool publishes exactly its pydantic input and output
schemas, and every call goes through `registry.execute` like every other channel: a lost race is a
normal structured result, a model's mistake an `is_error` result carrying a structured error.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio
import mcp_types as types
from mcp import MCPError
from mcp.server.lowlevel import Server

from nextslot.core.service import BookingService
from nextslot.settings import Settings
from nextslot.tools import briefing
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import SPECS, TOOLS, ToolReply, ToolSpec, error, execute

RESOURCE_NOT_FOUND = -32002  # the MCP spec's code for an unknown resource URI
INSTRUCTIONS = (
    "Booking tools for one business. Find openings with find_available_slots, offer two or three, then "
    "book_appointment with the chosen starts_at. Read each result's `say` to the person. A slot_taken outcome "
    "means someone else just took the time: offer its alternatives. The prompt 'receptionist' and the resources "
    "nextslot://business/... hold the business's hours, services and policies."
)

BusinessOf = Callable[[], int | None]  # which business is calling: fixed for stdio, from the bearer key over HTTP
MissingScope = Callable[[str], str | None]  # the permission the caller lacks for a tool (OAuth scopes over HTTP)
BeforeCall = Callable[[str, dict[str, Any]], "dict[str, Any] | ToolReply"]  # the arguments to run, or a refusal
Runner = Callable[[str, Mapping[str, Any], ToolContext], ToolReply]  # runs a call (in a worker thread)


def annotations(spec: ToolSpec) -> types.ToolAnnotations:
    e = spec.effects
    return types.ToolAnnotations(read_only_hint=e.read_only, destructive_hint=e.destructive,
                                 idempotent_hint=e.idempotent, open_world_hint=e.open_world)


def tool_list(specs: Iterable[ToolSpec] = SPECS) -> list[types.Tool]:
    return [
        types.Tool(name=spec.name, description=spec.description, input_schema=spec.input_schema(),
                   output_schema=spec.output_schema(), annotations=annotations(spec))
        for spec in specs
    ]


def call_result(reply: ToolReply) -> types.CallToolResult:
    content = [types.TextContent(type="text", text=reply.text())]
    if reply.ok:
        return types.CallToolResult(content=content, structured_content=reply.data)
    return types.CallToolResult(content=content, is_error=True)


def unauthorized() -> ToolReply:
    return ToolReply(False, {"error": {"code": "unauthorized", "message": "No business API key.", "field": None,
                                       "suggestions": []}})


def no_permission(what: str, scope: str) -> ToolReply:
    return ToolReply(False, {"error": {
        "code": "insufficient_scope", "field": None, "suggestions": [],
        "message": f"This connection may not use {what}: it needs the '{scope}' permission, which was not granted. "
                   "Ask the business to connect the app again and grant it."}})


def refused(reply: ToolReply) -> MCPError:
    """A resource or prompt that cannot be read is a JSON-RPC error (they have no is_error result)."""
    error = reply.data["error"]
    code = {"unauthorized": types.INVALID_REQUEST, "insufficient_scope": types.INVALID_REQUEST,
            "unknown_resource": RESOURCE_NOT_FOUND, "unknown_prompt": types.INVALID_PARAMS}.get(
        error["code"], types.INTERNAL_ERROR)
    return MCPError(code, error["message"], {"code": error["code"]})


def build_server(service: BookingService, business_of: BusinessOf,
                 missing_scope: MissingScope = lambda tool: None, tools: Iterable[ToolSpec] = SPECS,
                 channel: str = "mcp", before_call: BeforeCall | None = None, run: Runner = execute) -> Server[Any]:
    """The MCP server for the calling business: `tools` (the registry's by default), the business's profile,
    services and hours as resources, and the receptionist prompt. `tools/list` shows only the tools the caller
    may use (an OAuth token's scopes). `before_call` may refuse a call or change its arguments (the public
    endpoint's budgets); `run` runs it (the registry's `execute`, or the public endpoint's bound tools)."""
    specs = list(tools)
    offered = [spec.name for spec in specs]
    listed = tool_list(specs)
    # the SDK checks a call's Mcp-Param-* headers against the tool's input schema; without this lookup it runs the
    # whole tools/list handler and serializes every tool's schemas on each call (about 4 ms of a book's 11)
    input_schemas = {tool.name: tool.input_schema for tool in listed}

    def context() -> ToolContext | ToolReply:
        business_id = business_of()  # the HTTP layer refuses unauthenticated requests first; this is a backstop
        return unauthorized() if business_id is None else ToolContext(service, business_id, channel)

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool for tool in listed if not missing_scope(tool.name)])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool_ctx = context()
        if isinstance(tool_ctx, ToolReply):
            return call_result(tool_ctx)
        if params.name in TOOLS and params.name not in offered:
            return call_result(error("unknown_tool", f"There is no tool '{params.name}' here.", "name", offered))
        if params.name in TOOLS and (scope := missing_scope(params.name)):
            return call_result(no_permission(params.name, scope))
        arguments: dict[str, Any] | ToolReply = params.arguments or {}
        if before_call is not None and isinstance(arguments, dict):
            arguments = before_call(params.name, arguments)
            if isinstance(arguments, ToolReply):
                return call_result(arguments)
        reply = await anyio.to_thread.run_sync(run, params.name, arguments, tool_ctx)
        return call_result(reply)

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[
            types.Resource(uri=r.uri, name=r.name, description=r.description, mime_type=briefing.MIME)
            for r in briefing.RESOURCES])

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        resource, tool_ctx = briefing.BY_URI.get(str(params.uri)), context()
        if isinstance(tool_ctx, ToolReply):
            raise refused(tool_ctx)
        if resource is None:
            raise refused(error("unknown_resource", f"There is no resource '{params.uri}'. Resources: "
                                                    f"{', '.join(briefing.BY_URI)}."))
        if scope := missing_scope(resource.tool):
            raise refused(no_permission(resource.uri, scope))
        reply = await anyio.to_thread.run_sync(briefing.read, resource, tool_ctx)
        if not reply.ok:
            raise refused(reply)
        return types.ReadResourceResult(contents=[types.TextResourceContents(
            uri=resource.uri, mime_type=briefing.MIME, text=briefing.as_text(reply.data))])

    async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[types.Prompt(
            name=briefing.PROMPT, title="Receptionist",
            description="Instructions for answering as this business's receptionist: its hours, services, policies "
                        "and how to use the booking tools. Use it as the system prompt.")])

    async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        tool_ctx = context()
        if isinstance(tool_ctx, ToolReply):
            raise refused(tool_ctx)
        if params.name != briefing.PROMPT:
            raise refused(error("unknown_prompt", f"There is no prompt '{params.name}'; there is "
                                                  f"'{briefing.PROMPT}'."))
        usable = [name for name in offered if not missing_scope(name)]
        written = await anyio.to_thread.run_sync(briefing.receptionist, tool_ctx, usable)
        if isinstance(written, ToolReply):
            raise refused(written)
        description, text = written
        return types.GetPromptResult(description=description, messages=[
            types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))])

    return Server("nextslot", version="0.1.0", instructions=INSTRUCTIONS, get_tool_input_schema=input_schemas.get,
                  on_list_tools=list_tools,
                  on_call_tool=call_tool, on_list_resources=list_resources, on_read_resource=read_resource,
                  on_list_prompts=list_prompts, on_get_prompt=get_prompt)


def stdio_business(service: BookingService, api_key: str | None, slug: str | None) -> int | str:
    """The business a stdio server acts for, or the reason it cannot start."""
    from nextslot.core.accounts.api_keys import business_for_key

    if api_key:
        business_id = business_for_key(service.uow(), api_key)
        return business_id if business_id is not None else "that API key is unknown or revoked"
    if slug:
        business = service.business_by_slug(slug)
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
