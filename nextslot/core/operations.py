"""What operating the server asks of the database: is it there."""
from __future__ import annotations

from sqlalchemy import text

from nextslot.core.service import BookingService


def ping(service: BookingService) -> None:
    """Raise unless the database answers a query (within five seconds)."""
    with service.uow() as uow:
        uow.session.execute(text("set local statement_timeout = 5000"))
        uow.session.execute(text("select 1"))
