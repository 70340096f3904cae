"""What an operator watches: every request's id, log line and latency per channel (one middleware), `/metrics`
behind a token, `/ready`.

The channel is read from the path's first segments (a bounded set), the route from the matched route's template
(`/v1/bookings/{code}`, never the code itself); unmatched paths are one `unmatched` route.
"""
from __future__ import annotations

import asyncio
import logging
from time import perf_counter

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nextslot.core.service import BookingService
from nextslot.redaction import redact_path
from nextslot.telemetry import metrics
from nextslot.telemetry.collectors import database_registry
from nextslot.telemetry.context import bound_request_id, request_id_from
from nextslot.telemetry.tracing import tag_request

log = logging.getLogger("nextslot.http")
# (path prefix, channel): the first that matches wins
CHANNELS = (
    ("/mcp", "mcp"), ("/v1/", "api"), ("/console/", "console"), ("/webhooks/vapi/", "vapi"),
    ("/webhooks/retell/", "retell"), ("/webhooks/elevenlabs/", "elevenlabs"), ("/webhooks/twilio/", "twilio"),
    ("/webhooks/", "payments"), ("/pay", "payments"), ("/ics", "calendar"), ("/b/", "page"), ("/m/", "page"),
    ("/w/", "page"), ("/widget", "page"), ("/static/", "static"), ("/authorize", "oauth"), ("/token", "oauth"),
    ("/register", "oauth"), ("/revoke", "oauth"), ("/.well-known/", "oauth"), ("/oauth", "oauth"),
    ("/health", "ops"), ("/ready", "ops"), ("/metrics", "ops"), ("/outbox", "ops"),
)


def channel_of(path: str) -> str:
    if path.startswith("/b/") and (path.endswith("/mcp") or "/mcp/" in path):
        return "public_mcp"
    return next((channel for prefix, channel in CHANNELS if path.startswith(prefix)), "other")


def route_of(scope: Scope, channel: str) -> str:
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template:
        return template
    return f"/{channel}" if channel in ("mcp", "public_mcp") else "unmatched"


class RequestObserver:
    """Give every HTTP request an id (the caller's `X-Request-ID` when it looks like one), bound while it is
    served and sent back in the response; log one line for it and time it, from the first byte in to the last
    byte out."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = request_id_from(headers.get(b"x-request-id", b"").decode("latin-1"))
        started, status = perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        with bound_request_id(request_id):
            tag_request(request_id)
            try:
                await self.app(scope, receive, sending)
            finally:
                seconds = perf_counter() - started
                channel = channel_of(scope["path"])
                route = route_of(scope, channel)
                metrics.HTTP_REQUESTS.labels(channel, route, scope["method"], str(status)).observe(seconds)
                # the path without its query (which may carry a phone or an email), link tokens shortened; probes
                # and scrapes (every few seconds) only at debug
                level = logging.DEBUG if channel == "ops" and status < 400 else logging.INFO
                log.log(level, "%s %s %s", scope["method"], redact_path(scope["path"]), status, extra={"channel": channel, "route": route, "status": status,
                                        "ms": round(seconds * 1000, 1)})


def install(app: FastAPI, service: BookingService) -> None:
    settings = app.state.settings
    app.state.database_metrics = database_registry(service.session_factory, service.gate)

    @app.get("/ready", include_in_schema=False)
    async def ready() -> Response:
        """Ready to serve: the database answers (a load balancer stops sending requests while it does not)."""
        try:
            await asyncio.wait_for(asyncio.to_thread(database_answers, service), timeout=5)
        except Exception:  # noqa: BLE001 - any failure means not ready; the reason stays in the server's log
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ready", "database": "ok"})

    if settings.metrics_token:
        @app.get("/metrics", include_in_schema=False)
        async def scrape(request: Request) -> Response:
            if not metrics.token_matches(settings.metrics_token, request.headers.get("authorization")):
                return JSONResponse({"error": {"code": "unauthorized", "message": "Send the metrics token as "
                                     "`Authorization: Bearer <token>`."}}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            body, content_type = await asyncio.to_thread(metrics.exposition, app.state.database_metrics)
            return Response(body, media_type=content_type)

    app.add_middleware(RequestObserver)


def database_answers(service: BookingService) -> None:
    from nextslot.core.operations import ping

    ping(service)
