"""When the database was out of reach for a moment (a dropped connection, a restart, a failover), a request
answers 503 with Retry-After instead of a bare 500, so every client knows to send it again: JSON in the API's
error shape for /v1 and the webhooks, a short page for people. Writes carry idempotency keys (the booking
form its own), so the retry never books twice."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from nextslot.languages.catalogs import N_
from nextslot.redaction import redact_path
from nextslot.schemas.api import ErrorDetail
from nextslot.server.page_render import notice
from nextslot.server.response_watch import ResponseWatch
from nextslot.server.rpc_errors import rpc_error, speaks_json_rpc
from nextslot.server.staff_api.errors import error_response
from nextslot.storage.outage import database_unreachable

log = logging.getLogger(__name__)
RETRY_AFTER = "1"  # seconds: reconnecting takes a pool checkout, a failover a little longer
MACHINE_PATHS = ("/v1", "/webhooks", "/mcp")  # answered in JSON; everything else is a page a person sees


async def on_database_error(request: Request, exc: Exception) -> Response:
    if not database_unreachable(exc):
        if not request.url.path.startswith(MACHINE_PATHS):
            raise exc  # a bug or bad data: the 500 it always was, with the server's plain page
        log.error("%s %s: database error", request.method, redact_path(request.url.path), exc_info=exc)
        return error_response(500, ErrorDetail(  # never the statement or its values: they may be a customer's
            code="internal_error", message="Something went wrong on our side; it has been logged."))
    log.warning("%s %s: the database was unreachable (%s); answered 503", request.method, redact_path(request.url.path),
                type(getattr(exc, "orig", exc)).__name__)
    return unavailable_to(request)


def unavailable_to(request: Request) -> Response:
    """The 503 in the shape the path's clients read: JSON-RPC for MCP, the API's JSON for machines, a page for
    people."""
    path = request.url.path
    if speaks_json_rpc(path):
        return unavailable_rpc()
    if path.startswith(MACHINE_PATHS):
        return unavailable()
    response = notice(request, N_("Please try again"), N_("We could not reach the booking system for a moment. Go "
                                                          "back and send it again: nothing will be booked twice."), 503)
    response.headers["Retry-After"] = RETRY_AFTER
    return response


def unavailable() -> Response:
    return error_response(503, ErrorDetail(
        code="temporarily_unavailable", message="The database could not be reached, or was too busy, for a moment; "
        "send the same request again (with the same Idempotency-Key for a write: nothing is done twice)."),
        headers={"Retry-After": RETRY_AFTER})


def unavailable_rpc() -> Response:
    """The 503 as MCP clients read it."""
    return rpc_error(503, "temporarily_unavailable", "temporarily unavailable: the database could not be reached, or "
                     "was too busy, for a moment; send the same request again (same idempotency_key for a write: "
                     "nothing is done twice)", headers={"Retry-After": RETRY_AFTER}, retry_after=int(RETRY_AFTER))


class OutageMiddleware:
    """The same 503 inside the MCP app, whose own error handling would answer 500 first: its bearer check
    reads the API key from the database before any tool runs (a tool's own outage is a tool error)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = ResponseWatch(send)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if scope["type"] != "http" or watch.started or not database_unreachable(exc):
                raise
            log.warning("%s: the database was unreachable; answered 503", scope.get("path"))
            await unavailable_rpc()(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(PoolTimeout, on_database_error)  # no connection came free in time: busy, not broken
