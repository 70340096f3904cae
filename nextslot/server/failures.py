"""What a client gets when a request cannot be served as sent, on every path, in the shape its channel reads:
a URL holding control characters (NUL, ...) names nothing, so it is refused before any route looks it up; and a
bug is a generic 500 carrying the reference under which its traceback was logged, never the exception's text
(which may hold SQL and a customer's data)."""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from nextslot import incidents
from nextslot.schemas.inputs import CONTROL
from nextslot.server.page_render import notice
from nextslot.server.response_watch import ResponseWatch
from nextslot.server.rpc_errors import speaks_json_rpc

JSON_PATHS = ("/v1", "/webhooks")  # the API's error shape; /mcp answers JSON-RPC; everything else is a page


def answer(scope: Scope, status: int, code: str, message: str, title: str) -> Response:
    path = scope.get("path", "")
    if speaks_json_rpc(path):
        return JSONResponse({"jsonrpc": "2.0", "id": None, "error": {
            "code": -32603 if status >= 500 else -32600, "message": message, "data": {"code": code}}},
            status_code=status)
    if path.startswith(JSON_PATHS):
        return JSONResponse({"error": {"code": code, "message": message, "field": None}}, status_code=status)
    return notice(Request(scope), title, message, status)


def bad_url(scope: Scope) -> bool:
    text = scope.get("path", "") + unquote(scope.get("query_string", b"").decode("latin-1"))
    return CONTROL.search(text) is not None


class Failures:
    """Outermost: refuses URLs with control characters, and turns any exception that got this far into the
    generic answer (the response had not started: else the server closes the connection, as it would)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if bad_url(scope):
            await answer(scope, 400, "invalid_url", "The address holds a control character (such as NUL), so it "
                         "names nothing here.", "Not found")(scope, receive, send)
            return
        watch = ResponseWatch(send)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            ref = incidents.report(exc, f"{scope.get('method')} {scope.get('path')}")
            if watch.started:
                raise
            await answer(scope, 500, "internal_error", incidents.message(ref),
                         "Something went wrong")(scope, receive, send)


def for_paths(belongs: Callable[[str], bool], ours: Callable[[Request, Any], Response],
              theirs: Callable[..., Any] | None) -> Callable[[Request, Exception], Any]:
    """An exception handler answering with `ours` on the paths a part of the app owns (/v1, the console), and as
    before (`theirs`, or re-raised) everywhere else."""
    async def handle(request: Request, exc: Exception) -> Response:
        if belongs(request.url.path):
            return ours(request, exc)
        if theirs is None:
            raise exc
        answer = theirs(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    return handle
