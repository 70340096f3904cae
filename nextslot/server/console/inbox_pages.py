"""Conversations at the console: the inbox and one conversation, where staff answer the customer themselves.

GET  /console/{slug}/inbox                      those handed to a person first, then the latest (`partial=1`: the
                                                list alone with an ETag, polled like the calendar)
GET  /console/{slug}/inbox/{id}                 the whole exchange with what the agent did (`partial=1` likewise)
POST /console/{slug}/inbox/{id}/reply           send `text` on the conversation's channel (through the outbox)
POST /console/{slug}/inbox/{id}/hand-back       let the agent answer again

Owners and staff alike may answer; every form carries the session's CSRF token.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from nextslot.conversations.inbox import HandedBack, Replied, exchange, hand_back, inbox, staff_reply
from nextslot.core.accounts.staff import SignedIn
from nextslot.core.results import Rejected
from nextslot.server.booking_form import Problem
from nextslot.server.console.session import Id, Staff, booking_service, checked_post, notice, render
from nextslot.server.live_parts import live_page
from nextslot.server.page_context import PageBusiness

router = APIRouter(include_in_schema=False)


@router.get("/console/{slug}/inbox")
def inbox_page(request: Request, signed: Staff) -> Response:
    business, staff = signed
    rows = inbox(booking_service(request), business.id)
    context = {"business": business, "staff": staff, "active": "inbox", "rows": rows,
               "waiting": sum(1 for r in rows if r.handoff_at and r.status == "open")}
    return live_page(request, render, "inbox.html", "_inbox.html", context)


@router.get("/console/{slug}/inbox/{conversation_id}")
def conversation_page(conversation_id: Id, request: Request, signed: Staff) -> Response:
    return exchange_page(request, *signed, conversation_id)


def exchange_page(request: Request, business: PageBusiness, staff: SignedIn, conversation_id: int,
                  problem: Problem | None = None, text: str = "", status: int = 200) -> Response:
    seen = exchange(booking_service(request), business.id, conversation_id)
    if seen is None:
        return notice(request, business, "Not found", "There is no such conversation here.", 404, staff=staff)
    context = {"business": business, "staff": staff, "active": "inbox", "seen": seen, "problem": problem,
               "text": text, "done": request.query_params.get("done")}
    return live_page(request, render, "conversation.html", "_exchange.html", context, status)


@router.post("/console/{slug}/inbox/{conversation_id}/reply")
async def reply(conversation_id: Id, request: Request, signed: Staff) -> Response:
    business, staff = signed
    form = await checked_post(request, staff)
    text = form.get("text", "")
    result = await run_in_threadpool(staff_reply, booking_service(request), business.id, conversation_id, text, staff.name)
    match result:
        case Replied():
            return RedirectResponse(f"/console/{business.slug}/inbox/{conversation_id}?done=sent#reply",
                                    status_code=303)
        case Rejected(code, message, field):
            return exchange_page(request, business, staff, conversation_id, Problem(code, message, field), text,
                                 404 if code == "not_found" else 422)


@router.post("/console/{slug}/inbox/{conversation_id}/hand-back")
async def give_back(conversation_id: Id, request: Request, signed: Staff) -> Response:
    business, staff = signed
    await checked_post(request, staff)
    match await run_in_threadpool(hand_back, booking_service(request), business.id, conversation_id):
        case HandedBack():
            return RedirectResponse(f"/console/{business.slug}/inbox/{conversation_id}?done=handed_back",
                                    status_code=303)
        case Rejected(_, message):
            return notice(request, business, "Not found", message, 404, staff=staff)
