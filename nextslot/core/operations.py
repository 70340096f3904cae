"""What operating the server asks of the database: is it there."""
from __future__ import annotations

from sqlalchemy import text

from nextslot.core.service import BookingService


def ping(service: BookingService) -> None:
    """Raise unless the database answers a query (within five seconds)."""
    with service.uow() as uow:
        uow.session.execute(text("set local statement_timeout = 5000"))
        uow.session.execute(text("select 1"))


# Each check: a name, what must hold, and SQL counting the rows that break it (0 when the database is sound).
INVARIANTS: tuple[tuple[str, str, str], ...] = (
    ("no_double_booking", "no two active exclusive claims on one resource overlap", """
        select count(*) from claims a join claims b on a.resource_id = b.resource_id and a.id < b.id
         where a.active and b.active and a.exclusive and b.exclusive and a.during && b.during"""),
    ("capacity_respected", "active claims on a shared resource never exceed its capacity at any instant", """
        select count(*) from (
          select c.id from claims c join resources r on r.id = c.resource_id
            join claims d on d.resource_id = c.resource_id and d.active and d.during @> lower(c.during)
           where c.active and r.capacity > 1 group by c.id, r.capacity having sum(d.seats) > r.capacity) over"""),
    ("live_bookings_hold_time", "every booked or confirmed booking, and every pending-payment one before its "
     "deposit's deadline, has active claims", """
        select count(*) from bookings b where (b.status in ('booked', 'confirmed') or b.status = 'pending_payment'
           and exists (select 1 from payments p where p.booking_id = b.id and p.status = 'pending'
                                                  and p.expires_at > now()))
           and not exists (select 1 from claims c where c.booking_id = b.id and c.active)"""),
    ("bookings_whole", "a booking holding time holds a place of each requirement of its service, one per person "
     "of its party where the service takes one each", """
        select count(*) from bookings b join services s on s.id = b.service_id
         where b.status in ('booked', 'confirmed', 'pending_payment')
           and (select coalesce(sum(c.seats), 0) from claims c where c.booking_id = b.id and c.active) not in (
               0, (select sum(case when b.party_size > 1 and coalesce(s.party -> 'per_person', '[]')
                                            @> jsonb_build_array(q.label) then b.party_size else 1 end)
                     from service_requirements q where q.service_id = b.service_id))"""),
    ("ended_bookings_free_time", "cancelled and expired bookings hold no active claim", """
        select count(*) from claims c join bookings b on b.id = c.booking_id
         where c.active and b.status in ('cancelled', 'expired')"""),
    ("claims_match_bookings", "a booking's active claims cover its service time, buffers included", """
        select count(*) from claims c join bookings b on b.id = c.booking_id
         where c.active and not (c.during @> tstzrange(b.starts_at, b.ends_at, '[)'))"""),
    ("claims_same_business", "a claim belongs to its booking's and its resource's business", """
        select count(*) from claims c left join bookings b on b.id = c.booking_id join resources r on r.id = c.resource_id
         where c.business_id <> r.business_id or (b.id is not null and b.business_id <> c.business_id)"""),
    ("history_complete", "every booking's history starts with its creation", """
        select count(*) from bookings b where not exists (
          select 1 from booking_history h where h.booking_id = b.id and h.action = 'created')"""),
    ("no_reminders_for_ended", "no reminder is still due for a cancelled or expired booking", """
        select count(*) from notifications n join bookings b on b.id = n.booking_id
         where n.status = 'pending' and n.kind = 'reminder' and b.status in ('cancelled', 'expired')"""),
    ("erased_stay_erased", "an erased customer has no contact left and nothing waiting to be sent", """
        select count(*) from customers c where c.erased_at is not null and (
          c.phone is not null or c.email is not null or exists (
            select 1 from notifications n where n.customer_id = c.id and n.status in ('pending', 'sending')))"""),
)


def check_invariants(service: BookingService) -> list[dict[str, object]]:
    """Run every invariant check in one read-only snapshot; each result says whether it holds and how many rows
    break it."""
    with service.uow() as uow:
        uow.session.execute(text("set transaction isolation level repeatable read, read only"))
        return [{"check": name, "holds": (broken := uow.session.scalar(text(sql)) or 0) == 0, "broken": broken,
                 "rule": rule} for name, rule, sql in INVARIANTS]
