"""The HTTP server: MCP over streamable HTTP at /mcp, the public booking page and its manage links, the staff
API at /v1, the staff console at /console, voice-platform and Twilio webhooks, deposits and their payment
webhooks, calendars, health.

Built by `create_app(settings)`; tests pass their own BookingService (a frozen clock, a throwaway database).
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware

from nextslot.calendars.providers import build_registry
from nextslot.core.accounts.key_cache import ApiKeyCache
from nextslot.core.links import load_secret
from nextslot.core.service import BookingService
from nextslot.oauth import install as oauth
from nextslot.redaction import redact_access_log
from nextslot.runtime import build_links, build_payment_provider, build_service, settle_after_start_up
from nextslot.server import (
    admission,
    body_limit,
    booking_page,
    calendar_webhooks,
    chat_page,
    console,
    failures,
    ics,
    manage_page,
    mcp_http,
    observability,
    offer_links,
    outages,
    outbox_page,
    payments,
    public_mcp,
    rate_limit,
    staff_api,
    twilio_webhooks,
    unmatched,
    voice_webhooks,
    waitlist_page,
    widget,
)
from nextslot.settings import Settings


def create_app(settings: Settings | None = None, service: BookingService | None = None) -> FastAPI:
    settings = settings or Settings()
    service = service or build_service(settings)
    provider = oauth.build_provider(service, settings)
    api_keys = ApiKeyCache(settings.api_key_cache_seconds)  # this app's memory of live keys: /mcp and /v1 share it
    mcp = mcp_http.build(service, settings, provider, api_keys)
    public = public_mcp.PublicMcp(service, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # mounted apps' lifespans do not run on their own
        async with mcp_http.running(mcp), public.server.session_manager.run():
            yield

    app = FastAPI(title="nextslot", lifespan=lifespan)
    redact_access_log()  # the links' tokens never reach uvicorn's access log
    # a slot page shrinks 10x for a slow phone; level 5 is within 5% of level 9 (the default) at a third of its CPU
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=5)
    app.add_middleware(failures.Failures)  # around the routes: whatever error they raise gets the generic answer
    app.state.settings, app.state.service, app.state.links = settings, service, build_links(settings)
    app.state.api_keys = api_keys
    app.state.payment_provider = build_payment_provider(settings)
    app.state.secret_key = load_secret(settings.secret_key, settings.data_dir)
    app.state.calendars = build_registry(settings, app.state.secret_key)  # staff calendars to connect

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    # the busiest routes first: FastAPI tries each route in turn, a few µs apiece, and no page route is under /v1
    staff_api.install(app)
    app.include_router(voice_webhooks.router)
    app.include_router(twilio_webhooks.router)
    app.include_router(calendar_webhooks.router)
    app.include_router(ics.router)
    app.include_router(payments.router)
    app.include_router(offer_links.router)
    app.include_router(widget.router)  # before booking_page: /b/{slug}/share and qr.* are not services
    app.include_router(waitlist_page.router)
    app.include_router(chat_page.router)  # before booking_page: /b/{slug}/chat is not a service
    app.include_router(booking_page.router)
    app.include_router(manage_page.router)
    console.install(app)
    unmatched.install(app)  # a console or page path no route takes: that part's own 404 or 405 page
    oauth.install(app, provider)  # /.well-known/oauth-*, /authorize, /token, /register, /revoke, consent
    outages.install(app)
    outbox_page.install(app)
    app.add_middleware(public_mcp.PublicMcpRoute, public=public)  # /b/{slug}/mcp, before the page's routes
    admission.install(app, settings.tenant_concurrency)  # before any thread: one tenant's burst waits in its line
    app.add_middleware(body_limit.BodyLimitMiddleware, max_bytes=settings.max_body_bytes)  # outside the admission
    rate_limit.install(app, settings)  # outside the admission: a request over its rate is refused without waiting

    observability.install(app, service)  # /ready, /metrics (with a token), request latency

    mcp_http.mount(app, mcp)  # last: it is mounted at the root
    return app


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from nextslot.telemetry.tracing import start_tracing, trace_app, trace_engine

    app = create_app(settings)
    provider = start_tracing(settings.otel_endpoint, settings.otel_service_name, "server")
    if provider is not None:
        trace_app(app, provider)
        trace_engine(app.state.service.session_factory.kw["bind"], provider)
    if settings.metrics_port:
        from nextslot.telemetry.metrics import serve_metrics

        serve_metrics(settings.metrics_port, settings.metrics_host, (app.state.database_metrics,),
                      settings.metrics_token)
    settle_after_start_up(settings.thread_switch_ms)
    # uvicorn's loggers go through ours (JSON with the request id); our middleware logs each request itself
    try:
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, log_level=settings.log_level)
    finally:
        if provider is not None:
            provider.shutdown()  # the last spans go out
