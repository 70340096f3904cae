"""/v1/bookings: find, read, make and change bookings, every write through the BookingService like any channel's.

Writes carry source "staff" and the API key's name as the actor. An `Idempotency-Key` header makes a
retry replay the first answer instead of writing twice. A lost race is not a failure: 409 with the
nearest openings in `alternatives`.
"""
from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Header, Query, Response

from nextslot.core.booking.refusals import unknown_booking
from nextslot.core.booking.search import search_bookings
from nextslot.core.results import Booked, BookingResult, ChangeResult, Rejected, SlotTaken
from nextslot.schemas.api import (
    BookingFilter,
    BookingHistory,
    BookingPage,
    NotificationLog,
    StaffBookingCreate,
    StaffChange,
    StaffReschedule,
    StaffSeriesCreate,
)
from nextslot.schemas.commands import BookingChange, BookingCreate, BookingReschedule, SeriesCreate
from nextslot.schemas.views import BookingView, SeriesView
from nextslot.server.staff_api.deps import BookingServiceDep, Caller, ok, read
from nextslot.server.staff_api.errors import Refused, documented
from nextslot.server.staff_api.routers import staff_router

router = staff_router("/v1/bookings", "bookings")
T = TypeVar("T")
SOURCE = "staff"
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=200,
    description="Any unique string per intended write: a retry with the same key gets the first answer back.")]
REPLAYED = "Idempotent-Replayed"  # set on an answer replayed for a retry


@router.get("")
def list_bookings(wanted: Annotated[BookingFilter, Query()], caller: Caller,
                  booking_service: BookingServiceDep) -> BookingPage:
    """Bookings matching every filter given, soonest first, a page at a time."""
    return ok(read(booking_service, search_bookings, caller.business_id, wanted))


@router.post("", status_code=201, responses=documented(409))
def create_booking(body: StaffBookingCreate, caller: Caller, booking_service: BookingServiceDep, response: Response,
                   idempotency_key: IdempotencyKey = None) -> BookingView:
    """Book a slot for a customer (or convert a hold). A service with a deposit answers `pending_payment`."""
    cmd = BookingCreate(**body.model_dump(), source=SOURCE, actor=caller.name, idempotency_key=idempotency_key)
    return booked(booking_service.book(caller.business_id, cmd), response)


@router.post("/series", status_code=201, responses=documented(409))
def create_series(body: StaffSeriesCreate, caller: Caller, booking_service: BookingServiceDep, response: Response,
                  idempotency_key: IdempotencyKey = None) -> SeriesView:
    """Book a recurring series ("every Tuesday at 10 for 6 weeks"): `mode` all_or_none, skip_taken or
    nearest_free. Each occurrence says what became of it; 200 with `series_id` null when nothing was booked."""
    cmd = SeriesCreate(**body.model_dump(), source=SOURCE, actor=caller.name, idempotency_key=idempotency_key)
    made = ok(booking_service.book_series(caller.business_id, cmd))
    if made.replayed:
        response.headers[REPLAYED] = "true"
    if made.series.series_id is None:
        response.status_code = 200
    return made.series


@router.post("/{code}/cancel-series", responses=documented(404, 409))
def cancel_series(code: str, caller: Caller, booking_service: BookingServiceDep, body: StaffChange | None = None,
                  idempotency_key: IdempotencyKey = None) -> list[BookingView]:
    """Cancel this occurrence of a series and every later one, in one transaction."""
    return ok(booking_service.cancel_series(caller.business_id, change_of(code, body, caller.name,
                                                                          idempotency_key))).bookings


@router.post("/{code}/reschedule-series", responses=documented(404, 409))
def reschedule_series(code: str, body: StaffReschedule, caller: Caller, booking_service: BookingServiceDep,
                      idempotency_key: IdempotencyKey = None) -> list[BookingView]:
    """Move this occurrence to `starts_at` and every later one by the same change of day and time, all or none."""
    cmd = BookingReschedule(code=code, **body.model_dump(), source=SOURCE, actor=caller.name,
                            idempotency_key=idempotency_key)
    result = booking_service.move_series(caller.business_id, cmd)
    if isinstance(result, SlotTaken):
        taken(result)
    return ok(result).bookings


