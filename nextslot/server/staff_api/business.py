"""/v1/config and /v1/closures: the business's whole configuration, and the days it is closed as a whole."""
from __future__ import annotations

from nextslot.core.business import config_edits
from nextslot.core.business.config_export import exception_views, export_config
from nextslot.schemas.api import ConfigIn, ExceptionIn, ExceptionList
from nextslot.schemas.config import BusinessConfig
from nextslot.server.staff_api.deps import BookingServiceDep, Caller, ok, read
from nextslot.server.staff_api.errors import documented
from nextslot.server.staff_api.routers import staff_router

router = staff_router("/v1", "business")


@router.get("/config")
def get_config(caller: Caller, booking_service: BookingServiceDep) -> BusinessConfig:
    """The business as a config file (`nextslot load-config`) would give it: active resources and services,
    each resource with its own hours, exceptions as exact ranges."""
    config = read(booking_service, export_config, caller.business_id)
    assert config is not None  # the caller's key belongs to it
    return config


@router.put("/config", responses=documented(409))
def put_config(body: ConfigIn, caller: Caller, booking_service: BookingServiceDep) -> BusinessConfig:
    """Apply a whole config to this business, as `nextslot load-config` does: what it lists is replaced,
    resources and services it leaves out are left alone. `business.slug` must be this business's."""
    ok(config_edits.replace_config(booking_service.uow(), caller.business_id, body))
    return get_config(caller, booking_service)


@router.get("/closures")
def list_closures(caller: Caller, booking_service: BookingServiceDep) -> ExceptionList:
    """Business-wide time off (and extra hours), in the business's zone, with ids to delete them by."""
    return ExceptionList(exceptions=exception_views(get_config(caller, booking_service).closures))


@router.post("/closures", status_code=201, responses=documented(409))
def add_closure(body: ExceptionIn, caller: Caller, booking_service: BookingServiceDep) -> ExceptionList:
    """Close the whole business (`closed`), or open it for extra hours (`open`); answers with all closures."""
    ok(config_edits.add_closure(booking_service.uow(), caller.business_id, body))
    return list_closures(caller, booking_service)


@router.delete("/closures/{exception_id}", responses=documented(404, 409))
def delete_closure(exception_id: str, caller: Caller, booking_service: BookingServiceDep) -> ExceptionList:
    ok(config_edits.delete_closure(booking_service.uow(), caller.business_id, exception_id))
    return list_closures(caller, booking_service)
