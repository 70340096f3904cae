"""The booking service: the one facade every edge calls; each method is one core function over a unit of work."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from nextslot.core.booking import changes, holds, idempotency, reads, records, sender_budgets, series
from nextslot.core.booking.book import book
from nextslot.core.booking.public_caps import PublicCaps
from nextslot.core.booking.reschedule import reschedule
from nextslot.core.booking.search_budget import SlotSearchBudget
from nextslot.core.booking.sender_budgets import SenderFull, SenderPlace
from nextslot.core.business import catalog, lookup
from nextslot.core.business.lookup import BusinessRecord
from nextslot.core.clock import Clock, utcnow
from nextslot.core.config_versions import restarted
from nextslot.core.customers import history, proofs
from nextslot.core.deposits import fees, payments
from nextslot.core.deposits.fees import FeeToCharge
from nextslot.core.deposits.payments import DepositDue
from nextslot.core.deposits.rules import Settled
from nextslot.core.planning import unknown_business
from nextslot.core.results import (
    BookingResult,
    ChangeResult,
    HoldResult,
    Opening,
    Rejected,
    SeriesBooked,
    SeriesChanged,
    Slots,
    SlotTaken,
)
from nextslot.core.waitlist import answers
from nextslot.core.waitlist.entries import join_waitlist
from nextslot.schemas.api import BookingHistory, NotificationLog
from nextslot.schemas.commands import (
    BookingChange,
    BookingCreate,
    BookingReschedule,
    BookingSearch,
    HoldCreate,
    SeriesCreate,
    SlotQuery,
    WaitlistJoin,
)
from nextslot.schemas.views import BookingView, BusinessProfile, CustomerHistory, ServiceView, WaitlistView
from nextslot.storage.gate import DatabaseGate
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.telemetry import metrics

T = TypeVar("T")


class BookingService:
    def __init__(self, session_factory: sessionmaker[Session], clock: Clock = utcnow, hold_minutes: int = 5,
                 payment_provider: str = "local", read_session_factory: sessionmaker[Session] | None = None,
                 slot_searches_per_business: str | None = None, gate: DatabaseGate | None = None,
                 public_caps: PublicCaps | None = None):
        self._session_factory = session_factory
        self._gate = gate  # None: every unit of work goes straight to the pool (tests, the demo)
        # None: unlimited (tests, the demo); servers pass the rate_limit_slot_searches_per_business setting
        self._search_budget = SlotSearchBudget(slot_searches_per_business) if slot_searches_per_business else None
        # availability reads only (slot searches, calendars): a replica may lag, so nothing that decides a write
        # reads through it; a booking's own checks and a lost race's alternatives use the primary's session
        self._read_session_factory = read_session_factory or session_factory
        self._clock = clock
        self._hold_minutes = hold_minutes
        self._payment_provider = payment_provider  # recorded on deposits; the edge talks to the provider
        # None: unlimited (tests, as the search budget); servers pass the public_bookings_per_contact,
        # public_series_max and public_bookings_per_day settings
        self._public_caps = public_caps

    @property
    def session_factory(self) -> sessionmaker[Session]:
        return self._session_factory

    @property
    def gate(self) -> DatabaseGate | None:
        return self._gate

    def now(self) -> datetime:
        return self._clock()

    def uow(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._session_factory, gate=self._gate)

    def _alone_uow(self) -> SqlAlchemyUnitOfWork:
        """On the primary, each statement on its own (no BEGIN, no COMMIT): for a write that is one statement."""
        return SqlAlchemyUnitOfWork(self._session_factory, statements_alone=True, gate=self._gate)

    def replica_uow(self) -> SqlAlchemyUnitOfWork:
        """A read-only unit of work on the read replica (the primary when none is configured); may lag."""
        return SqlAlchemyUnitOfWork(self._read_session_factory, statements_alone=True, gate=self._gate)

    # --- reads -------------------------------------------------------------------------------

    def read(self, query: Callable[..., T], *args: Any) -> T:
        """Run a core read query (one taking the unit of work first) in a transaction of its own."""
        with self.uow() as uow:
            return query(uow, *args)

    def read_availability(self, query: Callable[..., T], *args: Any) -> T:
        """Like `read`, on the read replica: for views of availability that may be a moment behind."""
        with self.replica_uow() as uow:
            return query(uow, *args)

    def booking_history(self, business_id: int, code: str) -> BookingHistory | None:
        """Every change of a booking, oldest first (None: no such booking here)."""
        with self.uow() as uow:
            return records.booking_history(uow, business_id, code)

    def notification_log(self, business_id: int, code: str) -> NotificationLog | None:
        """Every message sent about a booking, with its delivery attempts (None: no such booking here)."""
        with self.uow() as uow:
            return records.notification_log(uow, business_id, code)

    def business_by_slug(self, slug: str) -> BusinessRecord | None:
        return lookup.business_by_slug(self.uow(), slug)

    def business_offer(self, slug: str) -> tuple[BusinessRecord, list[ServiceView]] | None:
        """The business a public URL names, with its active services (None: no such business)."""
        return catalog.business_offer(self.uow(), slug)

    def business_by_id(self, business_id: int) -> BusinessRecord | None:
        return lookup.business_by_id(self.uow(), business_id)

    def sole_business_slug(self) -> str | None:
        return lookup.sole_business_slug(self.uow())

    def find_slots(self, business_id: int, query: SlotQuery) -> Slots | Rejected:
        """Open start times for a service in a window, with the resources each would take (from the replica);
        `rate_limited` once the business has used up its budget of searches."""
        return self._budgeted(business_id, lambda: reads.find_slots(self.replica_uow(), business_id, query,
                                                                    self._clock()))

    def find_openings(self, business_id: int, query: SlotQuery) -> list[Opening] | Rejected:
        """`find_slots`' open start times without their views, for the booking pages' grids (the same budget)."""
        return self._budgeted(business_id, lambda: reads.find_openings(self.replica_uow(), business_id, query,
                                                                       self._clock()))

    def _budgeted(self, business_id: int, search: Callable[[], T]) -> T | Rejected:
        return search() if self._search_budget is None else self._search_budget.run(business_id, search)

    def get_booking(self, business_id: int, code: str) -> BookingView | Rejected:
        return reads.get_booking(self.uow(), business_id, code)

    def find_bookings(self, business_id: int, search: BookingSearch) -> tuple[list[BookingView], list[str]] | Rejected:
        """A customer's bookings (soonest first), plus codes close to a code that matched none of theirs."""
        return reads.find_bookings(self.uow(), business_id, search, self._clock())

    def list_services(self, business_id: int) -> list[ServiceView]:
        with self.uow() as uow:
            return catalog.list_services(uow, business_id)

    def business_profile(self, business_id: int) -> BusinessProfile | Rejected:
        with self.uow() as uow:
            return catalog.business_profile(uow, business_id, self._clock()) or unknown_business(business_id)

    def resource_key(self, business_id: int, text: str) -> str | Rejected:
        """The key of the resource a caller means ('Dr Patel', 'dr-patel'), or a rejection listing them."""
        with self.uow() as uow:
            key = catalog.match_resource(uow, business_id, text)
            if key is None:
                names = catalog.resource_names(uow, business_id)
                return Rejected("unknown_resource", f"No one or nothing called '{text}' here. Choose from: "
                                                    f"{', '.join(names)}.", "staff")
            return key

    def customer_history(self, business_id: int, phone: str | None = None, email: str | None = None,
                         limit: int | None = None) -> CustomerHistory | Rejected:
        """Everything that happened between the business and one customer, oldest first."""
        with self.uow() as uow:
            return history.customer_history(uow, business_id, phone, email, limit)

    # --- a customer proving a contact (the public endpoint) -------------------------------------

    def request_contact_code(self, business_id: int, contact: str) -> proofs.CodeRequested | Rejected:
        """Send a one-time code to a customer's phone or email (if it books here; answered alike if not)."""
        return proofs.request_code(self.uow(), business_id, contact, self._clock())

    def verify_contact_code(self, business_id: int, challenge: str, code: str) -> proofs.ContactProved | Rejected:
        """A short-lived proof of the contact the code went to, if the code is right."""
        return proofs.verify_code(self.uow(), business_id, challenge, code, self._clock())

    def proven_contact(self, business_id: int, proof: str) -> str | Rejected:
        return proofs.proven_contact(self.uow(), business_id, proof, self._clock())

    def answered(self, business_id: int, idempotency_key: str) -> bool:
        """Whether a write under this idempotency key was already made (its retry gets the first answer)."""
        return idempotency.answered(self.uow(), business_id, idempotency_key)

    def take_sender_place(self, business_id: int, kind: str, sender: str) -> SenderPlace | SenderFull:
        """A place in a public sender's day at the business for a write about to run (one statement), or that the
        day's are made (`public_caps.per_sender`; none without public caps)."""
        return sender_budgets.take_place(self._alone_uow(), self._public_caps, business_id, kind, sender,
                                         self._clock())

    def give_back_sender_place(self, place: SenderPlace) -> None:
        """The place of a write that made nothing (one statement)."""
        sender_budgets.give_back(self._alone_uow(), place)

    def sweep_sender_budgets(self) -> int:
        """Delete the public senders' counts of the days before today."""
        return sender_budgets.sweep_spent(self.uow(), self._clock())

    # --- writes ------------------------------------------------------------------------------

    def book(self, business_id: int, cmd: BookingCreate) -> BookingResult:
        """Book a slot (or convert a hold). A lost race answers with the nearest openings."""
        result = book(self.uow(), business_id, cmd, self._clock(), self._payment_provider, self._public_caps)
        metrics.observe_booking("book", result)
        return result

    def book_series(self, business_id: int, cmd: SeriesCreate) -> SeriesBooked | Rejected:
        """Book a recurring series in one request: all or none, or each occurrence on its own (see cmd.mode)."""
        now = self._clock()
        return restarted(lambda: series.book_series(self.uow(), business_id, cmd, now, self._public_caps))

    def cancel_series(self, business_id: int, cmd: BookingChange) -> SeriesChanged | Rejected:
        """Cancel an occurrence of a series and every later one."""
        return series.cancel_series(self.uow(), business_id, cmd, self._clock())

    def move_series(self, business_id: int, cmd: BookingReschedule) -> SeriesChanged | SlotTaken | Rejected:
        """Move an occurrence of a series and every later one by the same change of day and time, all or none."""
        now = self._clock()
        return restarted(lambda: series.move_series(self.uow(), business_id, cmd, now))

    def hold(self, business_id: int, cmd: HoldCreate) -> HoldResult:
        """Keep a slot for a few minutes while the caller gives their details."""
        now = self._clock()
        result = restarted(lambda: holds.hold(self.uow(), business_id, cmd, now, self._hold_minutes))
        metrics.observe_hold(result)
        return result

    def release_hold(self, business_id: int, hold_id: int) -> bool:
        """Let a hold go before it expires; False if there was no live hold with that id."""
        return holds.release_hold(self.uow(), business_id, hold_id)

    def expire_holds(self) -> int:
        """Mark holds past their expiry released and their claims inactive (they already block no one)."""
        expired = holds.expire_holds(self.uow(), self._clock())
        metrics.HOLDS_EXPIRED.inc(expired)
        return expired

    def reschedule(self, business_id: int, cmd: BookingReschedule) -> BookingResult:
        """Move a booking: release and re-claim in one transaction; on conflict nothing changes."""
        now = self._clock()
        result = restarted(lambda: reschedule(self.uow(), business_id, cmd, now))
        metrics.observe_booking("reschedule", result)
        return result

    def join_waitlist(self, business_id: int, cmd: WaitlistJoin) -> WaitlistView | Rejected:
        """Put a customer on the waitlist for a service within a window (the same wish twice is one entry)."""
        return join_waitlist(self.uow(), business_id, cmd, self._clock(), self._public_caps)

    def cancel(self, business_id: int, cmd: BookingChange) -> ChangeResult:
        """Cancel and free the time at once; cancelling twice is not an error."""
        return changes.cancel(self.uow(), business_id, cmd, self._clock())

    def confirm(self, business_id: int, cmd: BookingChange) -> ChangeResult:
        """The customer confirmed they will come."""
        return changes.confirm(self.uow(), business_id, cmd, self._clock())

    def mark_no_show(self, business_id: int, cmd: BookingChange) -> ChangeResult:
        """The customer did not come: counted against them for the no-show policy."""
        return changes.mark_no_show(self.uow(), business_id, cmd, self._clock())

    # --- deposits ----------------------------------------------------------------------------

    def deposit_due(self, business_id: int, code: str) -> DepositDue | Rejected:
        """What a pay link needs: the unpaid deposit of a booking, and any checkout already started."""
        return payments.deposit_due(self.uow(), business_id, code)

    def record_checkout(self, business_id: int, payment_id: int, provider: str, provider_ref: str,
                        checkout_url: str) -> tuple[str, str]:
        """Remember the provider's checkout session, so the pay link reuses it and its webhook finds us; the
        checkout to send the customer to (the first recorded, when two were started at once)."""
        return payments.record_checkout(self.uow(), business_id, payment_id, provider, provider_ref, checkout_url,
                                        self._clock())

    def settle_deposit(self, provider: str, provider_ref: str, amount_minor: int, currency: str,
                       event: dict[str, Any], payer_ref: str | None = None,
                       payment_ref: str | None = None) -> Settled | Rejected:
        """A provider says a checkout was paid (verified webhook): confirm the booking. Replays are harmless."""
        now = self._clock()
        return restarted(lambda: payments.settle_deposit(self.uow(), provider, provider_ref, amount_minor, currency,
                                                         event, now, payer_ref, payment_ref))

    def lease_due_fees(self, limit: int = 20) -> list[FeeToCharge]:
        """Late-cancel and no-show fees to charge now, leased to the caller for a few minutes."""
        return fees.lease_due_fees(self.uow(), self._clock(), limit)

    def record_fee_charge(self, fee_id: int, charged: bool, provider_ref: str | None, problem: str | None,
                          retry: bool = False) -> None:
        """What the provider answered for a leased fee."""
        fees.record_fee_charge(self.uow(), fee_id, charged, provider_ref, problem, self._clock(), retry)

    def expire_unpaid(self) -> int:
        """Bookings whose deposit deadline passed unpaid become expired and free their slot at once."""
        return payments.expire_unpaid(self.uow(), self._clock())

    # --- waitlist offers ----------------------------------------------------------------------

    def offer_freed_capacity(self) -> int:
        """Scheduler job: lapse unanswered offers, then offer freed time to the waitlist; returns offers made."""
        return answers.offer_freed_capacity(self.uow(), self._clock())

    def accept_offer(self, offer_id: int, source: str) -> BookingResult:
        """A waiting customer said yes: book the offered time through `book` (race-free, idempotent per offer)."""
        return answers.accept_offer(self.uow(), offer_id, source, self._clock(), self._payment_provider)

    def offer_summary(self, business_id: int, offer_id: int) -> dict[str, Any] | Rejected:
        return answers.offer_summary(self.uow(), business_id, offer_id)

    def decline_offer(self, offer_id: int, source: str) -> bool:
        """A waiting customer said no to this time: they keep waiting, and the time goes to the next person."""
        return answers.decline_offer(self.uow(), offer_id, source, self._clock())
