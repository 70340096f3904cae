"""Signing in to and out of a business's console.

GET  /console/{slug}/login      the form
POST /console/{slug}/login      email + password: a session cookie for this business, then where they were going
POST /console/{slug}/logout     end the session now
"""
from __future__ import annotations

import math
from datetime import timedelta
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from nextslot.core.accounts.staff import Device, Locked, session_for, sign_in, sign_out
from nextslot.core.results import Rejected
from nextslot.server.console.session import (
    COOKIE,
    Staff,
    booking_service,
    business_of,
    checked_post,
    render,
    same_origin,
    set_session_cookie,
)
from nextslot.server.page_render import over_https
from nextslot.server.rate_limit import client_key, rate_limits

router = APIRouter(include_in_schema=False)
DEVICE, DEVICE_DAYS = "nextslot_console_device", 180


def lifetime(request: Request) -> timedelta:
    return timedelta(hours=request.app.state.settings.console_session_hours)


def next_path(slug: str, wanted: str | None) -> str:
    """Back to the console page they asked for; never off this business's console (no open redirect), nor out of
    it by a dot segment: a browser reads `/console/{slug}/../../b/x` (or `%2e%2e`) as `/b/x`."""
    home = f"/console/{slug}"
    if wanted and (wanted == home or wanted.startswith(home + "/") or wanted.startswith(home + "?")) \
            and "//" not in wanted and "\\" not in wanted and not dot_segments(wanted):
        return wanted
    return home


def dot_segments(target: str) -> bool:
    segments = unquote(urlsplit(target).path).split("/")
    return "." in segments or ".." in segments


@router.get("/console/{slug}/login")
def login_form(slug: str, request: Request) -> Response:
    business = business_of(request, slug)
    wanted = next_path(slug, request.query_params.get("next"))
    return render(request, "login.html", {"business": business, "next": wanted})


@router.post("/console/{slug}/login")
async def login(slug: str, request: Request) -> Response:
    business = business_of(request, slug)
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    wanted = next_path(slug, str(form.get("next", "")))
    page = {"business": business, "next": wanted, "email": email}
    wait = rate_limits(request).sign_in.take(f"{client_key(request)}:{slug}")
    if wait > 0:
        return too_many(request, page, math.ceil(wait), "from here")
    if not same_origin(request):
        return render(request, "login.html", {**page, "problem": Rejected(
            "cross_site", "Sign in from this console's own page.")}, 403)
    service = booking_service(request)
    device = Device(request.cookies.get(DEVICE, ""), request.app.state.secret_key)
    result = await run_in_threadpool(sign_in, service.uow(), business.id, email, password, service.now(),
                                     lifetime(request), device)
    if isinstance(result, Locked):
        return too_many(request, page, result.wait_seconds, "for this account")
    if isinstance(result, Rejected):
        return render(request, "login.html", {**page, "problem": result}, 401)
    token, _, mark = result
    if previous := request.cookies.get(COOKIE):  # someone else's session in this browser ends, not just its cookie
        await run_in_threadpool(end_session, service, previous)
    response = RedirectResponse(wanted, status_code=303)
    set_session_cookie(request, response, slug, token, lifetime(request))
    response.set_cookie(DEVICE, mark, max_age=DEVICE_DAYS * 24 * 3600, path=f"/console/{slug}", httponly=True,
                        samesite="strict", secure=over_https(request))
    return response


def end_session(service, token: str) -> None:
    if (earlier := session_for(service.uow(), token, service.now())) is not None:
        sign_out(service.uow(), earlier.session_id)


def too_many(request: Request, page: dict, wait: int, where: str) -> Response:
    response = render(request, "login.html", {**page, "problem": Rejected(
        "too_many_attempts", f"Too many tries {where}. Wait {wait} seconds and try again.")}, 429)
    response.headers["Retry-After"] = str(wait)
    return response


@router.post("/console/{slug}/logout")
async def logout(request: Request, signed: Staff) -> Response:
    business, staff = signed
    await checked_post(request, staff)
    await run_in_threadpool(sign_out, booking_service(request).uow(), staff.session_id)
    response = RedirectResponse(f"/console/{business.slug}/login", status_code=303)
    response.delete_cookie(COOKIE, path=f"/console/{business.slug}")
    return response


