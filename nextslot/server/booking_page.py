"""The public booking page: pick a service, a free time and book, through the same core as every channel.

GET  /b/{slug}                          the business and its services
GET  /b/{slug}/{service}                free times, a few days at a time, in the visitor's zone
GET  /b/{slug}/{service}/book?at=...    the details form (intake questions, name, phone, email, repeat)
POST /b/{slug}/{service}/book           book (source "page"), or a recurring series (series_page.py); a lost
                                        race offers the nearest times
GET  /b/{slug}/booked/{token}           the confirmation, reached through the booking's signed manage link
"""
from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from nextslot.core.booking.search_budget import retry_after
from nextslot.core.links import Links
from nextslot.core.results import Booked, Rejected, SeriesBooked, SlotTaken
from nextslot.core.service import BookingService
from nextslot.languages import local_when
from nextslot.schemas.commands import SeriesCreate
from nextslot.schemas.views import BookingView, ServiceView
from nextslot.server.booking_form import (
    BookingForm,
    Problem,
    booking_command,
    field_ids,
    intake_fields,
    new_form_key,
    read_form,
)
from nextslot.server.page_context import (
    PageBusiness,
    Visitor,
    branch_zone,
    business_by_slug,
    business_offer,
    visitor_of,
)
from nextslot.server.page_links import calendar_path, link_refused, manage_path, pay_path
from nextslot.server.page_render import not_found, render, too_many_requests
from nextslot.server.page_times import alternatives, parse_slot_param
from nextslot.server.public_writes import PublicSender
from nextslot.server.rate_limit import RateLimitedRoute, client_key
from nextslot.server.series_page import series_page
from nextslot.server.slot_grid import slot_grid

log = logging.getLogger(__name__)
router = APIRouter(route_class=RateLimitedRoute, max_body_size=64_000, include_in_schema=False)


@router.get("/b/{slug}")
def business_page(slug: str, request: Request) -> Response:
    found = business_offer(request.app.state.service, slug)
    if found is None:
        return not_found(request, "business")
    business, services = found
    visitor = visitor_of(request, business.zone, language=business.language)
    return render(request, "business.html", {
        "business": business, "visitor": visitor, "detect_tz": not visitor.chosen, "services": services,
        # its MCP twin, for the customer's own assistant (server/public_mcp.py)
        "assistant_url": f"{request.app.state.settings.public_url.rstrip('/')}/b/{business.slug}/mcp",
    })


def page_business(request: Request, slug: str) -> PageBusiness | Response:
    """The business whose page this is, or the page saying there is none."""
    business = business_by_slug(request.app.state.service, slug)
    return not_found(request, "business") if business is None else business


@router.get("/b/{slug}/{service_key}")
def service_page(slug: str, service_key: str, request: Request) -> Response:
    service: BookingService = request.app.state.service
    found = service_visit(request, slug, service_key)
    if isinstance(found, Response):
        return found
    business, offered, visitor = found
    base = f"/b/{business.slug}/{offered.key}"
    places = offered.locations
    if len(places) > 1 and visitor.place not in {p.key for p in places}:  # several branches: which one first
        return render(request, "service.html", {
            "business": business, "visitor": visitor, "detect_tz": not visitor.chosen, "offered": offered,
            "grid": None, "places": places, "base": base})
    grid = slot_grid(service, business.id, offered.key, visitor.zone, request.query_params.get("from"),
                     visitor.language, visitor.place if len(places) > 1 else None)
    if isinstance(grid, Rejected):
        if (wait := retry_after(grid)) is not None:  # the business's slot searches are spent for now
            return too_many_requests(request, wait)
        return not_found(request, "service")
    return render(request, "service.html", {
        "business": business, "visitor": visitor, "detect_tz": not visitor.chosen, "offered": offered,
        "grid": grid, "base": base, "places": places,
        "place": next((p for p in places if p.key == visitor.place), None),
    })


@router.get("/b/{slug}/{service_key}/book")
def booking_form(slug: str, service_key: str, request: Request) -> Response:
    found = service_visit(request, slug, service_key)
    if isinstance(found, Response):
        return found
    business, offered, visitor = found
    at = parse_slot_param(request.query_params.get("at"))
    if at is None:
        return RedirectResponse(visitor.link(f"/b/{business.slug}/{offered.key}"), status_code=303)
    return form_page(request, business, offered, visitor, BookingForm(at, new_form_key()), detect_tz=True)


@router.post("/b/{slug}/{service_key}/book")
async def submit_booking(slug: str, service_key: str, request: Request) -> Response:
    posted = await request.form()
    return await run_in_threadpool(book, request, slug, service_key, posted)


