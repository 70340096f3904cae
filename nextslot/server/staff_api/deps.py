"""What every /v1 route depends on: the booking service, and the caller, whose business API key (the bearer
token) decides the business every query is scoped to."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nextslot.core.key_holders import KeyHolder, key_holder
from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.server.staff_api.errors import Refused

T = TypeVar("T")
bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="A business API key, `nsk_...` (create one with `nextslot api-key SLUG`).")


def booking_service(request: Request) -> BookingService:
    return request.app.state.service


def calling_key(
    service: Annotated[BookingService, Depends(booking_service)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> KeyHolder:
    """The live key's holder, or 401 (missing, unknown and revoked keys alike)."""
    holder = key_holder(service.uow(), credentials.credentials) if credentials else None
    if holder is None:
        raise Refused(Rejected("unauthorized", "Send a live business API key: Authorization: Bearer nsk_..."),
                      401, headers={"WWW-Authenticate": "Bearer"})
    return holder


def read(service: BookingService, query: Callable[..., T], *args: Any) -> T:
    """Run a core read query in a transaction of its own."""
    with service.uow() as uow:
        return query(uow.session, *args)


def ok(result: T | Rejected) -> T:
    """The result, or the rejection answered as an error."""
    if isinstance(result, Rejected):
        raise Refused(result)
    return result


Core = Annotated[BookingService, Depends(booking_service)]  # the booking core, for short
Caller = Annotated[KeyHolder, Depends(calling_key)]
