"""The console's calendar: today at the counter, any day or week, per resource or the whole business.

GET /console/{slug}?date=2026-12-02&view=day|week&resource=dr-lee
    ...&partial=1 answers only the calendar, with an ETag: the open page polls it every couple of seconds,
    so a booking made by an agent or on the public page shows up without a reload (304 when nothing moved).
"""
from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Request
from starlette.responses import Response

from nextslot.core.accounts.staff import SignedIn
from nextslot.core.booking.agenda import agenda
from nextslot.core.booking.search import search_bookings
from nextslot.core.business.catalog import resource_choices
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
    today = booking_service(request).now().astimezone(business.zone).date()
    day = parse_day(params.get("date")) or today
    week = params.get("view") == "week"
    first = day - timedelta(days=day.weekday()) if week else day
    if not (in_range(first) and in_range(first + timedelta(days=6))):  # the week of 1 January 1970 begins in 1969
        day = first = today - timedelta(days=today.weekday()) if week else today
    resource = params.get("resource") or None
    if resource is not None and not KEY.match(resource):
        return notice(request, business, "Not found", "There is no such resource here.", 404, staff=staff)
    service = booking_service(request)
    # a view that may lag a moment (it polls) is read from the replica; writes go to the primary
    view = service.read_availability(agenda, business.id, first, 7 if week else 1, service.now(), resource)
    resources = service.read_availability(resource_choices, business.id)
    listed = service.read_availability(search_bookings, business.id, BookingFilter(
        date_from=first, date_to=first + timedelta(days=6 if week else 0), resource=resource, limit=200))
    if view is None:
        return notice(request, business, "Not found", f"There is no resource '{resource}' here.", 404, staff=staff)
    grid = days_side_by_side(view) if week else resources_side_by_side(view)
    context = {
        "business": business, "staff": staff, "active": "calendar", "grid": grid, "view": view, "week": week,
        "day": day, "today": today, "resource": resource,
        "resources": resources,
        "listed": [] if isinstance(listed, Rejected) else listed.bookings,
        "nav": navigation(day, week, today), "query": query_of(day, week, resource),
    }
    return live_page(request, render, "calendar.html", "_calendar.html", context)


def navigation(day: date, week: bool, today: date) -> dict[str, date]:
    step = timedelta(days=7 if week else 1)
    return {"previous": day - step, "next": day + step, "today": today}


def query_of(day: date, week: bool, resource: str | None) -> str:
    parts = [f"date={day.isoformat()}", f"view={'week' if week else 'day'}"]
    if resource:
        parts.append(f"resource={resource}")
    return "&".join(parts)


