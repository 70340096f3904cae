"""Who is using the console: the signed-in staff member of the business the URL names, or a way out.

Every console URL starts /console/{slug}. The session cookie is scoped to that path, HttpOnly and
SameSite=Strict; every POST must also carry the session's CSRF token and, when the browser sends one, an
Origin of this very host. A session of one business is no session at another: its pages ask to sign in.
"""
from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Path, Request
from starlette.responses import RedirectResponse, Response

from nextslot.core import audit
from nextslot.core.accounts.staff import SignedIn, csrf_matches, session_for
from nextslot.core.service import BookingService
from nextslot.schemas.inputs import BIGINT
from nextslot.server.page_context import PageBusiness, business_by_slug
from nextslot.server.page_render import over_https, security_headers, templates

COOKIE = "nextslot_console"
# A row's id in a console URL (a customer, a conversation, a calendar, a connected app): a bigint column's, so one
# past it names nothing and answers the "Not found" page (refusals.py), never a DataError from PostgreSQL
Id = Annotated[int, Path(ge=1, le=BIGINT)]


def id_in(text: str | None) -> int | None:
    """An id typed by hand into a query (`?before=`): ASCII digits within a bigint, else None."""
    digits = text.lstrip("0") if text and text.isascii() and text.isdigit() else ""
    if not digits or len(digits) > len(str(BIGINT)):
        return None
    value = int(digits)
    return value if value <= BIGINT else None


class ConsoleExit(Exception):
    """Stop a console request with this response: sign in first, not yours, not allowed."""

    def __init__(self, response: Response):
        self.response = response


def booking_service(request: Request) -> BookingService:
    return request.app.state.service


def business_of(request: Request, slug: str) -> PageBusiness:
    business = business_by_slug(booking_service(request), slug)
    if business is None:
        raise ConsoleExit(notice(request, None, "Not found", "There is no such business here.", 404))
    return business


def signed_in(request: Request, slug: str) -> tuple[PageBusiness, SignedIn]:
    """The business and its signed-in staff member; anyone else is sent to sign in (GET) or refused."""
    business = business_of(request, slug)
    token = request.cookies.get(COOKIE)
    staff = session_for(booking_service(request).uow(), token, booking_service(request).now()) if token else None
    if staff is None or staff.business_id != business.id:
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise ConsoleExit(RedirectResponse(f"/console/{slug}/login?next={target}", status_code=303))
        raise ConsoleExit(notice(request, business, "Signed out",
                                 "Your session has ended. Sign in again and repeat what you were doing.", 401))
    audit.act_as(staff.email, "console")  # for this request: the audit log names who changed what
    return business, staff


async def checked_post(request: Request, staff: SignedIn) -> dict[str, Any]:
    """The posted form, once its CSRF token and origin show it came from our own page."""
    form = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
    if not same_origin(request) or not csrf_matches(staff.csrf_token, form.get("csrf")):
        raise ConsoleExit(notice(request, None, "Form expired",
                                 "This form was not sent from this console (or is too old). Go back, reload "
                                 "the page and try again.", 403))
    return form


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def owner_only(request: Request, business: PageBusiness, staff: SignedIn) -> None:
    if not staff.is_owner:
        raise ConsoleExit(notice(request, business, "Owners only",
                                 "Only an owner of the business can change its settings.", 403, staff=staff))


def set_session_cookie(request: Request, response: Response, slug: str, token: str, lifetime: timedelta) -> None:
    response.set_cookie(COOKIE, token, max_age=int(lifetime.total_seconds()), path=f"/console/{slug}",
                        httponly=True, samesite="strict", secure=over_https(request))


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    """A console page: never framed, never cached, no Referer to other sites (a booking's page names its code)."""
    nonce = secrets.token_urlsafe(12)
    page = {"business": None, "staff": None, "active": "", **context, "nonce": nonce}
    # same-origin, not no-referrer: under no-referrer a browser sends `Origin: null`, which same_origin refuses
    headers = {**security_headers(nonce, frameable=False), "Referrer-Policy": "same-origin"}
    return templates.TemplateResponse(request, f"console/{template}", page, status_code=status, headers=headers)


def notice(request: Request, business: PageBusiness | None, title: str, message: str, status: int,
           **context: Any) -> Response:
    return render(request, "notice.html", {"business": business, "title": title, "message": message, **context},
                  status)


Staff = Annotated[tuple[PageBusiness, SignedIn], Depends(signed_in)]
