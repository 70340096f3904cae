"""The least a race-free booking costs, in bare SQL straight through psycopg: the baseline the core is
measured against in the same run (one client, and several clients at once)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from evals.bench_figures import BenchFailure

BARE_SQL = {
    "lock": "select id from resources where id = any(%s::bigint[]) order by id for no key update",
    "overlap": "select 1 from claims where resource_id = any(%s::bigint[]) and active and during && tstzrange(%s, %s)"
               " and (expires_at is null or expires_at > now()) limit 1",
    "booking": "insert into bookings (business_id, code, service_id, customer_id, status, starts_at, ends_at, source,"
               " intake, notes) values (%s, %s, %s, %s, 'booked', %s, %s, 'bench', '{}', '') returning id",
    "claims": "insert into claims (business_id, resource_id, booking_id, during, active, exclusive)"
              " select %s, unnest(%s::bigint[]), %s, tstzrange(%s, %s), true, true",
}


@dataclass(frozen=True)
class OpenSlot:
    start: datetime
    end: datetime  # of the service, without buffers
    occupied: tuple[datetime, datetime]
    resource_ids: tuple[int, ...]


@dataclass(frozen=True)
class BareBooking:
    """One booking a bare-SQL client makes: what `bare_book` needs, as plain data a child process can take."""

    business_id: int
    service_id: int
    customer_id: int
    slot: OpenSlot
    code: str


def bare_book(conn: psycopg.Connection, business_id: int, service_id: int, customer_id: int, slot: OpenSlot,
              code: str) -> None:
    """The least a race-free booking costs: one transaction, resources locked in id order."""
    ids = sorted(slot.resource_ids)
    with conn.transaction():
        conn.execute(BARE_SQL["lock"], (ids,))
        if conn.execute(BARE_SQL["overlap"], (ids, *slot.occupied)).fetchone():
            raise BenchFailure(f"bare SQL found {slot.start} taken")
        booking_id = conn.execute(BARE_SQL["booking"], (business_id, code, service_id, customer_id, slot.start,
                                                        slot.end)).fetchone()[0]
        conn.execute(BARE_SQL["claims"], (business_id, ids, booking_id, *slot.occupied))


def book_bare(conn: psycopg.Connection, booking: BareBooking) -> None:
    bare_book(conn, booking.business_id, booking.service_id, booking.customer_id, booking.slot, booking.code)
