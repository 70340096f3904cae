"""What /v1/resources and /v1/services share: an entry found by the URL's key, and a PUT that creates or
replaces one (201 when it is new), both through the config (`config_edits`)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from fastapi import Response

from nextslot.core.business import config_edits
from nextslot.core.results import Rejected
from nextslot.server.staff_api.deps import BookingServiceDep, ok, read
from nextslot.server.staff_api.errors import Refused

T = TypeVar("T")


class Keyed(Protocol):
    key: str


def find_entry(booking_service: BookingServiceDep, entries: Callable[..., list[T]], kind: str, business_id: int,
               key: str) -> T:
    """The `kind` ('resource', 'service') with this key, or 404."""
    found = read(booking_service, entries, business_id, key)
    if not found:
        raise Refused(config_edits.unknown(kind, key))
    return found[0]


def put_entry(put: Callable[..., Any], booking_service: BookingServiceDep, business_id: int, key: str, body: Keyed,
              response: Response) -> None:
    """Create or replace the entry the URL names (refused when the body names another); 201 when it is new."""
    if body.key != key:
        raise Refused(Rejected("key_mismatch", f"The body is for '{body.key}', the URL for '{key}'.", "key"))
    if ok(put(booking_service.uow(), business_id, body)):
        response.status_code = 201
