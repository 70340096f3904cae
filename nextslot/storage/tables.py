"""SQLAlchemy tables: the booking data model. Every row belongs to a business (tenant)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSTZRANGE, ExcludeConstraint, Range
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship

from nextslot.schemas.statuses import BookingStatus
from nextslot.telemetry.context import current_request_id

Id = BigInteger


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
    }
    # PostgreSQL's own names, which the migrations kept: a composite reference is named by its first column
    metadata = MetaData(naming_convention={"ix": "ix_%(column_0_label)s",
                                           "fk": "%(table_name)s_%(column_0_name)s_fkey"})

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # a tenant's row is keyed (id, business_id) in the database, so the tables can be distributed by business
        # (migration 0026); ids come from one sequence and are unique alone, so the session knows a row by its id
        return {"primary_key": ["id"]} if "id" in cls.__dict__ else {}


def _id() -> Mapped[int]:
    return mapped_column(Id, primary_key=True, autoincrement=True)


def _business() -> Mapped[int]:
    return mapped_column(Id, ForeignKey("businesses.id"), primary_key=True, index=True)


def _unique(table: str, *columns: str) -> UniqueConstraint:
    """Unique within a business, the value first so that a lookup by the value alone (a key's hash, a provider's
    id, before the business is known) still walks the index; the value is random or the provider's, so it is
    unique across businesses anyway (tests/storage/test_tenant_keys.py)."""
    return UniqueConstraint(*columns, "business_id", name=f"{table}_{'_'.join(columns)}_key")


def _parent(column: str, parent: str, cascade: bool = False) -> ForeignKeyConstraint:
    """A reference to another row of the same business: (column, business_id) -> parent (id, business_id)."""
    return ForeignKeyConstraint([column, "business_id"], [f"{parent}.id", f"{parent}.business_id"],
                                ondelete="CASCADE" if cascade else None)


def _created() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


class Business(Base):
    __tablename__ = "businesses"
    id: Mapped[int] = _id()
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2), default="US")  # phone numbering region
    # address, phone, policies, reminder offsets: free-form business details
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()
    # moved by triggers with every edit of the business, its resources, hours, services, requirements and webhook
    # endpoints (the editing transaction's id): a process's cached plans are checked against it (core/planning.py)
    config_version: Mapped[int] = mapped_column(BigInteger, server_default=text("txid_current()"))


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (_unique("api_keys", "key_hash"),)
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the whole key
    created_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None]


class VoiceIntegration(Base):
    """A business's secret for a voice platform: Vapi's or ElevenLabs' shared secret, or the Retell API key that
    signs requests.

    Kept in the clear because Retell's HMAC needs the key itself.
    """

    __tablename__ = "voice_integrations"
    __table_args__ = (
        UniqueConstraint("business_id", "platform"),
        CheckConstraint("platform in ('vapi', 'retell', 'elevenlabs')", name="known_platform"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    platform: Mapped[str] = mapped_column(String(16))
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


class Location(Base):
    """A branch: its own address, zone and hours; its resources book only with each other (or shared ones)."""

    __tablename__ = "locations"
    __table_args__ = (UniqueConstraint("business_id", "key"),)
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    timezone: Mapped[str | None] = mapped_column(String(64))  # None: the business's zone
    phone: Mapped[str | None] = mapped_column(String(50))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Resource(Base):
    __tablename__ = "resources"
    __table_args__ = (
        _parent("location_id", "locations"),
        UniqueConstraint("business_id", "key"),
        CheckConstraint("capacity >= 1", name="capacity_at_least_one"),
        CheckConstraint("kind in ('staff', 'room', 'device')", name="known_kind"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    timezone: Mapped[str | None] = mapped_column(String(64))  # None: the business's zone
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[str | None] = mapped_column(String(320))  # staff: told when their bookings move or go
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    location_id: Mapped[int | None] = mapped_column(Id, index=True)  # None: shared

    location: Mapped[Location | None] = relationship(lazy="joined")
    hours: Mapped[list[WorkingHours]] = relationship(
        order_by="(WorkingHours.weekday, WorkingHours.start_minute)", cascade="all, delete-orphan"
    )

    @property
    def own_timezone(self) -> str | None:
        """Its own zone, else its branch's; None: the business's. Its hours and dates are read there."""
        return self.timezone or (self.location.timezone if self.location else None)


class WorkingHours(Base):
    """A weekly opening interval in the resource's local time; several per day allowed."""

    __tablename__ = "working_hours"
    __table_args__ = (
        _parent("resource_id", "resources", cascade=True),
        CheckConstraint("weekday between 0 and 6", name="weekday_range"),
        CheckConstraint("0 <= start_minute and start_minute < end_minute and end_minute <= 1440", name="minutes_range"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    resource_id: Mapped[int] = mapped_column(Id, index=True)
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 = Monday
    start_minute: Mapped[int] = mapped_column(SmallInteger)
    end_minute: Mapped[int] = mapped_column(SmallInteger)


class AvailabilityException(Base):
    """Dated time off ('closed') or extra hours ('open'); resource_id None means the whole business."""

    __tablename__ = "availability_exceptions"
    __table_args__ = (
        _parent("resource_id", "resources", cascade=True),
        CheckConstraint("starts_at < ends_at", name="ordered"),
        CheckConstraint("kind in ('closed', 'open')", name="known_kind"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    resource_id: Mapped[int | None] = mapped_column(Id, index=True)
    kind: Mapped[str] = mapped_column(String(8))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(String(200))
    # Given as wall times (a date, or times without an offset): a business-wide one is stored once per zone its
    # resources keep, so a branch in another zone is closed on its own calendar date, not the business's.
    local: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    zone: Mapped[str | None] = mapped_column(String(64))  # that copy's zone; NULL: the business's own


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (
        UniqueConstraint("business_id", "key"),
        CheckConstraint("duration_minutes > 0", name="positive_duration"),
        CheckConstraint("buffer_before_minutes >= 0 and buffer_after_minutes >= 0", name="buffers"),
        CheckConstraint("slot_step_minutes > 0", name="positive_step"),
        CheckConstraint("min_notice_minutes >= 0 and horizon_days > 0", name="window"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    duration_minutes: Mapped[int] = mapped_column(Integer)
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    slot_step_minutes: Mapped[int] = mapped_column(Integer, default=15)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=60)
    horizon_days: Mapped[int] = mapped_column(Integer, default=90)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    reminder_offsets_minutes: Mapped[list[Any] | None] = mapped_column(JSONB)  # None: the business's
    intake_questions: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'::jsonb"))
    deposit_minor: Mapped[int | None] = mapped_column(Integer)  # None: no deposit
    deposit_currency: Mapped[str | None] = mapped_column(String(3))
    cancellation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # CancellationPolicy; None: the business's
    assignment: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # AssignmentConfig; None: first free
    party: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # PartyConfig; None: one person a booking
    series: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # SeriesConfig; None: allowed, up to 52

    requirements: Mapped[list[ServiceRequirement]] = relationship(
        order_by="ServiceRequirement.position", cascade="all, delete-orphan"
    )


class ServiceRequirement(Base):
    """One resource the service needs, chosen from a pool ("Dr A or Dr B")."""

    __tablename__ = "service_requirements"
    __table_args__ = (_parent("service_id", "services", cascade=True),)
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    service_id: Mapped[int] = mapped_column(Id, index=True)
    position: Mapped[int] = mapped_column(SmallInteger)
    label: Mapped[str] = mapped_column(String(100))

    members: Mapped[list[RequirementMember]] = relationship(
        order_by="RequirementMember.position", cascade="all, delete-orphan"
    )


class RequirementMember(Base):
    __tablename__ = "requirement_members"
    __table_args__ = (
        _parent("requirement_id", "service_requirements", cascade=True), _parent("resource_id", "resources"),
    )
    requirement_id: Mapped[int] = mapped_column(Id, primary_key=True)
    resource_id: Mapped[int] = mapped_column(Id, primary_key=True)
    business_id: Mapped[int] = mapped_column(Id, ForeignKey("businesses.id"), primary_key=True)  # the requirement's
    position: Mapped[int] = mapped_column(SmallInteger)  # pooled picks take the first free member

    resource: Mapped[Resource] = relationship(lazy="joined", viewonly=True)  # business_id is the requirement's


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        Index("customers_phone", "business_id", "phone", unique=True, postgresql_where=text("phone is not null")),
        Index("customers_email", "business_id", func.lower(text("email"))),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    email: Mapped[str | None] = mapped_column(String(320))
    timezone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    channels: Mapped[list[Any]] = mapped_column(default=lambda: ["whatsapp", "sms", "email"])
    opted_out: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'::jsonb"))  # said STOP
    no_show_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _created()
    erased_at: Mapped[datetime | None]  # set: personal data removed on request (the bookings stay, anonymous)


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        _parent("service_id", "services"), _parent("customer_id", "customers"), _parent("series_id", "booking_series"),
        UniqueConstraint("business_id", "code"),
        Index("bookings_business_start", "business_id", "starts_at"),
        CheckConstraint("starts_at < ends_at", name="ordered"),
        CheckConstraint(f"status in ({', '.join(repr(s.value) for s in BookingStatus)})", name="known_status"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    code: Mapped[str] = mapped_column(String(16))
    service_id: Mapped[int] = mapped_column(Id)
    customer_id: Mapped[int] = mapped_column(Id, index=True)
    status: Mapped[str] = mapped_column(String(16), default=BookingStatus.BOOKED)
    starts_at: Mapped[datetime]  # the service itself, without buffers
    ends_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(32))  # channel it came through: agent, mcp, page, staff, ...
    # the name its caller gave: who holds its code is shown this, never the customer's own (a stranger may book with
    # her phone). None: erased, or written by code older than the column
    contact_name: Mapped[str | None] = mapped_column(String(200))
    party_size: Mapped[int] = mapped_column(SmallInteger, default=1, server_default=text("1"))
    series_id: Mapped[int | None] = mapped_column(Id, index=True)
    intake: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    # read only: the booking's ids are set, and two writers of its business_id would overlap
    service: Mapped[Service] = relationship(lazy="joined", viewonly=True)
    customer: Mapped[Customer] = relationship(lazy="joined", viewonly=True)
    claims: Mapped[list[Claim]] = relationship(
        primaryjoin="and_(Claim.booking_id == Booking.id, Claim.active)", viewonly=True, order_by="Claim.resource_id"
    )


class BookingSeries(Base):
    """A recurring series ("every Tuesday at 10 for 6 weeks"): its occurrences are bookings with its id."""

    __tablename__ = "booking_series"
    __table_args__ = (_parent("service_id", "services"), _parent("customer_id", "customers"))
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    service_id: Mapped[int] = mapped_column(Id)
    customer_id: Mapped[int] = mapped_column(Id)
    rule: Mapped[dict[str, Any]] = mapped_column(JSONB)  # every, interval, count, mode
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()


class Payment(Base):
    """A deposit for a booking: the booking waits as pending_payment until the provider says it is paid."""

    __tablename__ = "payments"
    __table_args__ = (
        _parent("booking_id", "bookings"),
        _unique("payments", "provider", "provider_ref"),
        UniqueConstraint("booking_id", "business_id", name="payments_booking_id_key"),
        CheckConstraint("status in ('pending', 'paid', 'expired', 'refund_due', 'refunded', 'kept')",
                        name="known_status"),
        CheckConstraint("amount_minor > 0", name="positive_amount"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    booking_id: Mapped[int] = mapped_column(Id)
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str] = mapped_column(String(16))  # service (its price list) or no_shows (the policy)
    provider: Mapped[str] = mapped_column(String(16))  # stripe, local
    provider_ref: Mapped[str | None] = mapped_column(String(200))  # the checkout session id
    checkout_url: Mapped[str | None] = mapped_column(String(2000))
    expires_at: Mapped[datetime]  # unpaid by then: the booking expires and frees its slot
    paid_at: Mapped[datetime | None]
    log: Mapped[list[Any]] = mapped_column(default=list)  # [{"at", "event", ...}] from the provider
    payer_ref: Mapped[str | None] = mapped_column(String(200))  # the provider's customer, for a later fee
    payment_ref: Mapped[str | None] = mapped_column(String(200))  # the provider's payment (Stripe: PaymentIntent)
    created_at: Mapped[datetime] = _created()


class BookingFee(Base):
    """A late cancel's or a no-show's cost: a kept deposit, or a fee charged off-session through the provider.

    One per booking and kind, so a retried cancel or a second no-show mark never charges twice."""

    __tablename__ = "booking_fees"
    __table_args__ = (
        _parent("booking_id", "bookings"),
        UniqueConstraint("booking_id", "kind", "business_id", name="booking_fees_booking_id_kind_key"),
        CheckConstraint("kind in ('late_cancel', 'no_show')", name="known_kind"),
        CheckConstraint("status in ('deposit_kept', 'due', 'charging', 'charged', 'failed', 'no_payment_method')",
                        name="known_status"),
        CheckConstraint("amount_minor > 0", name="positive_amount"),
        Index("booking_fees_due", "status", postgresql_where=text("status in ('due', 'charging')")),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    booking_id: Mapped[int] = mapped_column(Id)
    kind: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24))
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_ref: Mapped[str | None] = mapped_column(String(200))  # the provider's charge (Stripe: PaymentIntent)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]  # a charger's lease: past it, another scheduler may retry (same key)
    log: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class Hold(Base):
    """A short-lived claim while a caller gives details; expired holds never block anyone."""

    __tablename__ = "holds"
    __table_args__ = (
        _parent("service_id", "services"), _parent("booking_id", "bookings"),
        CheckConstraint("status in ('active', 'converted', 'released')", name="known_status"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    service_id: Mapped[int] = mapped_column(Id)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="active")
    booking_id: Mapped[int | None] = mapped_column(Id)
    source: Mapped[str] = mapped_column(String(32))
    party_size: Mapped[int] = mapped_column(SmallInteger, default=1, server_default=text("1"))
    created_at: Mapped[datetime] = _created()
    holder: Mapped[str | None] = mapped_column(String(64))  # a public caller's (a digest): only it converts the hold


class Claim(Base):
    """A resource occupied over an interval (service plus buffers) by a booking or a hold.

    The database refuses double-booking: the exclusion constraint below covers capacity-1
    resources, and the `nextslot_claim_guard` trigger (see the initial migration) sets
    `exclusive` from the resource's capacity and checks peak overlap for capacity > 1.
    """

    __tablename__ = "claims"
    __table_args__ = (
        _parent("resource_id", "resources"), _parent("booking_id", "bookings"), _parent("hold_id", "holds"),
        ExcludeConstraint(
            (text("resource_id"), "="),
            (text("during"), "&&"),
            (text("business_id"), "="),
            using="gist",
            where=text("active and exclusive"),
            name="claims_no_double_booking",
        ),
        Index("claims_active_during", "resource_id", "during", postgresql_using="gist", postgresql_where=text("active")),
        CheckConstraint("booking_id is not null or hold_id is not null", name="owned"),
        CheckConstraint("not isempty(during) and not lower_inf(during) and not upper_inf(during)", name="bounded"),
        CheckConstraint("seats >= 1", name="positive_seats"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    resource_id: Mapped[int] = mapped_column(Id)
    booking_id: Mapped[int | None] = mapped_column(Id, index=True)
    hold_id: Mapped[int | None] = mapped_column(Id, index=True)
    during: Mapped[Range[datetime]] = mapped_column(TSTZRANGE)
    expires_at: Mapped[datetime | None]  # set while the claim belongs to an unconverted hold
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    exclusive: Mapped[bool] = mapped_column(Boolean, default=True)  # overwritten by the guard trigger
    seats: Mapped[int] = mapped_column(SmallInteger, default=1, server_default=text("1"))  # places of the resource
    created_at: Mapped[datetime] = _created()


class WaitlistEntry(Base):
    __tablename__ = "waitlist_entries"
    __table_args__ = (
        _parent("service_id", "services"), _parent("customer_id", "customers"),
        CheckConstraint("status in ('waiting', 'offered', 'booked', 'expired', 'withdrawn')", name="known_status"),
        CheckConstraint("party_size >= 1", name="party_size_positive"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    service_id: Mapped[int] = mapped_column(Id)
    customer_id: Mapped[int] = mapped_column(Id)
    party_size: Mapped[int] = mapped_column(SmallInteger, default=1, server_default=text("1"))  # people to seat at once
    earliest_date: Mapped[date] = mapped_column(Date)
    latest_date: Mapped[date] = mapped_column(Date)
    day_start_minute: Mapped[int] = mapped_column(SmallInteger, default=0)
    day_end_minute: Mapped[int] = mapped_column(SmallInteger, default=1440)
    preferred_resource_ids: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()


class FreedCapacity(Base):
    """Time given back (cancel, move, unpaid deposit), written with the change: the scheduler offers it to the waitlist."""

    __tablename__ = "freed_capacity"
    __table_args__ = (Index("freed_capacity_unprocessed", "created_at", postgresql_where=text("processed_at is null")),)
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(32))  # cancelled, rescheduled, expired
    processed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()


class WaitlistOffer(Base):
    """A freed slot offered to one waiting customer until `expires_at`; the first YES books it through the core."""

    __tablename__ = "waitlist_offers"
    __table_args__ = (
        _parent("entry_id", "waitlist_entries"), _parent("customer_id", "customers"), _parent("booking_id", "bookings"),
        UniqueConstraint("entry_id", "starts_at", "business_id", name="waitlist_offers_entry_id_starts_at_key"),  # the same slot is never offered twice to the same wish
        Index("waitlist_offers_open", "expires_at", postgresql_where=text("status = 'open'")),
        CheckConstraint("status in ('open', 'accepted', 'lost', 'declined', 'expired')", name="known_status"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    entry_id: Mapped[int] = mapped_column(Id)
    customer_id: Mapped[int] = mapped_column(Id, index=True)
    starts_at: Mapped[datetime]
    resource_ids: Mapped[list[Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="open")
    expires_at: Mapped[datetime]
    booking_id: Mapped[int | None] = mapped_column(Id)
    answered_at: Mapped[datetime | None]
    answer: Mapped[str | None] = mapped_column(String(32))  # the channel the answer came through
    created_at: Mapped[datetime] = _created()


class BookingHistory(Base):
    """Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE."""

    __tablename__ = "booking_history"
    __table_args__ = (_parent("booking_id", "bookings"),)
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    booking_id: Mapped[int] = mapped_column(Id, index=True)
    at: Mapped[datetime] = _created()
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(32))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    note: Mapped[str] = mapped_column(Text, default="")


class Notification(Base):
    """Transactional outbox: written in the same transaction as the booking change it announces."""

    __tablename__ = "notifications"
    __table_args__ = (
        _parent("booking_id", "bookings"), _parent("customer_id", "customers"), _parent("resource_id", "resources"),
        _parent("offer_id", "waitlist_offers"),
        Index("notifications_due", "due_at", postgresql_where=text("status = 'pending'")),
        Index("notifications_leased", "locked_until", postgresql_where=text("status = 'sending'")),
        Index("notifications_awaiting_receipt", "due_at", postgresql_where=text("status = 'sent'")),
        CheckConstraint("status in ('pending', 'sending', 'sent', 'delivered', 'unconfirmed', 'failed', 'void')",
                        name="known_status"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    booking_id: Mapped[int | None] = mapped_column(Id, index=True)
    customer_id: Mapped[int | None] = mapped_column(Id)
    resource_id: Mapped[int | None] = mapped_column(Id)  # set: for that staff member
    offer_id: Mapped[int | None] = mapped_column(Id)  # a waitlist offer, no booking
    kind: Mapped[str] = mapped_column(String(32))  # confirmation, reminder, rescheduled, cancelled
    # pending: due_at is when to send; sent: due_at is when to stop waiting for a delivery receipt
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    gave_up_on: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'::jsonb"))  # channels
    # the request it was written under (the HTTP request's id), bound again while the scheduler sends it
    request_id: Mapped[str | None] = mapped_column(String(64), default=current_request_id)


class DeliveryAttempt(Base):
    """One try on one channel: the provider's id, every status it reported, and why it failed."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        _parent("notification_id", "notifications"), _unique("delivery_attempts", "provider_id"),
        CheckConstraint("channel in ('whatsapp', 'sms', 'email')", name="known_channel"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    notification_id: Mapped[int] = mapped_column(Id, index=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    provider_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # queued, sent, delivered, read, undelivered, failed
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list[Any]] = mapped_column(default=list)  # [{"status", "at", "error_code"}]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class IdempotencyKey(Base):
    """The first result of a write, replayed for any retry with the same key."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (_parent("booking_id", "bookings"),)
    business_id: Mapped[int] = mapped_column(Id, ForeignKey("businesses.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    operation: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(64))
    booking_id: Mapped[int | None] = mapped_column(Id)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()


class InboundMessage(Base):
    """A customer's reply, as received, what it was read as, and what was done and answered."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        _parent("customer_id", "customers"), _parent("booking_id", "bookings"),
        # a number's STOP and START, found by the number (a customer record made after a STOP is opted out too)
        Index("inbound_messages_opt_outs", "sender", "channel", "id",
              postgresql_where=text("outcome in ('opted_out', 'opted_in')")),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int | None] = mapped_column(Id, ForeignKey("businesses.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(Id)
    booking_id: Mapped[int | None] = mapped_column(Id, index=True)
    channel: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(40))
    provider_id: Mapped[str | None] = mapped_column(String(200), unique=True)  # Twilio retries: answered once
    body: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(32))
    answer: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class EarlyReceipt(Base):
    """A delivery receipt the provider sent before the send was recorded (it was quicker than our record): kept
    until the attempt is stored, then applied to it. Like the inbox of replies, it has no business until then."""

    __tablename__ = "early_receipts"
    __table_args__ = (Index("early_receipts_reference", "reference", postgresql_where=text("reference is not null")),)
    provider_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    error_code: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime]
    # what it was sent as ("notification-12", "sms"), from the status callback's URL: a send the provider took but
    # whose sender died before recording it is recorded from this, not sent again
    reference: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))


class WebhookEndpoint(Base):
    """Where a business wants its booking events sent, signed with its own secret."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))  # kept in the clear: the HMAC needs it
    event_types: Mapped[list[Any]] = mapped_column()  # e.g. ["booking.created"]; ["*"] for all
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class WebhookSequence(Base):
    """An endpoint's last event number: taken at the commit of each transaction with events for it, and held locked
    until that commit, so its events are numbered 1, 2, 3 ... in the order they commit, none skipped."""

    __tablename__ = "webhook_sequences"
    __table_args__ = (_parent("endpoint_id", "webhook_endpoints", cascade=True),)
    endpoint_id: Mapped[int] = mapped_column(Id, primary_key=True)
    business_id: Mapped[int] = _business()
    last: Mapped[int] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """One event for one endpoint: written with the change it reports, sent and retried by the scheduler."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        _parent("endpoint_id", "webhook_endpoints"),
        Index("webhook_deliveries_due", "due_at", postgresql_where=text("status in ('pending', 'sending')")),
        Index("webhook_deliveries_waiting", "business_id", "due_at", "id",  # claimed by business (storage/leases.py)
              postgresql_where=text("status in ('pending', 'sending')")),
        CheckConstraint("status in ('pending', 'sending', 'delivered', 'failed')", name="known_status"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    endpoint_id: Mapped[int] = mapped_column(Id, index=True)
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # the exact bytes signed and sent, the same on every retry
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    log: Mapped[list[Any]] = mapped_column(default=list)  # [{"at", "status_code", "error", "ms"}]
    created_at: Mapped[datetime] = _created()
    delivered_at: Mapped[datetime | None]
    request_id: Mapped[str | None] = mapped_column(String(64), default=current_request_id)  # as on notifications


class CalendarFeed(Base):
    """A private ICS feed of a business's (or one resource's) bookings; only the token's hash is kept."""

    __tablename__ = "calendar_feeds"
    __table_args__ = (_parent("resource_id", "resources"), _unique("calendar_feeds", "token_hash"))
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    resource_id: Mapped[int | None] = mapped_column(Id)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None]


class CalendarGrant(Base):
    """A staff member's consent (OAuth) for nextslot to read and write their Google or Microsoft 365 calendar.

    Both tokens are encrypted (`nextslot.calendars.tokens`, keys derived from the secret key); the access token
    is refreshed before `expires_at`. A grant the provider refuses (revoked, expired) turns `needs_reconnect`:
    its calendars stop syncing and keep their last busy time, and the business is told once.
    """

    __tablename__ = "calendar_grants"
    __table_args__ = (
        _parent("resource_id", "resources"),
        UniqueConstraint("resource_id", "provider", "business_id", name="calendar_grants_resource_provider"),
        CheckConstraint("status in ('active', 'needs_reconnect')", name="known_status"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    resource_id: Mapped[int] = mapped_column(Id)
    provider: Mapped[str] = mapped_column(String(20))  # google, microsoft
    account: Mapped[str | None] = mapped_column(String(320))  # the connected account's address, for people
    scopes: Mapped[str] = mapped_column(Text, server_default="")
    access_token: Mapped[str] = mapped_column(Text)  # encrypted
    refresh_token: Mapped[str | None] = mapped_column(Text)  # encrypted
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), server_default="active")
    problem: Mapped[str | None] = mapped_column(Text)  # why it needs reconnecting (the provider's error code)
    problem_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class ExternalCalendar(Base):
    """A staff member's own calendar, read by the scheduler through its provider (CalDAV, Google, Microsoft);
    its busy time blocks their availability, and bookings are written into it (`calendar_writes`).

    A CalDAV password is stored encrypted like the grants' tokens (`enc:v1:` + Fernet; rows from before
    encryption may hold one in the clear); Google and Microsoft calendars read through their grant's tokens. The sync state (`sync_token`: CalDAV's sync-token, Google's syncToken, Graph's
    deltaLink; `ctag`; the window its `external_events` cover) lets an unchanged calendar be checked with one
    request. One sync at a time: a run leases the row until `locked_until` and writes its result only if the lease
    is still its own. A push channel (`channel_*`, only the secret's hash kept) marks it `pushed_at`: due at once.
    """

    __tablename__ = "external_calendars"
    __table_args__ = (
        _parent("resource_id", "resources"), _parent("grant_id", "calendar_grants", cascade=True),
        CheckConstraint("status in ('active', 'needs_reconnect')", name="known_status"),
        Index("external_calendars_channel", "channel_id", "business_id", unique=True,
              postgresql_where=text("channel_id is not null")),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    resource_id: Mapped[int] = mapped_column(Id, index=True)
    provider: Mapped[str] = mapped_column(String(20), server_default="caldav")  # nextslot.calendars.providers
    url: Mapped[str] = mapped_column(String(2000))
    grant_id: Mapped[int | None] = mapped_column(Id)
    calendar_ref: Mapped[str | None] = mapped_column(String(1000))  # the provider's calendar id (Google: primary)
    status: Mapped[str] = mapped_column(String(20), server_default="active")  # needs_reconnect: its grant failed
    write_back: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))  # bookings go into it
    pushed_at: Mapped[datetime | None]  # a push said it changed: sync it now (cleared by the sync that follows)
    channel_id: Mapped[str | None] = mapped_column(String(200))  # Google channel id / Graph subscription id
    channel_resource: Mapped[str | None] = mapped_column(String(1000))  # Google's resourceId (to stop the channel)
    channel_secret_hash: Mapped[str | None] = mapped_column(String(64))  # sha256 of the channel token/clientState
    channel_expires_at: Mapped[datetime | None]
    username: Mapped[str | None] = mapped_column(String(200))
    password: Mapped[str | None] = mapped_column(Text)  # encrypted: see above
    last_synced_at: Mapped[datetime | None]  # the last sync that succeeded
    last_error: Mapped[str | None] = mapped_column(Text)  # the last failure, cleared by the next success
    last_error_at: Mapped[datetime | None]
    sync_token: Mapped[str | None] = mapped_column(Text)  # RFC 6578, as of the stored events; None: not offered
    ctag: Mapped[str | None] = mapped_column(Text)  # CalendarServer's getctag, likewise
    window_start: Mapped[datetime | None]  # the window the stored events and busy time were read for
    window_end: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]  # set: a sync run holds the calendar until then
    created_at: Mapped[datetime] = _created()


class ExternalBusy(Base):
    """Time a resource's external calendar says is taken: counts as occupied, never becomes a booking.

    Merged intervals, recomputed from the calendar's `external_events` whenever a sync finds a change or the
    window moves; a failed sync leaves the last known intervals.
    """

    __tablename__ = "external_busy"
    __table_args__ = (
        _parent("resource_id", "resources"), _parent("calendar_id", "external_calendars", cascade=True),
        Index("external_busy_during", "resource_id", "during", postgresql_using="gist"),
        CheckConstraint("not isempty(during) and not lower_inf(during) and not upper_inf(during)", name="bounded"),
        CheckConstraint("seats >= 1", name="positive_seats"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    resource_id: Mapped[int] = mapped_column(Id)
    calendar_id: Mapped[int] = mapped_column(Id, index=True)
    during: Mapped[Range[datetime]] = mapped_column(TSTZRANGE)


class ExternalEvent(Base):
    """One event object of an external calendar as last read: its ETag and iCalendar text.

    A sync downloads only objects whose ETag changed and recomputes the busy time from these; objects that no
    longer touch the sync window are dropped at the next full read of the window.
    """

    __tablename__ = "external_events"
    __table_args__ = (
        _parent("calendar_id", "external_calendars", cascade=True), UniqueConstraint("calendar_id", "href", "business_id",
                                       name="external_events_calendar_id_href_key"),)
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    calendar_id: Mapped[int] = mapped_column(Id)
    href: Mapped[str] = mapped_column(String(2000))  # the server's path, unquoted
    etag: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[str] = mapped_column(Text)


class CalendarWrite(Base):
    """A booking as it should stand in one external calendar: the queue the scheduler drains into the provider.

    One row per (calendar, booking). Every change of the booking bumps `version` and makes the row due; a run
    leases it, writes the booking's state at that moment (created, moved, or removed when cancelled) under an id
    derived from our booking's id and the calendar's resource (so staff sharing one calendar each have their own),
    and marks `written_version`: a retry, a crash between the provider's answer and our record, or a second
    scheduler finds the same event instead of adding one. A row given up on (`failed`) is tried again at its
    `locked_until` while its booking is to come (none after).
    """

    __tablename__ = "calendar_writes"
    __table_args__ = (
        _parent("calendar_id", "external_calendars", cascade=True), _parent("booking_id", "bookings"),
        UniqueConstraint("calendar_id", "booking_id", "business_id", name="calendar_writes_one_per_booking"),
        Index("calendar_writes_due", "due_at", postgresql_where=text("status in ('pending', 'sending')")),
        Index("calendar_writes_retry", "locked_until", postgresql_where=text("status = 'failed'")),
        Index("calendar_writes_waiting", "business_id", "due_at", "id",  # claimed by business (storage/leases.py)
              postgresql_where=text("status in ('pending', 'sending') "
                                    "or (status = 'failed' and locked_until is not null)")),
        CheckConstraint("status in ('pending', 'sending', 'done', 'failed')", name="known_status"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    calendar_id: Mapped[int] = mapped_column(Id)
    booking_id: Mapped[int] = mapped_column(Id, index=True)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    written_version: Mapped[int] = mapped_column(Integer, server_default="0")
    remote_id: Mapped[str | None] = mapped_column(String(1024))  # the provider's event id (CalDAV: href)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    due_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = _created()
    # written before 0033 under the booking's own key, which staff sharing the calendar shared: moved to its own
    # key (the booking's and the resource's) at its next write
    legacy_key: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class StaffAccount(Base):
    """Someone who signs in to a business's console: an owner (may change settings) or staff (may not)."""

    __tablename__ = "staff_accounts"
    __table_args__ = (
        Index("staff_accounts_email", "business_id", func.lower(text("email")), unique=True),
        CheckConstraint("role in ('owner', 'staff')", name="known_role"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id, with its own salt and parameters
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created()


class StaffSession(Base):
    """A signed-in browser: only the cookie's hash is kept; it ends at expires_at or at sign-out."""

    __tablename__ = "staff_sessions"
    __table_args__ = (_parent("account_id", "staff_accounts", cascade=True), _unique("staff_sessions", "token_hash"))
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()  # the account's
    account_id: Mapped[int] = mapped_column(Id, index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime]


class SignInFailure(Base):
    """Wrong sign-ins in a row for one email at one business (known account or not, alike), and until when
    it is locked: shared by every server process, so many addresses get no more guesses than one."""

    __tablename__ = "sign_in_failures"
    business_id: Mapped[int] = mapped_column(Id, ForeignKey("businesses.id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)  # lower-cased
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class SenderBudget(Base):
    """What one sender of the public ways in (an address, a calling number) made at a business on one UTC day, of one
    budget (bookings and waitlist places; holds): shared by every server process, so N of them allow one budget."""

    __tablename__ = "sender_budgets"
    business_id: Mapped[int] = mapped_column(Id, ForeignKey("businesses.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # "bookings", "holds" (tools' WRITE_BUDGETS)
    # a digest of "address:203.0.113.9", "caller:+447911123456": no number or address kept
    sender: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)  # the UTC day counted; earlier ones are swept
    made: Mapped[int] = mapped_column(Integer)  # with the writes in flight, each given back if it made nothing


class Conversation(Base):
    """A customer's chat with a business over SMS, WhatsApp or the booking page's chat panel (web): its
    guided-flow state, the lease of the scheduler process answering it (one message at a time, in arrival order),
    and whether it is handed off to a person (then the engine stores its messages and does not answer)."""

    __tablename__ = "conversations"
    __table_args__ = (
        _parent("customer_id", "customers"),
        # one open conversation per number, business and channel: two webhooks at once meet here
        Index("conversations_open", "business_id", "phone", "channel", unique=True,
              postgresql_where=text("status = 'open' and channel <> 'web'")),
        # a web chat is told apart by its visitor's key (a cookie's hash), not a phone
        Index("conversations_open_web", "business_id", "visitor_key", unique=True,
              postgresql_where=text("status = 'open' and channel = 'web'")),
        Index("conversations_handoff", "business_id", "handoff_at", postgresql_where=text("handoff_at is not null")),
        Index("conversations_leased", "locked_until"),
        CheckConstraint("status in ('open', 'closed')", name="known_status"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    customer_id: Mapped[int | None] = mapped_column(Id)
    channel: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str] = mapped_column(String(20))  # E.164: the customer's identity in this conversation ("" on web)
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default="open")
    mode: Mapped[str] = mapped_column(String(16), default="model")  # model, guided (no model, or it failed)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the guided flow's step and choices
    model_calls: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))  # the model's, in and out
    last_message_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    closed_at: Mapped[datetime | None]
    handoff_at: Mapped[datetime | None]  # set: a person answers it, the engine stays silent
    handoff_reason: Mapped[str | None] = mapped_column(String(32))  # asked, menu, model, failures
    visitor_key: Mapped[str | None] = mapped_column(String(64))  # web: sha256 of the chat cookie
    # web: the name and phone it gave (to book with), a pending one-time code, the contact it proved;
    # SMS and WhatsApp: the number the customer wrote to ("to"), which replies are sent from
    identity: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))


class ConversationMessage(Base):
    """One message in or out. Inbound ones wait (processed_at null) until the conversation's worker answers them;
    MessageSid is unique, so a retried webhook stores nothing twice."""

    __tablename__ = "conversation_messages"
    __table_args__ = (
        _parent("conversation_id", "conversations"), _parent("notification_id", "notifications"),
        _unique("conversation_messages", "provider_id"),
        Index("conversation_messages_waiting", "conversation_id", "id",
              postgresql_where=text("direction = 'in' and processed_at is null")),
        CheckConstraint("direction in ('in', 'out')", name="known_direction"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    conversation_id: Mapped[int] = mapped_column(Id, index=True)
    direction: Mapped[str] = mapped_column(String(3))
    provider_id: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[dict[str, Any]] = mapped_column(default=dict)  # urls and types, or a location
    answered_by: Mapped[str | None] = mapped_column(String(16))  # out: model, guided, notice, handoff, staff
    staff_name: Mapped[str | None] = mapped_column(String(200))  # out, answered_by staff: who wrote it
    notification_id: Mapped[int | None] = mapped_column(Id)  # out: its outbox row
    created_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    # in: tries at answering it; after the last, processed with `error` set and the conversation handed to a person
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(String(64))


class ModelCall(Base):
    """One request to the conversation's model: which, tokens, how long, and what went wrong."""

    __tablename__ = "model_calls"
    __table_args__ = (
        _parent("conversation_id", "conversations"), _parent("message_id", "conversation_messages"),
        Index("model_calls_business_day", "business_id", "created_at"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    conversation_id: Mapped[int] = mapped_column(Id, index=True)
    message_id: Mapped[int | None] = mapped_column(Id)
    model: Mapped[str] = mapped_column(String(200))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class ConversationToolCall(Base):
    """One tool run for a conversation (by the model or the guided flow), with its arguments and result."""

    __tablename__ = "conversation_tool_calls"
    __table_args__ = (_parent("conversation_id", "conversations"), _parent("message_id", "conversation_messages"))
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    conversation_id: Mapped[int] = mapped_column(Id, index=True)
    message_id: Mapped[int | None] = mapped_column(Id)
    tool: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ok: Mapped[bool] = mapped_column(Boolean)
    by: Mapped[str] = mapped_column(String(16))  # model, guided
    latency_ms: Mapped[int | None] = mapped_column(Integer)  # how long the tool took
    created_at: Mapped[datetime]


class WhatsAppWindow(Base):
    """When a customer last wrote to a business on WhatsApp, and to which of our numbers: for 24 hours after, WhatsApp
    takes free-form text from that number; outside that window only an approved template goes through."""

    __tablename__ = "whatsapp_windows"
    __table_args__ = (UniqueConstraint("business_id", "phone", "number"),)
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    phone: Mapped[str] = mapped_column(String(20))  # the customer's, E.164, without "whatsapp:"
    number: Mapped[str] = mapped_column(String(20), server_default=text("''"))  # ours they wrote to ("": not said)
    last_inbound_at: Mapped[datetime]


class ContactProof(Base):
    """A customer proving a phone or email to a business's public endpoint: a one-time code sent there, then,
    once it is given back, a short-lived proof an assistant presents to find, move or cancel that contact's own
    bookings. Only hashes are kept: of the challenge the requester holds, of the code (keyed with the challenge,
    so a copy of the database cannot try the million codes), and of the proof."""

    __tablename__ = "contact_proofs"
    __table_args__ = (
        Index("contact_proofs_contact", "business_id", "contact", "created_at"),
        _unique("contact_proofs", "challenge_hash"), _unique("contact_proofs", "proof_hash"),
    )
    id: Mapped[int] = _id()
    business_id: Mapped[int] = _business()
    contact: Mapped[str] = mapped_column(String(320))  # E.164 phone or lower-cased email
    known: Mapped[bool] = mapped_column(Boolean)  # a customer of the business: only then was a code sent
    challenge_hash: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    tries: Mapped[int] = mapped_column(SmallInteger, default=0)
    code_expires_at: Mapped[datetime]
    proof_hash: Mapped[str | None] = mapped_column(String(64))
    proof_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class AuditEntry(Base):
    """One configuration or account change: who, when, through which channel, what changed. Append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("audit_log_business_at", "business_id", "id"),)
    id: Mapped[int] = _id()
    business_id: Mapped[int] = mapped_column(Id, ForeignKey("businesses.id"), primary_key=True)
    at: Mapped[datetime] = _created()
    actor: Mapped[str] = mapped_column(String(200))  # "owner@example.com", "api key nsk_AbCd", "cli (root)"
    channel: Mapped[str] = mapped_column(String(32))  # console, api, cli, oauth
    action: Mapped[str] = mapped_column(String(64))  # config.updated, api_key.created, customer.erased ...
    target: Mapped[str] = mapped_column(String(200), server_default="")
    changes: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))  # {"path": [before, after]}
    request_id: Mapped[str | None] = mapped_column(String(64), default=current_request_id)
