"""Rendering the public pages: one Jinja2 environment, the headers every page carries, the notice pages.

Booking pages (/b/) may be framed by any site, so businesses can embed them; manage pages (/m/) carry a
booking's secret link and may not be framed at all. No page sends a Referer: URLs can hold that link.
"""
from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup
from starlette.responses import Response

from nextslot.schemas.statuses import ACTIVE, LIVE
from nextslot.server.page_times import day_label, duration, zone_choices
from nextslot.server.page_words import tr

HERE = Path(__file__).parent
STATIC = HERE / "static"
ASSETS = {name: (STATIC / name).read_bytes() for name in ("page.css", "page.js", "embed.js")}
VERSIONS = {name: hashlib.sha256(body).hexdigest()[:10] for name, body in ASSETS.items()}
TZ_COOKIE = "nextslot_tz"

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.trim_blocks = templates.env.lstrip_blocks = True


def asset(name: str) -> str:
    """The asset's URL with its content hash, so browsers may keep it for a year."""
    return f"/static/page/{name}?v={VERSIONS[name]}"


STATUS = {"booked": "Booked", "confirmed": "Confirmed", "pending_payment": "Awaiting deposit",
          "cancelled": "Cancelled", "expired": "Expired: the deposit was not paid in time", "no_show": "Missed"}
PAYMENT = {"paid": "Deposit paid", "pending": "Awaiting deposit", "expired": "Deposit not paid in time",
           "refund_due": "Deposit paid; a refund is due", "kept": "Deposit kept (late cancel or missed appointment)"}

@pass_context
def translated(context: Any, text: str, **values: Any) -> Markup:
    """`t("Pick a time")` in a page: the text in the visitor's language (page_words.py)."""
    visitor = context.get("visitor")
    # the texts are ours, the values are not: Markup.format escapes each value and keeps the text as it is
    return Markup(tr(visitor.lang if visitor is not None else "en", text)).format(**values)


@pass_context
def day_named(context: Any, day: Any) -> str:
    visitor = context.get("visitor")
    return day_label(day, visitor.lang if visitor is not None else "en")


templates.env.globals.update(asset=asset, zone_choices=zone_choices, day_label=day_named, ACTIVE=ACTIVE, LIVE=LIVE,
                             t=translated)
templates.env.filters.update(duration=duration, status=lambda s: STATUS.get(s, s.replace("_", " ").capitalize()),
                             payment=lambda s: PAYMENT.get(s, s.replace("_", " ")))


def security_headers(nonce: str, frameable: bool) -> dict[str, str]:
    ancestors = "*" if frameable else "'none'"
    csp = ("default-src 'self'; img-src 'self' data: https:; script-src 'self'; "
           f"style-src 'self' 'nonce-{nonce}'; base-uri 'none'; object-src 'none'; frame-ancestors {ancestors}")
    headers = {"Content-Security-Policy": csp, "Referrer-Policy": "no-referrer",
               "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if not frameable:
        headers["X-Frame-Options"] = "DENY"
    return headers


def render(request: Request, template: str, context: dict[str, Any], *, status: int = 200,
           frameable: bool = True) -> Response:
    """A page from templates/page/, with its headers; remembers a zone the visitor picked."""
    nonce = secrets.token_urlsafe(12)
    page = {"business": None, "visitor": None, "detect_tz": False, **context, "nonce": nonce}
    response = templates.TemplateResponse(request, f"page/{template}", page, status_code=status,
                                          headers=security_headers(nonce, frameable))
    visitor = page["visitor"]
    if visitor is not None and visitor.chosen and request.cookies.get(TZ_COOKIE) != visitor.zone.key:
        response.set_cookie(TZ_COOKIE, visitor.zone.key, max_age=365 * 24 * 3600, samesite="lax",
                            secure=request.url.scheme == "https")
    return response


def notice(request: Request, title: str, message: str, status: int, *, frameable: bool = True,
           **context: Any) -> Response:
    """A plain page that explains itself: unknown business, invalid link, too many requests."""
    return render(request, "notice.html", {"title": title, "message": message, **context}, status=status,
                  frameable=frameable)


def not_found(request: Request, what: str = "page") -> Response:
    return notice(request, "Not found", f"There is no such {what}. Check the link and try again.", 404)


def too_many_requests(request: Request, retry_after: int) -> Response:
    response = notice(request, "Slow down a little",
                      f"That was a lot of requests in a short time. Please wait {retry_after} seconds "
                      "and try again.", 429)
    response.headers["Retry-After"] = str(retry_after)
    return response
