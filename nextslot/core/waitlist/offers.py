"""Offering freed time to the waitlist.

A cancel, a move or an unpaid deposit writes a `freed_capacity` marker in its own transaction. The
scheduler turns each marker into offers: waiting customers of that business whose wish (service,
dates, times of day, preferred staff, party) fits a slot that is open now, first come first served, to as
many people at once as the business allows (default one). A party is offered only a time with places for all of
it; places of a class promised to open offers are kept for them, so a later party gets only the places left over
(or competes for the same ones, within the business's offers at once). An offer is a message with a short expiry;
the first YES books through the core like any other booking (so two YESes for one slot: one booking,
one list of alternatives). An offer that lapses puts its slot back up for the next person.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from nextslot.core import planning
from nextslot.core.booking.availability import Slot, find_open_slots
from nextslot.core.instants import wall_to_utc
from nextslot.core.planning import Plan, load_plan, timelines
from nextslot.core.results import Rejected
from nextslot.core.views import place_zone, resources_zone
from nextslot.storage.alone import Failed, in_savepoint
from nextslot.storage.tables import (
    Business,
    Customer,
    FreedCapacity,
    Notification,
    Resource,
    Service,
    WaitlistEntry,
    WaitlistOffer,
)
from nextslot.storage.uow import SqlAlchemyUnitOfWork

OFFER_MINUTES = 15  # default: how long a waiting customer has to say yes
MARKERS_PER_RUN = 50
UNNAMED = "Waitlist customer"  # for a customer stored without a name, as the staff API once allowed


def note_freed(uow: SqlAlchemyUnitOfWork, business_id: int, interval: tuple[datetime, datetime], reason: str,
               now: datetime) -> None:
    """Record time given back, if anyone in this business is waiting (nothing to do otherwise)."""
    waiting = uow.session.scalar(select(WaitlistEntry.id).where(WaitlistEntry.business_id == business_id,
                                                                WaitlistEntry.status == "waiting").limit(1))
    if waiting is not None and interval[1] > now:
        uow.session.add(FreedCapacity(business_id=business_id, starts_at=interval[0], ends_at=interval[1],
                                      reason=reason, created_at=now))


def offer_settings(business: Business) -> tuple[int, int]:
    """(offers at once per slot, minutes an offer stays open), from the business's details."""
    details = (business.details or {}).get("waitlist") or {}
    return int(details.get("offers_at_once", 1)), int(details.get("offer_minutes", OFFER_MINUTES))


def claim_markers(uow: SqlAlchemyUnitOfWork, now: datetime) -> list[FreedCapacity]:
    return list(uow.session.scalars(
        select(FreedCapacity).where(FreedCapacity.processed_at.is_(None)).order_by(FreedCapacity.id)
        .limit(MARKERS_PER_RUN).with_for_update(skip_locked=True)
    ))


def offer_each(uow: SqlAlchemyUnitOfWork, markers: list[FreedCapacity], now: datetime) -> int:
    """Offers for each marker in a savepoint of its own: one business's bad settings or data (an
    `offer_minutes` that is not a number) close its marker unoffered, logged, and hold up no one else's."""
    made = 0
    for marker in markers:
        offers = in_savepoint(uow.session, lambda: make_offers(uow, marker, now),
                              "freed time %s (business %s): no offers made", marker.id, marker.business_id)
        if isinstance(offers, Failed):
            marker.processed_at = now
        else:
            made += len(offers)
    return made


