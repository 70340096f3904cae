"""A customer's own booking, reached only through its signed link: see it, move it, cancel it.

GET  /m/{token}                       the booking, with what can still be done
GET  /m/{token}/move                  free times for the same service
GET  /m/{token}/move/confirm?at=...   "Move to ...?"
POST /m/{token}/move                  reschedule; a lost race offers the nearest times
GET  /m/{token}/cancel                "Cancel ...?"
POST /m/{token}/cancel                cancel

The token names the business and the booking code under the server's signature, so no other
business's booking can be reached, and it stops working when the appointment starts. These pages may
not be framed: a framed cancel button could be clicked for someone.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from nextslot.core.booking.search_budget import retry_after
from nextslot.core.links import Links
from nextslot.core.results import Booked, Changed, Rejected, SlotTaken
from nextslot.core.service import BookingService
from nextslot.languages import local_when
from nextslot.schemas.commands import BookingChange, BookingReschedule
from nextslot.schemas.statuses import ACTIVE, LIVE
from nextslot.schemas.views import BookingView
from nextslot.server.booking_form import FORM_KEY, Problem, new_form_key
from nextslot.server.page_context import PageBusiness, Visitor, business_by_id, visitor_of
from nextslot.server.page_links import calendar_path, link_refused, manage_path, pay_path
from nextslot.server.page_render import not_found, render, too_many_requests
from nextslot.server.page_times import alternatives, parse_slot_param, slot_param
from nextslot.server.rate_limit import RateLimitedRoute
from nextslot.server.slot_grid import slot_grid

log = logging.getLogger(__name__)
router = APIRouter(route_class=RateLimitedRoute, max_body_size=16_000, include_in_schema=False)


@dataclass(frozen=True)
class Opened:
    """A manage link that checked out: whose booking it is and how to show it to this visitor."""

    token: str
    business: PageBusiness
    booking: BookingView
    visitor: Visitor

    @property
    def base(self) -> str:
        return f"/m/{self.token}"

    def context(self, **extra: Any) -> dict[str, Any]:
        return {"business": self.business, "visitor": self.visitor, "booking": self.booking, "base": self.base,
                "when": local_when(self.booking.starts_at.utc, self.visitor.zone, self.visitor.language), **extra}


@router.get("/m/{token}")
def manage(token: str, request: Request) -> Response:
    opened = open_link(request, token)
    if isinstance(opened, Response):
        return opened
    service: BookingService = request.app.state.service
    booking = opened.booking
    upcoming = booking.starts_at.utc > service.now()
    return page(request, "manage.html", opened.context(
        done=request.query_params.get("done"), detect_tz=not opened.visitor.chosen,
        can_move=upcoming and booking.status in ACTIVE,
        can_cancel=upcoming and booking.status in LIVE,
        pay=pay_path(request.app.state.links, opened.business.id, booking), calendar=calendar_path(token),
    ))


@router.get("/m/{token}/move")
def move_times(token: str, request: Request) -> Response:
    opened = open_link(request, token)
    if isinstance(opened, Response):
        return opened
    service: BookingService = request.app.state.service
    place = opened.booking.location  # a move stays at its branch: only its times
    grid = slot_grid(service, opened.business.id, opened.booking.service, opened.visitor.zone,
                     request.query_params.get("from"), opened.visitor.language, place.key if place else None)
    if isinstance(grid, Rejected):
        if (wait := retry_after(grid)) is not None:  # the business's slot searches are spent for now
            return too_many_requests(request, wait)
        return not_found(request, "service")
    return page(request, "move.html", opened.context(grid=grid, detect_tz=not opened.visitor.chosen))


@router.get("/m/{token}/move/confirm")
def confirm_move(token: str, request: Request) -> Response:
    opened = open_link(request, token)
    if isinstance(opened, Response):
        return opened
    at = parse_slot_param(request.query_params.get("at"))
    if at is None:
        return RedirectResponse(opened.visitor.link(f"{opened.base}/move"), status_code=303)
    return move_page(request, opened, slot_param(at), local_when(at, opened.visitor.zone, opened.visitor.language))


@router.post("/m/{token}/move")
async def submit_move(token: str, request: Request) -> Response:
    return await on_posted_link(move, request, token)


def move(request: Request, opened: Opened, posted: FormData) -> Response:
    service: BookingService = request.app.state.service
    links: Links = request.app.state.links
    at = parse_slot_param(str(posted.get("at", "")))
    key = str(posted.get("key", ""))
    if at is None or not FORM_KEY.match(key):
        return RedirectResponse(opened.visitor.link(f"{opened.base}/move"), status_code=303)
    when = local_when(at, opened.visitor.zone, opened.visitor.language)
    command = BookingReschedule(code=opened.booking.code, starts_at=at, source="page",
                                idempotency_key=f"page:{key}")
    match service.reschedule(opened.business.id, command):
        case Booked(booking):
            log.info("page reschedule of %s for business %s", booking.code, opened.business.id)
            moved = manage_path(links, opened.business.id, booking)  # a new link: it expires at the new time
            return RedirectResponse(opened.visitor.link(moved, done="moved"), status_code=303)
        case SlotTaken(_, nearest):
            return move_page(request, opened, slot_param(at), when, taken=alternatives(nearest, opened.visitor.zone,
                                                                                    opened.visitor.language),
                             status=409)
        case Rejected(code, message, field):
            return move_page(request, opened, slot_param(at), when, problem=Problem(code, message, field),
                             status=422)


@router.get("/m/{token}/cancel")
def confirm_cancel(token: str, request: Request) -> Response:
    opened = open_link(request, token)
    if isinstance(opened, Response):
        return opened
    return page(request, "cancel.html", opened.context())


@router.post("/m/{token}/cancel")
async def submit_cancel(token: str, request: Request) -> Response:
    return await on_posted_link(cancel, request, token)


def cancel(request: Request, opened: Opened, posted: FormData) -> Response:
    service: BookingService = request.app.state.service
    accepted = "accept" if posted.get("late_terms") == "accept" else None
    match service.cancel(opened.business.id, BookingChange(code=opened.booking.code, source="page",
                                                           late_terms=accepted)):
        case Changed(booking):
            log.info("page cancel of %s for business %s", booking.code, opened.business.id)
            return RedirectResponse(opened.visitor.link(opened.base, done="cancelled"), status_code=303)
        case Rejected("late_terms_not_accepted", message):  # late: say what it costs, and ask again
            return page(request, "cancel.html", opened.context(late_terms=message), status=409)
        case Rejected(code, message, field):
            return page(request, "cancel.html", opened.context(problem=Problem(code, message, field)), status=422)


# --- helpers ------------------------------------------------------------------------------------


def open_link(request: Request, token: str, posted: FormData | None = None) -> Opened | Response:
    """The booking behind a manage link, or the page saying why the link cannot be used."""
    service: BookingService = request.app.state.service
    links: Links = request.app.state.links
    if len(token) > 300:
        return link_refused(request, Rejected("link_invalid", "This link is not valid."), frameable=False)
    target = links.read("manage", token, service.now())
    if isinstance(target, Rejected):
        return link_refused(request, target, frameable=False)
    business = business_by_id(service, target.business_id)
    booking = service.get_booking(target.business_id, target.code) if business is not None else None
    if business is None or isinstance(booking, Rejected) or booking is None:
        return render(request, "notice.html", {"title": "Booking not found",
                                               "message": "This booking no longer exists."}, status=404,
                      frameable=False)
    visitor = visitor_of(request, booking.starts_at.place_zone, posted, language=business.language)
    return Opened(token, business, booking, visitor)


async def on_posted_link(handle: Callable[[Request, Opened, FormData], Response], request: Request,
                         token: str) -> Response:
    """Read the posted form, then open the link and handle the post in a worker thread (the core is blocking)."""
    posted = await request.form()

    def opened_and_handled() -> Response:
        opened = open_link(request, token, posted)
        return opened if isinstance(opened, Response) else handle(request, opened, posted)
    return await run_in_threadpool(opened_and_handled)


def page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    return render(request, template, context, status=status, frameable=False)


def move_page(request: Request, opened: Opened, at: str, when: str, *, taken: list | None = None,
              problem: Problem | None = None, status: int = 200) -> Response:
    return page(request, "move_confirm.html", opened.context(
        at=at, new_when=when, key=new_form_key(), taken=taken, problem=problem), status=status)

