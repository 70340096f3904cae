"""/v1/calendar: a day (or up to a week) per resource: working time, time off, bookings, holds, outside busy time."""
from __future__ import annotations

from typing import Annotated

from fastapi import Query

from nextslot.core.booking.agenda import agenda
from nextslot.core.results import Rejected
from nextslot.schemas.api import CalendarQuery, CalendarView
from nextslot.server.staff_api.deps import BookingServiceDep, Caller
from nextslot.server.staff_api.errors import Refused, documented
from nextslot.server.staff_api.routers import staff_router

router = staff_router("/v1", "calendar")


@router.get("/calendar", responses=documented(404))
def calendar(wanted: Annotated[CalendarQuery, Query()], caller: Caller,
             booking_service: BookingServiceDep) -> CalendarView:
    """Local days of every active resource, of one branch's or of the one asked for, in the zone they work in."""
    view = booking_service.read_availability(agenda, caller.business_id, wanted.date, wanted.days,
                                             booking_service.now(), wanted.resource, wanted.location)
    if isinstance(view, Rejected):
        raise Refused(view)
    return view
