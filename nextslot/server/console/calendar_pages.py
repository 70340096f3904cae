"""The console's calendar: today at the counter, any day or week, per resource or the whole business.

GET /console/{slug}?date=2026-12-02&view=day|week&resource=dr-lee&location=pune
    (a branch's day, with the shared resources, is drawn in its own zone, as is one resource's in its own)
    ...&partial=1 answers only the calendar, with an ETag: the open page polls it every couple of seconds,
    so a booking made by an agent or on the public page shows up without a reload (304 when nothing moved).
"""
from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Request
from starlette.responses import Response

from nextslot.core.accounts.staff import SignedIn
from nextslot.core.booking.agenda import agenda, calendar_zone
from nextslot.core.booking.search import search_bookings
from nextslot.core.business.catalog import location_choices, resource_choices
from nextslot.core.results import Rejected
from nextslot.schemas.api import BookingFilter
from nextslot.schemas.inputs import in_range
from nextslot.server.console.calendar_grid import days_side_by_side, resources_side_by_side
from nextslot.server.console.session import Staff, booking_service, notice, render
from nextslot.server.live_parts import live_page
from nextslot.server.page_context import KEY, PageBusiness
from nextslot.server.page_times import parse_day

router = APIRouter(include_in_schema=False)


@router.get("/console/{slug}")
def calendar_page(request: Request, signed: Staff) -> Response:
    return calendar_response(request, *signed)


def calendar_response(request: Request, business: PageBusiness, staff: SignedIn) -> Response:
    params = request.query_params
    resource = params.get("resource") or None
    location = params.get("location") or None
    if any(key is not None and not KEY.match(key) for key in (resource, location)):
        return notice(request, business, "Not found", "There is no such resource or branch here.", 404, staff=staff)
    service = booking_service(request)
    zone = service.read_availability(calendar_zone, business.id, resource, location)
    if isinstance(zone, Rejected):
        return notice(request, business, "Not found", zone.message, 404, staff=staff)
    today = service.now().astimezone(zone).date()  # the day its staff are living, at a branch in another zone too
    day = parse_day(params.get("date")) or today
    week = params.get("view") == "week"
    first = day - timedelta(days=day.weekday()) if week else day
    if not (in_range(first) and in_range(first + timedelta(days=6))):  # the week of 1 January 1970 begins in 1969
        day = first = today - timedelta(days=today.weekday()) if week else today
    # a view that may lag a moment (it polls) is read from the replica; writes go to the primary
    view = service.read_availability(agenda, business.id, first, 7 if week else 1, service.now(), resource, location)
    if isinstance(view, Rejected):  # gone between the two reads
        return notice(request, business, "Not found", view.message, 404, staff=staff)
    listed = service.read_availability(search_bookings, business.id, BookingFilter(
        date_from=first, date_to=first + timedelta(days=6 if week else 0), resource=resource, location=location,
        limit=200))
    grid = days_side_by_side(view) if week else resources_side_by_side(view)
    context = {
        "business": business, "staff": staff, "active": "calendar", "grid": grid, "view": view, "week": week,
        "day": day, "today": today, "resource": resource, "location": location, "zone": zone,
        "resources": service.read_availability(resource_choices, business.id),
        "places": service.read_availability(location_choices, business.id),
        "listed": [] if isinstance(listed, Rejected) else listed.bookings,
        "nav": navigation(day, week, today), "query": query_of(day, week, resource, location),
    }
    return live_page(request, render, "calendar.html", "_calendar.html", context)


def navigation(day: date, week: bool, today: date) -> dict[str, date]:
    step = timedelta(days=7 if week else 1)
    return {"previous": day - step, "next": day + step, "today": today}


def query_of(day: date, week: bool, resource: str | None, location: str | None) -> str:
    parts = [f"date={day.isoformat()}", f"view={'week' if week else 'day'}"]
    if resource:
        parts.append(f"resource={resource}")
    if location:
        parts.append(f"location={location}")
    return "&".join(parts)


