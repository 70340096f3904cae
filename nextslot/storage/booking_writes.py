"""A new booking written in one statement: the booking row, its claims, its history row, its outbox messages, its
calendar writes and its idempotency key's first result, all or (but for the booking and claims, which the caller
undoes before trying again) none.

The claims are the guarantee, as everywhere: the resources are locked in id order first (racers queue behind the
winner instead of deadlocking), then `INSERT ... ON CONFLICT DO NOTHING` against the exclusion constraint. A claim
that meets a committed one is simply not inserted, so no savepoint is needed to keep the transaction usable: fewer
claims back than asked means another booking won, and nothing else was written. Only for capacity-1 resources: a
capacity > 1 resource's trigger raises instead, which `ClaimRepository.claim_all` catches in a savepoint.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.errors import DeadlockDetected, ExclusionViolation
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from nextslot.storage import queries
from nextslot.telemetry.context import current_request_id


@dataclass(frozen=True)
class NewBooking:
    """A booking about to be written, as plain values (the view of a new booking is built from these)."""

    business_id: int
    code: str
    service_id: int
    customer_id: int
    status: str
    starts_at: datetime
    ends_at: datetime
    source: str
    intake: dict[str, Any]
    notes: str
    party_size: int
    updated_at: datetime
    id: int = 0  # 0 until written
    series_id: int | None = None
    contact_name: str | None = None  # the name its caller gave (storage/tables.py: Booking)


@dataclass(frozen=True)
class Message:
    """One outbox row about the booking, for its customer."""

    kind: str
    due_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class Written:
    """What the statement did. booking_id None: the code was taken (nothing written; draw another). Otherwise the
    booking row is in; `won` says whether every claim went in (and with them history, messages, calendar writes and
    the idempotency result). A lost race leaves the booking row and the claims that did go in: `undo` them."""

    booking_id: int | None
    claim_ids: tuple[int, ...]
    won: bool
    aborted: bool = False  # the database refused the statement outright: the transaction is lost, start again


# Plain SQL run by psycopg itself (`queries.driver_rows`): nothing built, compiled or cache-keyed per call, and no
# SQLAlchemy result set-up. The statement's CTEs all run; the ones after `made` write only when every claim went in.
# `locked` is evaluated before any claim row is produced.
WRITE_NEW_BOOKING = """
with locked as (
  select id from resources where id = any(cast(%(resource_ids)s as bigint[])) order by id for no key update
), booking as (
  insert into bookings (business_id, code, service_id, customer_id, status, starts_at, ends_at, source, party_size,
                        intake, notes, updated_at, contact_name)
  values (%(business_id)s, %(code)s, %(service_id)s, %(customer_id)s, %(status)s, %(starts_at)s, %(ends_at)s,
          %(source)s, %(party_size)s, cast(%(intake)s as jsonb), %(notes)s, %(updated_at)s, %(contact_name)s)
  on conflict (business_id, code) do nothing
  returning id
), claimed as (
  insert into claims (business_id, resource_id, booking_id, during, expires_at, active, exclusive, seats)
  select %(business_id)s, m.rid, booking.id, tstzrange(%(occupied_from)s, %(occupied_to)s),
         cast(%(expires_at)s as timestamptz), true, true, m.seats
    from booking, unnest(cast(%(resource_ids)s as bigint[]), cast(%(seats)s as smallint[]))
                  with ordinality as m(rid, seats, n)
   where (select count(*) from locked) >= 0
   order by m.n
  on conflict do nothing
  returning id
), made as (
  select booking.id from booking
   where (select count(*) from claimed) = cardinality(cast(%(resource_ids)s as bigint[]))
), history as (
  insert into booking_history (business_id, booking_id, at, action, actor, channel, before, after, note)
  select %(business_id)s, made.id, %(updated_at)s, 'created', %(actor)s, %(source)s, null, cast(%(after)s as jsonb), ''
    from made
), messages as (
  insert into notifications (business_id, booking_id, customer_id, kind, due_at, status, attempts, payload, request_id)
  select %(business_id)s, made.id, %(customer_id)s, m.kind, m.due_at, 'pending', 0, m.payload, %(request_id)s
    from made, rows from (jsonb_to_recordset(cast(%(messages)s as jsonb)) as (kind text, due_at timestamptz,
                                                                           payload jsonb))
               with ordinality as m(kind, due_at, payload, n)
   order by m.n
), calendars as (
  insert into calendar_writes (business_id, calendar_id, booking_id, due_at, updated_at)
  select distinct %(business_id)s, c.id, made.id, cast(%(updated_at)s as timestamptz),
         cast(%(updated_at)s as timestamptz)
    from made join external_calendars c
      on c.business_id = %(business_id)s and c.write_back and c.resource_id = any(cast(%(resource_ids)s as bigint[]))
), remembered as (
  update idempotency_keys k set booking_id = made.id,
         result = jsonb_set(cast(%(result)s as jsonb), '{view,id}', to_jsonb(made.id))
    from made where k.business_id = %(business_id)s and k.key = %(idempotency_key)s
)
select (select id from booking), array(select id from claimed), exists(select from made)
"""

UNDO = text("""
with claims_gone as (delete from claims where id = any(cast(:claim_ids as bigint[])))
delete from bookings where id = :booking_id and business_id = :business_id
""")


class BookingWriteRepository:
    def __init__(self, session: Session):
        self.session = session

    def write(
        self, booking: NewBooking, resource_ids: tuple[int, ...], occupied: tuple[datetime, datetime], *,
        actor: str, after: dict[str, Any], messages: list[Message], expires_at: datetime | None = None,
        idempotency_key: str | None = None, result: dict[str, Any] | None = None,
    ) -> Written:
        """Write the booking with one claim per resource (capacity-1 resources only), in one round trip.

        `result` is the idempotency key's first result; its `view.id` is set to the booking's id as written."""
        ids = sorted(set(resource_ids))  # in id order, as every claimer
        params = {
            "business_id": booking.business_id, "code": booking.code, "service_id": booking.service_id,
            "customer_id": booking.customer_id, "status": booking.status, "starts_at": booking.starts_at,
            "ends_at": booking.ends_at, "source": booking.source, "party_size": booking.party_size,
            "intake": json.dumps(booking.intake), "notes": booking.notes, "updated_at": booking.updated_at,
            "contact_name": booking.contact_name,
            "resource_ids": ids, "seats": [1] * len(ids), "occupied_from": occupied[0], "occupied_to": occupied[1],
            "expires_at": expires_at, "actor": actor, "after": json.dumps(after),
            "messages": json.dumps([{"kind": m.kind, "due_at": m.due_at.isoformat(), "payload": m.payload}
                                    for m in messages]),
            "request_id": current_request_id(), "idempotency_key": idempotency_key,
            "result": json.dumps(result) if result is not None else None,
        }
        try:
            booking_id, claim_ids, won = queries.driver_rows(self.session, WRITE_NEW_BOOKING, params)[0]
        except DBAPIError as error:
            # a capacity raised meanwhile (the claim guard then checks places and raises), or a deadlock with a
            # writer that claims without the resource locks: the transaction is lost, but not the request
            if isinstance(error.orig, (ExclusionViolation, DeadlockDetected)):
                return Written(None, (), False, aborted=True)
            raise
        return Written(booking_id, tuple(claim_ids), bool(won))

    def undo(self, business_id: int, written: Written) -> None:
        """Take back a lost write's booking row and the claims that went in, so the booking can be tried again."""
        self.session.execute(UNDO, {"claim_ids": list(written.claim_ids), "booking_id": written.booking_id,
                                    "business_id": business_id})
