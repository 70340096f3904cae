"""Customers: found or made by phone in one statement, answered as plain values (no ORM object to track)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from nextslot.storage import queries
from nextslot.storage.tables import Customer


@dataclass(frozen=True)
class StoredCustomer:
    """A customer row as the transaction left it: what a booking's view shows of its customer."""

    id: int
    name: str
    phone: str | None
    email: str | None
    timezone: str | None
    no_show_count: int
    language: str

    @classmethod
    def of(cls, row: Customer) -> StoredCustomer:
        return cls(row.id, row.name, row.phone, row.email, row.timezone, row.no_show_count, row.language)


@dataclass(frozen=True)
class Contact:
    """What a caller told us about themselves; None (or empty) leaves a stored customer's value as it was."""

    name: str
    email: str | None
    timezone: str | None
    language: str  # written for a new customer
    channels: list[str] | None  # None: the default channels for a new customer, the stored ones otherwise
    language_stated: bool  # the caller stated the language (a page's, a tool's), not the schema's default
    # the business's own staff said so: only then may the email and zone replace (or fill in) a known customer's;
    # anyone else's name a new customer only (a stranger booking with someone's phone must not tie her to their
    # email, nor move the clock of her reminders)
    vouched: bool
    # the staff, or the phone's owner herself (her own number wrote): only then may the name, language and channels
    # replace a known customer's (a stranger's would rename her, and speak every reminder in another language)
    owner: bool


# Plain SQL for psycopg (`queries.driver_rows`): concurrent first bookings by one new customer meet on the unique
# index and one row is made; what the caller just told us is written over what was stored only when it is the
# customer's own word (a name, language and channels: the owner's or the staff's; an email and a zone: vouched), and
# the row comes back.
UPSERT_BY_PHONE = """
insert into customers as c (business_id, phone, name, email, timezone, language, channels, no_show_count)
values (%(business_id)s, %(phone)s, %(name)s, %(email)s, %(timezone)s, %(language)s, cast(%(channels)s as jsonb), 0)
on conflict (business_id, phone) where phone is not null do update set
  name = coalesce(%(fresh_name)s, c.name), email = coalesce(%(fresh_email)s, c.email),
  timezone = coalesce(%(fresh_timezone)s, c.timezone), language = coalesce(%(fresh_language)s, c.language),
  channels = coalesce(cast(%(fresh_channels)s as jsonb), c.channels)
returning id, name, phone, email, timezone, no_show_count, language
"""

DEFAULT_CHANNELS = ["whatsapp", "sms", "email"]


class CustomerRepository:
    def __init__(self, session: Session):
        self.session = session

    def upsert_by_phone(self, business_id: int, phone: str, given: Contact) -> StoredCustomer:
        """The business's customer with this phone, made or updated from what was given, in one round trip."""
        params: dict[str, Any] = {
            "business_id": business_id, "phone": phone, "name": given.name, "email": given.email,
            "timezone": given.timezone, "language": given.language,
            "channels": json.dumps(given.channels or DEFAULT_CHANNELS),
            "fresh_name": (given.name or None) if given.owner else None,
            "fresh_email": (given.email or None) if given.vouched else None,
            "fresh_timezone": (given.timezone or None) if given.vouched else None,
            "fresh_language": (given.language or None) if given.language_stated and given.owner else None,
            "fresh_channels": json.dumps(given.channels) if given.channels and given.owner else None,
        }
        row = queries.driver_rows(self.session, UPSERT_BY_PHONE, params)[0]
        return StoredCustomer(*row)
