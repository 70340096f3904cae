"""The booking page's chat panel: a small server-rendered conversation with the business's agent (the same
engine as WhatsApp and SMS, channel `web`), started from the business page and continued here.

GET  /b/{slug}/chat                 the chat: messages, the message form, "It's my booking" (one-time code)
                                    `partial=1`: the messages alone with an ETag, polled by page.js for replies
POST /b/{slug}/chat                 a message (the first also gives a name and phone, as the booking form asks)
POST /b/{slug}/chat/code            send a one-time code to a booking's phone or email
POST /b/{slug}/chat/verify          check it: the chat may then find, move and cancel that contact's bookings

The visitor is a random cookie scoped to /b/{slug} (stored only as a hash); every form also carries a ticket
derived from it, which another site cannot read. Rate-limited per client address like the rest of the page, and
codes asked for and tried as on the public MCP endpoint (`RateLimits.codes`, `.code_checks`).
"""
from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from nextslot.conversations.web_chat import (
    CodeSent,
    Proved,
    Received,
    chat_view,
    check_code,
    form_ticket,
    receive_web,
    send_code,
    visitor_key,
)
from nextslot.core.results import Rejected
from nextslot.languages.catalogs import N_
from nextslot.server.booking_form import Problem
from nextslot.server.live_parts import live_page
from nextslot.server.page_context import PageBusiness, business_by_slug, visitor_of
from nextslot.server.page_render import not_found, notice, over_https, render, too_many_requests
from nextslot.server.rate_limit import RateLimit, RateLimitedRoute, client_key, rate_limits

router = APIRouter(route_class=RateLimitedRoute, max_body_size=16_000, include_in_schema=False)
COOKIE = "nextslot_chat"


def idle_of(request: Request) -> timedelta:
    return timedelta(minutes=request.app.state.settings.conversation_idle_minutes)


@router.get("/b/{slug}/chat")
def chat_page(slug: str, request: Request) -> Response:
    business = business_by_slug(request.app.state.service, slug)
    if business is None:
        return not_found(request, "business")
    return chat_response(request, business)


def chat_response(request: Request, business: PageBusiness, problem: Problem | None = None,
                  form: dict[str, str] | None = None, status: int = 200, token: str | None = None) -> Response:
    token = token or request.cookies.get(COOKIE) or secrets.token_urlsafe(24)
    view = chat_view(request.app.state.service, business.id, visitor_key(token), idle_of(request))
    context = {"business": business, "visitor": visitor_of(request, business.zone, language=business.language),
               "chat": view, "ticket": form_ticket(token), "problem": problem, "form": form or {},
               "done": request.query_params.get("done"),
               "base": f"/b/{business.slug}/chat"}
    response = live_page(request, render, "chat.html", "_chat.html", context, status)
    if not request.query_params.get("partial") and request.cookies.get(COOKIE) != token:
        keep(request, response, business.slug, token)
    return response


def keep(request: Request, response: Response, slug: str, token: str) -> None:
    # the embed is a third-party frame: there only a SameSite=None (so Secure) cookie is sent back
    secure = over_https(request)
    response.set_cookie(COOKIE, token, max_age=7 * 24 * 3600, path=f"/b/{slug}", httponly=True,
                        samesite="none" if secure else "lax", secure=secure)


async def posted(request: Request, slug: str, budget: RateLimit | None = None
                 ) -> tuple[PageBusiness, str, dict[str, str]] | Response:
    """The business, the visitor's token and the form, if the form carries the visitor's own ticket; a code asked
    for or tried also spends the client address's `budget` of those (a new chat is only a new cookie)."""
    if budget is not None and (wait := budget.take(client_key(request))) > 0:
        return too_many_requests(request, wait)
    business = business_by_slug(request.app.state.service, slug)
    if business is None:
        return not_found(request, "business")
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    token = request.cookies.get(COOKIE)
    if not token or not secrets.compare_digest(form_ticket(token).encode(), form.get("ticket", "").encode()):
        return notice(request, N_("Chat expired"), N_("This chat form is too old or was not sent from our page. "
                                                      "Reload the page and write again."), 403)
    return business, token, form


@router.post("/b/{slug}/chat")
async def say(slug: str, request: Request) -> Response:
    got = await posted(request, slug)
    if isinstance(got, Response):
        return got
    business, token, form = got
    result = await run_in_threadpool(receive_web, request.app.state.service, business.id, visitor_key(token),
                                     form.get("text", ""), form.get("name", ""), form.get("phone", ""),
                                     idle_of(request))
    return after(request, business, token, form, result)


@router.post("/b/{slug}/chat/code")
async def ask_code(slug: str, request: Request) -> Response:
    got = await posted(request, slug, rate_limits(request).codes)
    if isinstance(got, Response):
        return got
    business, token, form = got
    result = await run_in_threadpool(send_code, request.app.state.service, business.id, visitor_key(token),
                                     form.get("contact", ""), idle_of(request))
    return after(request, business, token, form, result)


@router.post("/b/{slug}/chat/verify")
async def verify(slug: str, request: Request) -> Response:
    got = await posted(request, slug, rate_limits(request).code_checks)
    if isinstance(got, Response):
        return got
    business, token, form = got
    fresh = secrets.token_urlsafe(24)  # a proof is the visitor's under a new cookie: no one else held this one
    result = await run_in_threadpool(check_code, request.app.state.service, business.id, visitor_key(token),
                                     form.get("code", ""), idle_of(request), visitor_key(fresh))
    return after(request, business, fresh if isinstance(result, Proved) else token, form, result)


def after(request: Request, business: PageBusiness, token: str, form: dict[str, str], result: Any) -> Response:
    """Back to the chat (a redirect, so a reload sends nothing twice), or the chat with the problem shown."""
    done = {Received: "sent", CodeSent: "code_sent", Proved: "proved"}
    if isinstance(result, Rejected):
        return chat_response(request, business, Problem(result.code, result.message, result.field), form,
                             status=422, token=token)
    visitor = visitor_of(request, business.zone, form, language=business.language)
    response = RedirectResponse(visitor.link(f"/b/{business.slug}/chat", done=done[type(result)]) + "#last",
                                status_code=303)
    if request.cookies.get(COOKIE) != token:
        keep(request, response, business.slug, token)
    return response
