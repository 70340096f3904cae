"""/v1/calendars: the staff's own calendars. Connect a CalDAV calendar (Google and Microsoft 365 connect with
their consent pages, in the console), see how each is doing, disconnect one. Passwords are never answered back."""
from __future__ import annotations

from datetime import datetime

from fastapi import Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from nextslot.calendars.connections import add_calendar, disconnect, staff_calendars
from nextslot.schemas.inputs import Input
from nextslot.server.staff_api.deps import BookingServiceDep, Caller, ok
from nextslot.server.staff_api.errors import documented
from nextslot.server.staff_api.routers import staff_router

router = staff_router("/v1/calendars", "calendars")


class CalDavIn(Input):
    resource: str = Field(max_length=64, description="The staff member's (or room's) key")
    url: str = Field(max_length=2000, description="The calendar collection's CalDAV URL (https)")
    username: str | None = Field(None, max_length=200)
    password: str | None = Field(None, max_length=200, description="An app password is best; never answered back")
    write_back: bool = Field(True, description="Write this resource's bookings into the calendar")


class CalendarOut(BaseModel):
    id: int
    resource: str
    provider: str = Field(description="caldav, google or microsoft")
    account: str | None = Field(description="The connected account (Google, Microsoft) or CalDAV user name")
    status: str = Field(description="active, or needs_reconnect: the provider refused the grant; the last busy "
                                    "time still blocks bookings")
    last_synced_at: datetime | None
    last_error: str | None
    writes_waiting: int
    writes_failed: int
    push: bool = Field(description="The provider pushes changes (read within seconds)")


class Added(BaseModel):
    id: int


@router.get("")
def calendars(caller: Caller, booking_service: BookingServiceDep) -> list[CalendarOut]:
    return [CalendarOut(id=c.id, resource=p.key, provider=c.provider, account=c.account, status=c.status,
                        last_synced_at=c.last_synced_at, last_error=c.last_error, writes_waiting=c.writes_waiting,
                        writes_failed=c.writes_failed, push=c.pushed)
            for p in staff_calendars(booking_service.session_factory, caller.business_id, True, "")
            for c in p.calendars]


@router.post("", status_code=201, responses=documented(422))
def add_caldav(body: CalDavIn, caller: Caller, booking_service: BookingServiceDep, request: Request) -> Added:
    """Connect a CalDAV calendar; the scheduler reads it within its sync interval. An internal address
    (loopback, private, link-local) is refused (422) unless the server allows private targets."""
    added = ok(add_calendar(booking_service.uow(), caller.business_id, body.resource, body.url, body.username,
                            body.password, request.app.state.settings.allow_private_targets, body.write_back,
                            box=request.app.state.calendars.box))
    return Added(id=added)


@router.delete("/{calendar_id}", status_code=204, responses=documented(404))
async def remove(calendar_id: int, caller: Caller, booking_service: BookingServiceDep, request: Request) -> None:
    """Disconnect: the push channel is stopped and a Google grant revoked (best effort); the stored events and
    busy time go. Bookings already written into the calendar stay there."""
    ok(await run_in_threadpool(disconnect, booking_service.session_factory, request.app.state.calendars,
                               caller.business_id, calendar_id, True, "", booking_service.now()))
