"""A cap on request bodies for the whole app (pages, console, /v1, /mcp, webhooks): 413 past the limit.

Counted as the body streams in, so a missing or lying Content-Length changes nothing: reading stops at the
first chunk past the limit, and the answer is our 413 whatever the app underneath made of the cut-off read.
"""
from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nextslot.server.rpc_errors import speaks_json_rpc


class BodyTooLarge(Exception):
    """Raised into the app's read of the body; the middleware answers 413 in its place."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self.too_large(scope, send)  # refused before a byte of it is read
            return
        seen, over, started = 0, False, False

        async def counted() -> Message:
            nonlocal seen, over
            if over:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over:
                return  # whatever the app answers to a read cut short, the client gets our 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self.too_large(scope, send)

    async def too_large(self, scope: Scope, send: Send) -> None:
        message = f"The request body is larger than this server accepts ({self.max_bytes} bytes)."
        if speaks_json_rpc(scope["path"]):  # MCP clients read JSON-RPC errors, and little else
            body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message,
                                                            "data": {"code": "body_too_large"}}}
        else:
            body = {"error": {"code": "body_too_large", "message": message, "field": "body", "problems": [],
                              "suggestions": []}}
        payload = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})
