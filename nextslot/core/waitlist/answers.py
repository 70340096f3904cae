"""Offers made and answered: the scheduler offers freed time; a waiting customer says yes (booked through `book`) or no."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from nextslot.core import events
from nextslot.core.booking.alternatives import alternatives
from nextslot.core.booking.book import book
from nextslot.core.booking.idempotency import replayed_booking
from nextslot.core.planning import business_info, load_plan
from nextslot.core.results import Booked, BookingResult, Rejected, SlotTaken
from nextslot.core.views import booking_view
from nextslot.core.waitlist import offers
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.storage.tables import Booking, WaitlistEntry, WaitlistOffer
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def offer_freed_capacity(uow: SqlAlchemyUnitOfWork, now: datetime) -> int:
    """Scheduler job: lapse unanswered offers, then offer freed time to the waitlist; returns offers made."""
    with uow:
        offers.lapse_offers(uow, now)
        uow.commit()
    with uow:
        made = offers.offer_each(uow, offers.claim_markers(uow, now), now)
        uow.commit()
        return made


def accept_offer(uow: SqlAlchemyUnitOfWork, offer_id: int, source: str, now: datetime,
                 payment_provider: str) -> BookingResult:
    """A waiting customer said yes: book the offered time through `book` (race-free, idempotent per offer), for the
    wish's whole party in one booking.

    A yes after the offer lapsed, or after someone else took the time (or the places the party needs), gets the
    nearest openings with room for the party.
    """
    with uow:
        s = uow.session
        offer = s.get(WaitlistOffer, offer_id, with_for_update=True)
        if offer is None:
            return Rejected("unknown_offer", f"There is no waitlist offer {offer_id}.", "offer")
        if offer.status == "accepted" and offer.booking_id is not None:
            booking = s.get_one(Booking, offer.booking_id)
            return Booked(booking_view(uow, booking, business_info(uow, offer.business_id)), replayed=True)
        facts = offers.offer_facts(uow, offer)
        if offer.status in ("open", "expired") and (booked := offers.booked_by_yes(uow, offer)) is not None:
            offers.settle_accepted(uow, offer, booked["view"]["id"])  # a yes booked, then its own step failed
            uow.commit()
            return replayed_booking(booked)
        if offer.status != "open" or offer.expires_at <= now:
            offer.answered_at, offer.answer = now, source
            plan = load_plan(uow, offer.business_id, facts["service"], facts["resources"])
            uow.commit()
            if isinstance(plan, Rejected):
                return plan
            return SlotTaken(offer.starts_at, alternatives(uow, plan, offer.starts_at, now,
                                                           facts["customer"]["timezone"], None, facts["party_size"]))
    key = offers.offer_key(offer_id)
    result = book(uow, facts["business_id"], BookingCreate(
        service=facts["service"], starts_at=facts["starts_at"], resources=facts["resources"],
        party_size=facts["party_size"], customer=CustomerIn(**facts["customer"]), idempotency_key=key, source=source,
        actor="customer"),
        now, payment_provider)
    with uow:
        s = uow.session
        if isinstance(result, Rejected) and result.code == "idempotency_key_reused":
            # the same yes, at the same moment, on another channel (the key's request names its channel): its booking
            result = replayed_booking(uow.idempotency.first_result(facts["business_id"], key) or result)
        offer = s.get_one(WaitlistOffer, offer_id, with_for_update=True)
        if offer.status == "accepted":  # the other channel's answer came first: the offer is settled
            return result
        entry = s.get_one(WaitlistEntry, offer.entry_id)
        if not isinstance(result, Booked) and entry.status == "withdrawn":
            return SlotTaken(offer.starts_at, [])  # erased meanwhile: its key was taken first, nothing was booked
        offer.answered_at, offer.answer = now, source
        if isinstance(result, Booked):
            offer.status, offer.booking_id, entry.status = "accepted", result.booking.id, "booked"
            events.emit(uow, offer.business_id, "waitlist.offer_accepted", result.booking, now,
                        booking_version=events.CREATED)  # the view is the booking as it was made
        else:
            offer.status, entry.status = "lost", "waiting"
        uow.commit()
    return result


def offer_summary(uow: SqlAlchemyUnitOfWork, business_id: int, offer_id: int) -> dict[str, Any] | Rejected:
    with uow:
        summary = offers.offer_summary(uow, business_id, offer_id)
        return summary or Rejected("unknown_offer", "There is no such offer.", "offer")


def decline_offer(uow: SqlAlchemyUnitOfWork, offer_id: int, source: str, now: datetime) -> bool:
    """A waiting customer said no to this time: they keep waiting, and the time goes to the next person."""
    with uow:
        s = uow.session
        offer = s.get(WaitlistOffer, offer_id, with_for_update=True)
        if offer is None or offer.status != "open":
            return False
        if (booked := offers.booked_by_yes(uow, offer)) is not None:  # a yes booked first: the no comes too late
            offers.settle_accepted(uow, offer, booked["view"]["id"])
            uow.commit()
            return False
        offer.status, offer.answered_at, offer.answer = "declined", now, source
        entry = s.get_one(WaitlistEntry, offer.entry_id)
        entry.status = "waiting"
        plan = offers.entry_plan(uow, entry)
        if not isinstance(plan, Rejected):
            offers.note_freed(uow, offer.business_id, (offer.starts_at, offer.starts_at + plan.rules.duration),
                              "offer_declined", now)
        uow.commit()
        return True
