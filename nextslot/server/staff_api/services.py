"""/v1/services: what the business offers, with its rules, intake questions and deposit, as in the config file."""
from __future__ import annotations

from fastapi import APIRouter, Response

from nextslot.core.business import config_edits
from nextslot.core.business.config_export import service_entries
from nextslot.core.results import Rejected
from nextslot.schemas.api import ServiceEntry, ServiceList
from nextslot.schemas.config import ServiceConfig
from nextslot.server.staff_api.deps import Caller, BookingServiceDep, KeyCheckedRoute, ok, read
from nextslot.server.staff_api.errors import Refused, documented

router = APIRouter(prefix="/v1/services", tags=["services"], responses=documented(400, 401, 422),
                   route_class=KeyCheckedRoute)  # the key before the body


@router.get("")
def list_services(caller: Caller, booking_service: BookingServiceDep) -> ServiceList:
    """Every booking_service, active or not."""
    return ServiceList(services=read(booking_service, service_entries, caller.business_id))


@router.get("/{key}", responses=documented(404))
def get_service(key: str, caller: Caller, booking_service: BookingServiceDep) -> ServiceEntry:
    return entry(booking_service, caller.business_id, key)


@router.put("/{key}", responses={201: {"model": ServiceEntry, "description": "Created"}, **documented(404, 409)})
def put_service(key: str, body: ServiceConfig, caller: Caller,
                booking_service: BookingServiceDep, response: Response) -> ServiceEntry:
    """Create or replace a service (requirements, intake questions, deposit), and make it active.
    Its requirements must name active resources."""
    if body.key != key:
        raise Refused(Rejected("key_mismatch", f"The body is for '{body.key}', the URL for '{key}'.", "key"))
    if ok(config_edits.put_service(booking_service.uow(), caller.business_id, body)):
        response.status_code = 201
    return entry(booking_service, caller.business_id, key)


@router.post("/{key}/deactivate", responses=documented(404, 409))
def deactivate_service(key: str, caller: Caller, booking_service: BookingServiceDep) -> ServiceEntry:
    """Stop offering the service; its bookings stay. PUT makes it active again."""
    ok(config_edits.deactivate_service(booking_service.uow(), caller.business_id, key))
    return entry(booking_service, caller.business_id, key)


def entry(booking_service: BookingServiceDep, business_id: int, key: str) -> ServiceEntry:
    found = read(booking_service, service_entries, business_id, key)
    if not found:
        raise Refused(config_edits.unknown("service", key))
    return found[0]