def book(request: Request, slug: str, service_key: str, posted: FormData) -> Response:
    """Book through the core; every outcome is a page, never an exception."""
    service: BookingService = request.app.state.service
    found = service_visit(request, slug, service_key, posted)
    if isinstance(found, Response):
        return found
    business, offered, visitor = found
    form = read_form(posted, offered)
    # the visitor's zone only when they (or their browser) gave it: a default would make a branch's customer
    # read every message in the business's zone, not the branch's
    zone = visitor.zone.key if visitor.chosen else None
    command = booking_command(form, offered, zone, language=visitor.language, location=visitor.place)
    if isinstance(command, Problem):
        return form_page(request, business, offered, visitor, renewed(form), problem=command, status=422)
    sender = PublicSender.at_address(service, business.id, client_key(request))
    # this address's bookings today, whatever contacts it gave (a double submit of one of them: its first answer)
    place = sender.place("bookings", command.idempotency_key)
    if isinstance(place, Rejected):
        return form_page(request, business, offered, visitor, renewed(form),
                         problem=Problem(place.code, place.message), status=429)
    with place:
        if isinstance(command, SeriesCreate):  # "repeat every week, 6 times": the tools' and /v1's own series
            result: Booked | SlotTaken | Rejected | SeriesBooked = service.book_series(business.id, command)
        else:
            result = service.book(business.id, command)
        if (isinstance(result, Booked) or isinstance(result, SeriesBooked) and result.series.series_id is not None) \
                and not result.replayed:
            place.keep()
    match result:
        case SeriesBooked(series):
            return series_page(request, business, offered, visitor, series)
        case Booked(booking):
            log.info("page booking %s for business %s: %s", booking.code, business.id, booking.status)
            return RedirectResponse(after_booking(request.app.state.links, business, booking, visitor),
                                    status_code=303)
        case SlotTaken(_, nearest):
            return form_page(request, business, offered, visitor, renewed(form),
                             taken=alternatives(nearest, visitor.zone, visitor.language), status=409)
        case Rejected(code, message, field):
            return form_page(request, business, offered, visitor, renewed(form),
                             problem=Problem(code, message, field), status=422)


@router.get("/b/{slug}/booked/{token}")
def confirmation(slug: str, token: str, request: Request) -> Response:
    service: BookingService = request.app.state.service
    links: Links = request.app.state.links
    target = links.read("manage", token, service.now())
    if isinstance(target, Rejected):
        return link_refused(request, target, frameable=True)
    business = business_by_slug(service, slug)
    if business is None or business.id != target.business_id:
        return not_found(request, "booking")
    booking = service.get_booking(business.id, target.code)
    if isinstance(booking, Rejected):
        return not_found(request, "booking")
    visitor = visitor_of(request, booking.starts_at.place_zone, language=business.language)
    picked = visitor.language if visitor.language_chosen else None
    return render(request, "booked.html", {
        "business": business, "visitor": visitor, "booking": booking,
        "when": local_when(booking.starts_at.utc, visitor.zone, visitor.language),
        "manage": manage_path(links, business.id, booking, picked),
        "pay": pay_path(links, business.id, booking, picked),
        "calendar": calendar_path(token),
    })


# --- helpers ------------------------------------------------------------------------------------


def service_visit(request: Request, slug: str, key: str, posted: FormData | None = None
                  ) -> tuple[PageBusiness, ServiceView, Visitor] | Response:
    """The business and service a page's URL names and who is visiting, or the not-found page."""
    found = business_and_service(request.app.state.service, slug, key)
    if found is None:
        return not_found(request, "service")
    business, offered = found
    place = (posted if posted is not None else request.query_params).get("location")
    return business, offered, visitor_of(request, branch_zone(offered.locations, place, business.zone), posted,
                                         language=business.language)


def business_and_service(service: BookingService, slug: str, key: str) -> tuple[PageBusiness, ServiceView] | None:
    found = business_offer(service, slug)
    if found is None:
        return None
    business, services = found
    offered = next((s for s in services if s.key == key), None)
    return (business, offered) if offered is not None else None


def form_page(request: Request, business: PageBusiness, offered: ServiceView, visitor: Visitor, form: BookingForm,
              *, problem: Problem | None = None, taken: list | None = None, status: int = 200,
              detect_tz: bool = False) -> Response:
    return render(request, "book_form.html", {
        "business": business, "visitor": visitor, "offered": offered, "form": form,
        "fields": (fields := intake_fields(offered)), "ids": field_ids(fields), "problem": problem, "taken": taken,
        # the longest series this form may book: the service's, at most the public channels' (public_series_max)
        "series_max": min(offered.series_max, request.app.state.settings.public_series_max),
        "detect_tz": detect_tz and not visitor.chosen,
        "when": local_when(form.at, visitor.zone, visitor.language) if form.at else None,
        "base": f"/b/{business.slug}/{offered.key}",
    }, status=status)


def renewed(form: BookingForm) -> BookingForm:
    """The same answers under a fresh idempotency key: the next send is a new request."""
    return BookingForm(form.at, new_form_key(), form.values)


def after_booking(links: Links, business: PageBusiness, booking: BookingView, visitor: Visitor) -> str:
    """Pay the deposit first when one is due; else the confirmation (each in the language picked on the page)."""
    if (pay := pay_path(links, business.id, booking, visitor.language if visitor.language_chosen else None)) is not None:
        return pay
    token = links.token("manage", business.id, booking.code, booking.starts_at.utc)  # the manage link's own
    return visitor.link(f"/b/{business.slug}/booked/{token}")