def make_offers(uow: SqlAlchemyUnitOfWork, marker: FreedCapacity, now: datetime) -> list[WaitlistOffer]:
    """Offers for the freed interval to the waiting customers it suits, oldest wish first."""
    marker.processed_at = now
    business = uow.session.get_one(Business, marker.business_id)
    at_once, minutes = offer_settings(business)
    zone = planning.BusinessInfo.of(business).zone
    # two days either side: a wish's dates are its branch's, whose date may not be the business's, and zones lie up
    # to 26 hours apart (Kiritimati's 00:30 on Wednesday is 23:30 on Monday at Pago Pago)
    first_day = marker.starts_at.astimezone(zone).date() - timedelta(days=2)
    last_day = marker.ends_at.astimezone(zone).date() + timedelta(days=2)
    entries = list(uow.session.scalars(
        select(WaitlistEntry).where(
            WaitlistEntry.business_id == marker.business_id, WaitlistEntry.status == "waiting",
            WaitlistEntry.earliest_date <= last_day, WaitlistEntry.latest_date >= first_day)
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id).with_for_update(skip_locked=True)
    ))
    made: list[WaitlistOffer] = []
    for entry in entries:
        plan = entry_plan(uow, entry)
        if isinstance(plan, Rejected) or plan.party_problem(entry.party_size):
            continue
        slot = first_fitting_slot(uow, entry, plan, marker, now, at_once)
        if slot is None:
            continue
        offer = WaitlistOffer(business_id=entry.business_id, entry_id=entry.id, customer_id=entry.customer_id,
                              starts_at=slot.starts_at, resource_ids=list(slot.resource_ids), status="open",
                              expires_at=now + timedelta(minutes=minutes), created_at=now)
        uow.session.add(offer)
        entry.status = "offered"
        uow.session.flush()
        uow.session.add(Notification(
            business_id=entry.business_id, customer_id=entry.customer_id, offer_id=offer.id, kind="waitlist_offer",
            due_at=now, status="pending", attempts=0,
            payload={"starts_at": slot.starts_at.isoformat(), "service": plan.service_name, "minutes": minutes,
                     "expires_at": offer.expires_at.isoformat(), "party_size": entry.party_size},
        ))
        made.append(offer)
    return made


def entry_plan(uow: SqlAlchemyUnitOfWork, entry: WaitlistEntry) -> Plan | Rejected:
    service_key = uow.session.scalar(select(Service.key).where(Service.id == entry.service_id, Service.active))
    if service_key is None:
        return Rejected("unknown_service", "The service is no longer offered.")
    preferred = list(uow.session.scalars(select(Resource.key).where(
        Resource.id.in_(entry.preferred_resource_ids or []))))
    return load_plan(uow, entry.business_id, service_key, preferred)


def first_fitting_slot(uow: SqlAlchemyUnitOfWork, entry: WaitlistEntry, plan: Plan, marker: FreedCapacity,
                       now: datetime, at_once: int) -> Slot | None:
    """The earliest open slot touching the freed time that fits the wish and its whole party, and is not
    over-offered."""
    rules = plan.rules
    window = (marker.starts_at - rules.duration - rules.buffer_before, marker.ends_at + rules.buffer_after)
    groups = timelines(uow, plan, window, now, party=entry.party_size)
    already = set(uow.session.scalars(select(WaitlistOffer.starts_at).where(WaitlistOffer.entry_id == entry.id)))
    resources = plan.resources
    for slot in find_open_slots(rules, groups, window, now):
        # the wished dates and times of day are the slot's branch's own: a Los Angeles morning, not New York's
        zone = place_zone((resources[rid] for rid in slot.resource_ids), plan.business.zone)
        day = slot.starts_at.astimezone(zone).date()
        if not (entry.earliest_date <= day <= entry.latest_date):
            continue
        # the wished times of day as that day's instants: on a night the clocks change, minutes are no guide
        earliest, latest = (wall_to_utc(day, m, zone) for m in (entry.day_start_minute, entry.day_end_minute))
        if slot.starts_at < earliest or slot.ends_at > latest or slot.starts_at in already:
            continue
        offered, promised = open_offers_for(uow, plan, slot.starts_at)
        # a class with places for this party besides those promised: no one competes; else first yes wins
        room_for_all = slot.seats_left is not None and slot.seats_left >= promised + entry.party_size
        if offered >= at_once and not (at_once > 0 and room_for_all):
            continue
        return slot
    return None


def open_offers_for(uow: SqlAlchemyUnitOfWork, plan: Plan, starts_at: datetime) -> tuple[int, int]:
    """(open offers of this service's time, the places their parties would take)."""
    count, places = uow.session.execute(
        select(func.count(), func.coalesce(func.sum(WaitlistEntry.party_size), 0)).select_from(WaitlistOffer)
        .join(WaitlistEntry, WaitlistEntry.id == WaitlistOffer.entry_id)
        .where(WaitlistEntry.service_id == plan.service_id, WaitlistOffer.starts_at == starts_at,
               WaitlistOffer.status == "open")).one()
    return int(count), int(places)


def offer_key(offer_id: int) -> str:
    """The idempotency key a yes books under: every answer to one offer is the same request."""
    return f"waitlist-offer-{offer_id}"


def booked_by_yes(uow: SqlAlchemyUnitOfWork, offer: WaitlistOffer) -> dict[str, Any] | None:
    """The booking a yes to this offer made, if its own step after the booking never ran (the connection dropped
    between the two): the customer holds the time whatever the offer row still says."""
    first = uow.idempotency.first_result(offer.business_id, offer_key(offer.id))
    return first if first and first.get("kind") == "booking" else None


