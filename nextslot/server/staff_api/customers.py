"""/v1/customers, /v1/waitlist and /v1/slots: a customer's history, the waitlist, and open times to offer."""
from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from nextslot.core.results import Slots
from nextslot.schemas.commands import DayOrTime, SlotQuery, WaitlistJoin
from nextslot.schemas.inputs import Input
from nextslot.schemas.views import CustomerHistory, SlotView, WaitlistView
from nextslot.server.staff_api.deps import BookingServiceDep, Caller, ok
from nextslot.server.staff_api.errors import documented
from nextslot.server.staff_api.routers import staff_router

router = staff_router("/v1")


class HistoryQuery(Input):
    phone: str | None = Field(None, max_length=40, description="The customer's phone (local format is fine)")
    email: str | None = Field(None, max_length=320)
    limit: int | None = Field(None, ge=1, le=1000, description="Only the latest events")


@router.get("/customers/history", tags=["customers"], responses=documented(404))
def customer_history(wanted: Annotated[HistoryQuery, Query()], caller: Caller,
                     booking_service: BookingServiceDep) -> CustomerHistory:
    """Every booking, change, deposit, message attempt, reply and waitlist event of one customer, oldest first."""
    return ok(booking_service.customer_history(caller.business_id, wanted.phone, wanted.email, wanted.limit))


class SlotsAnswer(BaseModel):
    slots: list[SlotView]


class SlotsQuery(Input):
    service: str = Field(max_length=64)
    starts_from: DayOrTime | None = Field(None, description="An instant, or a date: from the first instant of that "
                                                            "local day in the branch's zone, else the business's")
    until: DayOrTime | None = Field(None, description="Exclusive; a date: up to the first instant of that local day")
    customer_timezone: str | None = Field(None, max_length=64)
    resource: str | None = Field(None, max_length=64, description="Only with this resource (key)")
    limit: int = Field(50, ge=1, le=1000)


@router.get("/slots", tags=["bookings"], responses=documented(404, 429))
def open_slots(wanted: Annotated[SlotsQuery, Query()], caller: Caller,
               booking_service: BookingServiceDep) -> SlotsAnswer:
    """Open start times for a service (default: the next 7 days), as every channel sees them."""
    found = ok(booking_service.find_slots(caller.business_id, SlotQuery(
        service=wanted.service, starts_from=wanted.starts_from, until=wanted.until,
        customer_timezone=wanted.customer_timezone, resources=[wanted.resource] if wanted.resource else [],
        limit=wanted.limit)))
    assert isinstance(found, Slots)
    return SlotsAnswer(slots=found.slots)


class StaffWaitlistJoin(WaitlistJoin):
    source: str = Field("staff", max_length=32)


@router.post("/waitlist", tags=["waitlist"], status_code=201, responses=documented(404))
def join_waitlist(body: StaffWaitlistJoin, caller: Caller, booking_service: BookingServiceDep) -> WaitlistView:
    """Put a customer on the waitlist; they are offered freed times that fit (see the README)."""
    return ok(booking_service.join_waitlist(caller.business_id, body.model_copy(update={"actor": caller.name})))
