"""Finding a business by its id or the slug in its public URLs, as a plain value the edges can keep."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select

from nextslot.storage import queries
from nextslot.storage.tables import Business
from nextslot.storage.uow import SqlAlchemyUnitOfWork


@dataclass(frozen=True)
class BusinessRecord:
    id: int
    slug: str
    name: str
    timezone: str
    details: dict[str, Any] = field(default_factory=dict)  # free-form: address, phone, policies, page branding


def business_by_slug(uow: SqlAlchemyUnitOfWork, slug: str) -> BusinessRecord | None:
    with uow:
        uow.reads_first()  # one read: no transaction around it
        found = queries.business_row_by_slug(uow.session, slug)
    return None if found is None else record_of_row(found)


class BusinessFields(Protocol):
    """A business as the ORM loads it or as a plain statement reads it (`queries.BusinessRow`)."""

    @property
    def id(self) -> int: ...
    @property
    def slug(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def details(self) -> dict[str, Any] | None: ...


def record_of_row(row: BusinessFields) -> BusinessRecord:
    return BusinessRecord(row.id, row.slug, row.name, row.timezone, dict(row.details or {}))


def business_by_id(uow: SqlAlchemyUnitOfWork, business_id: int) -> BusinessRecord | None:
    with uow:
        found = queries.business(uow.session, business_id)
        return None if found is None else record_of_row(found)


def sole_business_slug(uow: SqlAlchemyUnitOfWork) -> str | None:
    """The slug of the only business on this server, or None when there are none or several."""
    with uow:
        slugs = uow.session.scalars(select(Business.slug).limit(2)).all()
        return slugs[0] if len(slugs) == 1 else None

