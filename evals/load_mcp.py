"""The load test's AI agents: the MCP SDK's own client over streamable HTTP, one session per agent's call.

The SDK's client runs in a task group that a failed connection tears down, so each session lives in a task of
its own: a call whose server vanished fails with Retry, and the next call opens a session on the next server.
"""
from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from evals.load_channels import RETRYABLE_STATUS, Balancer, Retry, Unclear
from evals.load_plan import Offer, Wish

RETRYABLE_TOOL_ERRORS = {"temporarily_unavailable", "rate_limited"}  # both say when to try again


class McpConversation:
    """An agent's call: one MCP session (initialize, then tool calls), opened on the next server."""

    def __init__(self, http: httpx2.AsyncClient, balancer: Balancer):
        self._http, self._balancer = http, balancer
        self._requests: asyncio.Queue[tuple[str, dict[str, Any], asyncio.Future[Any]]] = asyncio.Queue()
        self._session: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Future[Any] | None = None

    async def __aenter__(self) -> McpConversation:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            self._session.cancel()
            await asyncio.gather(self._session, return_exceptions=True)

    async def find(self, offer: Offer, day: date) -> list[str]:
        try:
            found = tool_answer(await self._call("find_available_slots", {
                "service": offer.service, "date": day.isoformat(), "limit": 20}))
        except ToolRefusal:
            return []
        return [s["starts_at"] for s in found["slots"]]

    async def book(self, wish: Wish) -> tuple[str, str]:
        args = {"service": wish.offer.service, "starts_at": wish.starts_at, "customer_name": wish.name,
                "phone": wish.phone, "email": wish.email, "idempotency_key": wish.key,
                "answers": [{"question": q, "answer": a} for q, a in wish.offer.answers] or None}
        try:
            answer = tool_answer(await self._call("book_appointment", args))
        except ToolRefusal as refusal:
            return "rejected", refusal.code
        return answer["outcome"], (answer.get("appointment") or {}).get("code", "")

    async def _call(self, name: str, args: dict[str, Any]) -> Any:
        if self._session is None or self._session.done():
            self._session = asyncio.create_task(self._serve(self._balancer.pick()))
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._requests.put((name, args, reply))
        return await reply

    async def _serve(self, base: str) -> None:
        try:
            async with Client(streamable_http_client(f"{base}/mcp", http_client=self._http)) as client:
                while True:
                    name, args, self._in_flight = await self._requests.get()
                    try:
                        self._in_flight.set_result(await client.call_tool(name, args))
                    except MCPError as error:  # a JSON-RPC error answer: the session itself is fine
                        self._in_flight.set_exception(rpc_failure(error))
        except Exception as crash:  # noqa: BLE001 - whatever ended the session, the waiting call hears of it
            self._balancer.failed(base)
            failure = session_failure(crash)
            pending = [self._in_flight] + [self._requests.get_nowait()[2] for _ in range(self._requests.qsize())]
            for reply in pending:
                if reply is not None and not reply.done():
                    reply.set_exception(failure)


def session_failure(crash: BaseException) -> Exception:
    """What a torn-down session means for the call: the first real error inside the SDK's exception groups."""
    while isinstance(crash, BaseExceptionGroup):
        crash = crash.exceptions[0]
    if isinstance(crash, MCPError):  # the session's own start (initialize) was answered with an error
        return rpc_failure(crash)
    if isinstance(crash, httpx2.HTTPStatusError):
        status = crash.response.status_code
        return Retry(str(status)) if status in RETRYABLE_STATUS else Unclear(f"HTTP {status}")
    if isinstance(crash, httpx2.TransportError):
        return Retry(type(crash).__name__)
    return Unclear(f"{type(crash).__name__}: {crash}"[:120])


def rpc_failure(error: MCPError) -> Exception:
    """A JSON-RPC error: retryable when its data says so (a 503 from the server), else unclear (the SDK's client
    also reads any bare HTTP error status as -32603 "Server returned an error response")."""
    data = error.data if isinstance(error.data, dict) else {}
    if data.get("code") in RETRYABLE_TOOL_ERRORS:
        return Retry(data["code"], after=float(data.get("retry_after", 1)))
    return Unclear(f"JSON-RPC error {error.code}: {error.message[:60]}")


class ToolRefusal(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def tool_answer(result: Any) -> dict[str, Any]:
    """A tool's structured result; a tool error becomes Retry (if it says so), else ToolRefusal or Unclear."""
    if not result.is_error:
        return result.structured_content
    text = result.content[0].text if result.content else ""
    try:
        code = json.loads(text)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        raise Unclear(f"tool error: {text[:80]}") from None
    if code in RETRYABLE_TOOL_ERRORS:
        raise Retry(code, after=1.0)
    raise ToolRefusal(code)