@router.get("/{code}", responses=documented(404))
def get_booking(code: str, caller: Caller, booking_service: BookingServiceDep) -> BookingView:
    return ok(booking_service.get_booking(caller.business_id, code))


@router.post("/{code}/reschedule", responses=documented(404, 409))
def reschedule_booking(code: str, body: StaffReschedule, caller: Caller,
                       booking_service: BookingServiceDep, response: Response,
                       idempotency_key: IdempotencyKey = None) -> BookingView:
    """Move the booking; on a lost race it stays as it was and the nearest openings come back (409)."""
    cmd = BookingReschedule(code=code, **body.model_dump(), source=SOURCE, actor=caller.name,
                            idempotency_key=idempotency_key)
    return booked(booking_service.reschedule(caller.business_id, cmd), response)


@router.post("/{code}/cancel", responses=documented(404, 409))
def cancel_booking(code: str, caller: Caller, booking_service: BookingServiceDep, body: StaffChange | None = None,
                   idempotency_key: IdempotencyKey = None) -> BookingView:
    """Cancel and free the time at once; cancelling again answers the same."""
    return changed(booking_service.cancel(caller.business_id, change_of(code, body, caller.name, idempotency_key)))


@router.post("/{code}/confirm", responses=documented(404, 409))
def confirm_booking(code: str, caller: Caller, booking_service: BookingServiceDep, body: StaffChange | None = None,
                    idempotency_key: IdempotencyKey = None) -> BookingView:
    """Record that the customer confirmed they will come."""
    return changed(booking_service.confirm(caller.business_id, change_of(code, body, caller.name, idempotency_key)))


@router.post("/{code}/no-show", responses=documented(404, 409))
def mark_no_show(code: str, caller: Caller, booking_service: BookingServiceDep, body: StaffChange | None = None,
                 idempotency_key: IdempotencyKey = None) -> BookingView:
    """Record that the customer did not come (only once the appointment has started)."""
    change = change_of(code, body, caller.name, idempotency_key)
    return changed(booking_service.mark_no_show(caller.business_id, change))


@router.get("/{code}/history", responses=documented(404))
def get_history(code: str, caller: Caller, booking_service: BookingServiceDep) -> BookingHistory:
    """Every change, oldest first: who, when, through which channel, from what to what."""
    return found(booking_service.booking_history(caller.business_id, code), code)


@router.get("/{code}/notifications", responses=documented(404))
def get_notifications(code: str, caller: Caller, booking_service: BookingServiceDep) -> NotificationLog:
    """Every message about the booking with each delivery attempt (contacts masked), and the customer's replies."""
    return found(booking_service.notification_log(caller.business_id, code), code)


def change_of(code: str, body: StaffChange | None, actor: str, idempotency_key: str | None) -> BookingChange:
    given = body.model_dump() if body else {}
    return BookingChange(code=code, **given, source=SOURCE, actor=actor, idempotency_key=idempotency_key)


def booked(result: BookingResult, response: Response) -> BookingView:
    match result:
        case Booked(view, replayed):
            if replayed:
                response.headers[REPLAYED] = "true"
            return view
        case SlotTaken() as lost:
            taken(lost)
    return ok(result)


def taken(lost: SlotTaken) -> None:
    raise Refused(Rejected("slot_taken", "That time has just been taken; `alternatives` lists the nearest "
                                         "openings.", "starts_at"), 409,
                  {"requested": lost.requested.isoformat(),
                   "alternatives": [a.model_dump(mode="json") for a in lost.alternatives]})


def changed(result: ChangeResult) -> BookingView:
    return ok(result).booking


def found(result: T | None, code: str) -> T:
    if result is None:
        raise Refused(unknown_booking(code))
    return result
