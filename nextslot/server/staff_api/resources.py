"""/v1/resources: staff, rooms and devices, their weekly hours and their exceptions (time off, extra hours).

Every edit goes through the config (`booking_service.config_edits`): the same checks as `nextslot load-config`.
"""
from __future__ import annotations

from fastapi import APIRouter, Response

from nextslot.core.business import config_edits
from nextslot.core.business.config_export import exception_views, resource_entries
from nextslot.core.results import Rejected
from nextslot.schemas.api import ExceptionIn, ExceptionList, ResourceEntry, ResourceHours, ResourceIn, ResourceList
from nextslot.server.staff_api.deps import Caller, BookingServiceDep, KeyCheckedRoute, ok, read
from nextslot.server.staff_api.errors import Refused, documented

router = APIRouter(prefix="/v1/resources", tags=["resources"], responses=documented(400, 401, 422),
                   route_class=KeyCheckedRoute)  # the key before the body


@router.get("")
def list_resources(caller: Caller, booking_service: BookingServiceDep) -> ResourceList:
    """Every resource, active or not, in the order they were added."""
    return ResourceList(resources=read(booking_service, resource_entries, caller.business_id))


@router.get("/{key}", responses=documented(404))
def get_resource(key: str, caller: Caller, booking_service: BookingServiceDep) -> ResourceEntry:
    return entry(booking_service, caller.business_id, key)


@router.put("/{key}", responses={201: {"model": ResourceEntry, "description": "Created"}, **documented(404, 409)})
def put_resource(key: str, body: ResourceIn, caller: Caller,
                 booking_service: BookingServiceDep, response: Response) -> ResourceEntry:
    """Create or replace a resource, and make it active. `hours` and `exceptions` left out are kept.
    Cutting the capacity below what is already booked is refused (409 `capacity_below_bookings`)."""
    if body.key != key:
        raise Refused(Rejected("key_mismatch", f"The body is for '{body.key}', the URL for '{key}'.", "key"))
    if ok(config_edits.put_resource(booking_service.uow(), caller.business_id, body)):
        response.status_code = 201
    return entry(booking_service, caller.business_id, key)


@router.post("/{key}/deactivate", responses=documented(404, 409))
def deactivate_resource(key: str, caller: Caller, booking_service: BookingServiceDep) -> ResourceEntry:
    """Offer the resource to no one from now on; its bookings stay. Refused (409 `resource_in_use`) while an
    active service requires it."""
    ok(config_edits.deactivate_resource(booking_service.uow(), caller.business_id, key))
    return entry(booking_service, caller.business_id, key)


@router.get("/{key}/hours", responses=documented(404))
def get_hours(key: str, caller: Caller, booking_service: BookingServiceDep) -> ResourceHours:
    return ResourceHours(hours=entry(booking_service, caller.business_id, key).hours or {})


@router.put("/{key}/hours", responses=documented(404, 409))
def put_hours(key: str, body: ResourceHours, caller: Caller, booking_service: BookingServiceDep) -> ResourceHours:
    """Replace the weekly hours (in the resource's zone); days left out are closed."""
    ok(config_edits.set_hours(booking_service.uow(), caller.business_id, key, body.hours))
    return get_hours(key, caller, booking_service)


@router.get("/{key}/exceptions", responses=documented(404))
def list_exceptions(key: str, caller: Caller, booking_service: BookingServiceDep) -> ExceptionList:
    """Time off and extra hours, by start, with ids to delete them by."""
    return ExceptionList(exceptions=exception_views(entry(booking_service, caller.business_id, key).exceptions))


@router.post("/{key}/exceptions", status_code=201, responses=documented(404, 409))
def add_exception(key: str, body: ExceptionIn, caller: Caller, booking_service: BookingServiceDep) -> ExceptionList:
    """Add time off (`closed`) or extra hours (`open`); answers with all the resource's exceptions."""
    ok(config_edits.add_exception(booking_service.uow(), caller.business_id, key, body))
    return list_exceptions(key, caller, booking_service)


@router.delete("/{key}/exceptions/{exception_id}", responses=documented(404, 409))
def delete_exception(key: str, exception_id: str, caller: Caller, booking_service: BookingServiceDep) -> ExceptionList:
    """Remove one exception; answers with those left."""
    ok(config_edits.delete_exception(booking_service.uow(), caller.business_id, key, exception_id))
    return list_exceptions(key, caller, booking_service)


def entry(booking_service: BookingServiceDep, business_id: int, key: str) -> ResourceEntry:
    found = read(booking_service, resource_entries, business_id, key)
    if not found:
        raise Refused(config_edits.unknown("resource", key))
    return found[0]
