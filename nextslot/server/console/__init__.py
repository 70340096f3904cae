"""The staff console: the business's own calendar in the browser, through the same core as every channel.

Server-rendered pages under /console/{slug} with one small script for live updates; see session.py for
sign-in, roles and CSRF.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from starlette.responses import Response

from nextslot.schemas.times import repeat_note
from nextslot.server.console import (
    booking_pages,
    calendar_pages,
    customer_pages,
    data_pages,
    inbox_pages,
    refusals,
    settings_pages,
    sign_in,
    staff_calendar_pages,
)
from nextslot.server.console.calendar_grid import placement_css
from nextslot.server.console.session import ConsoleExit
from nextslot.server.page_render import templates

STATIC = Path(__file__).resolve().parent.parent / "static"
ASSETS = {"console.css": ((STATIC / "console.css").read_text() + placement_css()).encode(),
          "console.js": (STATIC / "console.js").read_bytes()}
TYPES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
VERSIONS = {name: hashlib.sha256(body).hexdigest()[:10] for name, body in ASSETS.items()}


def console_asset(name: str) -> str:
    return f"/static/console/{name}?v={VERSIONS[name]}"


def wall(text: str | datetime, zone: ZoneInfo) -> str:
    """An instant (or one in ISO from a booking's history) as the staff read a clock: "Mon 23 Nov 11:00"."""
    try:
        local = (text if isinstance(text, datetime) else datetime.fromisoformat(text)).astimezone(zone)
    except (TypeError, ValueError):
        return str(text)
    return f"{local:%a %d %b %H:%M}{repeat_note(local)}"


def install(app: FastAPI) -> None:
    templates.env.globals["console_asset"] = console_asset
    templates.env.filters["wall"] = wall

    @app.exception_handler(ConsoleExit)
    async def console_exit(request: Request, exit: ConsoleExit) -> Response:
        return exit.response

    refusals.install(app)  # an id that is not one, a value the database refuses: a page, not JSON or a 500

    @app.get("/static/console/{name}", include_in_schema=False)
    def console_static(name: str, request: Request) -> Response:
        if name not in ASSETS:
            return Response(status_code=404)
        current = request.query_params.get("v") == VERSIONS[name]
        return Response(ASSETS[name], media_type=TYPES[name], headers={
            "Cache-Control": "public, max-age=31536000, immutable" if current else "public, max-age=300",
            "X-Content-Type-Options": "nosniff"})

    # data_pages first: /customers/{id}/export is not a customer page
    for module in (sign_in, calendar_pages, booking_pages, data_pages, customer_pages, inbox_pages, settings_pages,
                   staff_calendar_pages):
        app.include_router(module.router)
