"""Refusals on /mcp in JSON-RPC's shape: the SDK's client hands such a body to the caller as is, but turns any
other error answer into a bare "Server returned an error response".

`TransportRefusals` puts the MCP SDK's own refusals of a request as sent (a body that is not one JSON-RPC message,
a wrong Content-Type or Accept, a method it does not serve) into the same shape, in our words: its own would pass
on pydantic's validation report (model names, the input echoed, errors.pydantic.dev links) or a bare text line.
"""
from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PUBLIC_MCP = re.compile(r"^/b/([^/]+)/mcp/?$")  # a customer's own assistant (public_mcp.py)
SERVER_ERROR = -32000  # JSON-RPC's range for implementation-defined server errors; ours say which in data.code
PARSE_ERROR, INVALID_REQUEST = -32700, -32600  # JSON-RPC's own: not JSON; JSON but not a request
ONE_MESSAGE = ('Invalid Request: the body must be one JSON-RPC request object, such as {"jsonrpc": "2.0", "id": 1, '
               '"method": "tools/list"} (or one notification); batches are not accepted.')
# status of the SDK's refusal -> what we answer: (JSON-RPC code, data.code, message)
REFUSALS: dict[int, tuple[int, str, str]] = {
    400: (INVALID_REQUEST, "invalid_request", ONE_MESSAGE),
    404: (INVALID_REQUEST, "session_not_found", "Not Found: no such session (it has ended, or this server keeps "
                                                "none); send the request again without Mcp-Session-Id."),
    405: (INVALID_REQUEST, "method_not_allowed", "Method Not Allowed: send each JSON-RPC message in a POST."),
    406: (INVALID_REQUEST, "not_acceptable", "Not Acceptable: the Accept header must include application/json "
                                             "(and text/event-stream for a stream)."),
    413: (INVALID_REQUEST, "body_too_large", "The request body is larger than this server accepts."),
    415: (INVALID_REQUEST, "unsupported_media_type", "Invalid Request: send the JSON-RPC message as JSON, with "
                                                     "Content-Type: application/json."),
}
NOT_JSON = (PARSE_ERROR, "parse_error", "Parse error: the body is not valid JSON.")
OTHER = (INVALID_REQUEST, "invalid_request", "Invalid Request: this server cannot take the request as sent.")
KEPT_HEADERS = ("allow", "mcp-session-id")


def rpc_error(status: int, code: str, message: str, headers: dict[str, str] | None = None, *,
              rpc_code: int = SERVER_ERROR, **data: Any) -> JSONResponse:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": rpc_code, "message": message,
                                                    "data": {"code": code, **data}}}
    return JSONResponse(body, status_code=status, headers=headers)


def speaks_json_rpc(path: str) -> bool:
    """An MCP endpoint: /mcp, or a business's public /b/{slug}/mcp."""
    return path.startswith("/mcp") or PUBLIC_MCP.match(path) is not None


class TransportRefusals:
    """Inside each MCP app, around the SDK's transport at `path`: a 4xx it answers to no request (JSON-RPC `id`
    null, or no JSON-RPC at all) becomes our JSON-RPC error, keeping the status (a wrong Content-Type: 415) and
    the Allow and Mcp-Session-Id headers. Everything else passes untouched and unbuffered: results, 202s, SSE
    streams, an error answering a request by its id, the bearer check's 401/403 (OAuth clients read its
    WWW-Authenticate), and 5xx (the SDK's are generic; ours are answered outside)."""

    def __init__(self, app: ASGIApp, path: str = "/mcp"):
        self.app, self.path = app, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        held: list[Message] = []  # a refusal's start and body, until its last chunk
        done = False

        async def watch(message: Message) -> None:
            nonlocal done
            if not held:
                if message["type"] == "http.response.start" and refused(message["status"]):
                    held.append(message)
                else:
                    await send(message)
                return
            if done or message["type"] != "http.response.body":
                return
            held.append(message)
            if not message.get("more_body", False):
                done = True
                await answer(scope, held, receive, send)

        await self.app(scope, receive, watch)
        if held and not done:
            await answer(scope, held, receive, send)


def refused(status: int) -> bool:
    return 400 <= status < 500 and status not in (401, 403)


async def answer(scope: Scope, held: list[Message], receive: Receive, send: Send) -> None:
    start, body = held[0], b"".join(m.get("body", b"") for m in held[1:])
    ours = rewritten(scope, start["status"], body)
    if ours is None:  # the SDK's answer to the request it names: as it was
        for message in held:
            await send(message)
        return
    status, rpc_code, code, message = ours
    kept = Headers(raw=start.get("headers", []))
    await rpc_error(status, code, message, {k: kept[k] for k in KEPT_HEADERS if k in kept},
                    rpc_code=rpc_code)(scope, receive, send)


def rewritten(scope: Scope, status: int, body: bytes) -> tuple[int, int, str, str] | None:
    """Our (status, JSON-RPC code, data.code, message) for the SDK's refusal, or None to keep its answer."""
    try:
        sent = json.loads(body) if body else None
    except ValueError:
        sent = None
    if isinstance(sent, dict) and sent.get("id") is not None:
        return None
    if scope.get("method") == "POST" and status == 400 and not json_content(Headers(scope=scope).get("content-type", "")):
        return 415, *REFUSALS[415]
    error = sent.get("error") if isinstance(sent, dict) else None
    if isinstance(error, dict) and error.get("code") == PARSE_ERROR:
        return status, *NOT_JSON
    return status, *REFUSALS.get(status, OTHER)


def json_content(content_type: str) -> bool:
    """What the SDK takes for JSON (its transport security's check)."""
    return content_type.lower().startswith("application/json")
