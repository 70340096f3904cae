"""/v1/webhooks: where the business's booking events go; a disabled endpoint shows why, and can be re-enabled."""
from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel, Field

from nextslot.schemas.events import EventType
from nextslot.schemas.inputs import Input
from nextslot.server.staff_api.deps import BookingServiceDep, Caller, ok
from nextslot.server.staff_api.errors import documented
from nextslot.server.staff_api.routers import staff_router
from nextslot.webhooks.endpoints import add_endpoint, list_endpoints, set_active

router = staff_router("/v1/webhooks", "webhooks")


class EndpointIn(Input):
    url: str = Field(max_length=2000, description="http(s) URL that receives the signed POSTs")
    event_types: list[EventType] | None = Field(None, description="Default: every event type")


class EndpointOut(BaseModel):
    id: int
    url: str
    event_types: list[str]
    active: bool
    disabled_reason: str | None = Field(description="Set when deliveries stopped after a day of failures")
    failing_deliveries: int


class Registered(BaseModel):
    id: int
    secret: str = Field(description="Shown once: check Nextslot-Signature with it (see the README)")


class Switch(Input):
    active: bool


@router.get("")
def endpoints(caller: Caller, booking_service: BookingServiceDep) -> list[EndpointOut]:
    return [EndpointOut(**vars(e)) for e in list_endpoints(booking_service.uow(), caller.business_id)]


@router.post("", status_code=201, responses=documented(409))
def register(body: EndpointIn, caller: Caller, booking_service: BookingServiceDep, request: Request) -> Registered:
    """Register an endpoint; one on an internal address (loopback, private, link-local) is refused (422), and one
    past the business's most active endpoints (409 `too_many_endpoints`)."""
    settings = request.app.state.settings
    added = ok(add_endpoint(booking_service.uow(), caller.business_id, body.url, list(body.event_types or []),
                            settings.allow_private_targets, settings.webhook_endpoints_max))
    return Registered(id=added.id, secret=added.secret)


@router.put("/{endpoint_id}", responses=documented(404, 409))
def switch(endpoint_id: int, body: Switch, caller: Caller, booking_service: BookingServiceDep,
           request: Request) -> EndpointOut:
    """Turn an endpoint off, or on again once the receiver is fixed (deliveries resume with new events); on again
    only while the business has room for another active endpoint (409 `too_many_endpoints`)."""
    switched = set_active(booking_service.uow(), caller.business_id, endpoint_id, body.active,
                          request.app.state.settings.webhook_endpoints_max)
    return EndpointOut(**vars(ok(switched)))