def settle_accepted(uow: SqlAlchemyUnitOfWork, offer: WaitlistOffer, booking_id: int) -> None:
    offer.status, offer.booking_id = "accepted", booking_id
    uow.session.get_one(WaitlistEntry, offer.entry_id).status = "booked"


def lapse_offers(uow: SqlAlchemyUnitOfWork, now: datetime) -> int:
    """Offers nobody answered in time: the wish waits again and the slot goes to the next person."""
    lapsed = list(uow.session.scalars(select(WaitlistOffer).where(WaitlistOffer.status == "open",
                                                         WaitlistOffer.expires_at <= now)
                                      .with_for_update(skip_locked=True)))
    for offer in lapsed:
        if (booked := booked_by_yes(uow, offer)) is not None:
            settle_accepted(uow, offer, booked["view"]["id"])
            continue
        offer.status = "expired"
        entry = uow.session.get_one(WaitlistEntry, offer.entry_id)
        if entry.status == "offered":
            entry.status = "waiting"
        # reading the plan may fail on one business's bad data: that offer still lapses, its time is not re-offered
        in_savepoint(uow.session, lambda: free_again(uow, offer, entry, now),
                     "lapsed offer %s (business %s): its time was not offered again", offer.id, offer.business_id)
    return len(lapsed)


def free_again(uow: SqlAlchemyUnitOfWork, offer: WaitlistOffer, entry: WaitlistEntry, now: datetime) -> None:
    plan = entry_plan(uow, entry)
    if not isinstance(plan, Rejected):
        uow.session.add(FreedCapacity(business_id=offer.business_id, starts_at=offer.starts_at,
                                      ends_at=offer.starts_at + plan.rules.duration, reason="offer_expired",
                                      created_at=now))


def answerable_offer(uow: SqlAlchemyUnitOfWork, customer_ids: list[int], now: datetime) -> WaitlistOffer | None:
    """The offer a YES or NO from these customers answers: the latest one still open, or lapsed within a day."""
    if not customer_ids:
        return None
    return uow.session.scalars(
        select(WaitlistOffer).where(WaitlistOffer.customer_id.in_(customer_ids),
                                    WaitlistOffer.status.in_(("open", "expired")),
                                    WaitlistOffer.answered_at.is_(None),
                                    WaitlistOffer.expires_at > now - timedelta(days=1))
        .order_by(WaitlistOffer.created_at.desc()).limit(1)
    ).first()


def offer_summary(uow: SqlAlchemyUnitOfWork, business_id: int, offer_id: int) -> dict[str, Any] | None:
    """What an offer page shows; None if the offer is not this business's."""
    offer = uow.session.get(WaitlistOffer, offer_id)
    if offer is None or offer.business_id != business_id:
        return None
    entry = uow.session.get_one(WaitlistEntry, offer.entry_id)
    business = uow.session.get_one(Business, business_id)
    zone = planning.BusinessInfo.of(business).zone
    customer = uow.session.get_one(Customer, offer.customer_id)
    service = uow.session.get_one(Service, entry.service_id)
    place = resources_zone(uow, offer.resource_ids or (), zone)  # the offered time's branch
    return {"business": business.name, "slug": business.slug, "service": service.name,
            "starts_at": offer.starts_at, "zone": customer.timezone or place.key, "status": offer.status,
            "expires_at": offer.expires_at, "name": customer.name, "language": customer.language or "en",
            "party_size": entry.party_size}


def offer_facts(uow: SqlAlchemyUnitOfWork, offer: WaitlistOffer) -> dict[str, Any]:
    """What booking an offer needs, as plain data (the booking runs in its own transaction)."""
    entry = uow.session.get_one(WaitlistEntry, offer.entry_id)
    customer = uow.session.get_one(Customer, offer.customer_id)
    return {
        "business_id": offer.business_id, "service": uow.session.get_one(Service, entry.service_id).key,
        "starts_at": offer.starts_at, "resources": list(uow.session.scalars(select(Resource.key).where(
            Resource.id.in_(entry.preferred_resource_ids or [])))),
        "party_size": entry.party_size,  # the whole party is booked at once, or none of it
        # a name is required now; customers the staff API once let in without one still get their booking
        "customer": {"name": customer.name.strip() or UNNAMED, "phone": customer.phone, "email": customer.email,
                     "timezone": customer.timezone},
    }
