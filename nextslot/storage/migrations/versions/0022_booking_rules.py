"""booking rules: cancellation cutoffs and late fees (a policy per service, fees recorded per booking, a deposit
that can be kept, the saved payment method a deposit leaves); fair assignment per service; seats: a claim takes
one or more places of a resource (a party of k in a class), and the claim guard counts places, not claims;
recurring series (bookings.series_id); locations (branches) and each resource's

Revision ID: 0022_booking_rules
Revises: 0018_conversation_handoff
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022_booking_rules"
down_revision = "0021_calendar_grants"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
# the guard of 0001 with seats: the peak of places taken (not of claims) must stay within the capacity, and a
# claim of several places on a capacity-1 resource is refused outright (the exclusion constraint counts rows)
CLAIM_GUARD = """
CREATE OR REPLACE FUNCTION nextslot_claim_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cap integer;
    peak integer;
BEGIN
    SELECT capacity INTO cap FROM resources WHERE id = NEW.resource_id;
    IF cap IS NULL THEN
        RETURN NEW;  -- the foreign key reports the unknown resource
    END IF;
    NEW.exclusive := (cap = 1);
    IF NOT NEW.active OR (cap = 1 AND NEW.seats = 1) THEN
        RETURN NEW;  -- one place of a capacity-1 resource: the exclusion constraint decides
    END IF;
    -- serialise writers of this resource; every statement below sees their committed claims,
    -- and a capacity change committed meanwhile is read again
    SELECT capacity INTO cap FROM resources WHERE id = NEW.resource_id FOR UPDATE;
    NEW.exclusive := (cap = 1);
    IF NEW.seats > cap THEN
        RAISE EXCEPTION 'resource % has % places; % asked', NEW.resource_id, cap, NEW.seats
            USING ERRCODE = 'exclusion_violation';
    END IF;
    IF cap = 1 THEN
        RETURN NEW;
    END IF;
    -- the peak of places taken is reached at the new claim's start or at a later start
    SELECT coalesce(max(n), 0) INTO peak FROM (
        SELECT (SELECT coalesce(sum(c2.seats), 0) FROM claims c2
                 WHERE c2.resource_id = NEW.resource_id AND c2.active
                   AND c2.id IS DISTINCT FROM NEW.id AND c2.during @> p.t) AS n
          FROM (SELECT lower(NEW.during) AS t
                UNION
                SELECT lower(c.during) FROM claims c
                 WHERE c.resource_id = NEW.resource_id AND c.active
                   AND c.id IS DISTINCT FROM NEW.id AND c.during && NEW.during
                   AND lower(c.during) > lower(NEW.during)) AS p
    ) AS counts;
    IF peak + NEW.seats > cap THEN
        RAISE EXCEPTION 'resource % is at its capacity of % during %', NEW.resource_id, cap, NEW.during
            USING ERRCODE = 'exclusion_violation';
    END IF;
    RETURN NEW;
END
$$;
"""

CAPACITY_GUARD = """
CREATE OR REPLACE FUNCTION nextslot_capacity_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    worst integer;
BEGIN
    UPDATE claims SET exclusive = (NEW.capacity = 1) WHERE resource_id = NEW.id AND active;
    IF NEW.capacity < OLD.capacity THEN
        SELECT coalesce(max((SELECT sum(c2.seats) FROM claims c2
                              WHERE c2.resource_id = NEW.id AND c2.active AND c2.during @> lower(c.during))), 0)
          INTO worst FROM claims c WHERE c.resource_id = NEW.id AND c.active;
        IF worst > NEW.capacity THEN
            RAISE EXCEPTION 'resource % has % places taken at once; capacity % is too low', NEW.id, worst,
                NEW.capacity USING ERRCODE = 'exclusion_violation';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
"""

PAYMENT_STATUSES = "('pending', 'paid', 'expired', 'refund_due', 'refunded')"
PAYMENT_STATUSES_NOW = "('pending', 'paid', 'expired', 'refund_due', 'refunded', 'kept')"


def upgrade() -> None:
    op.add_column("services", sa.Column("cancellation", postgresql.JSONB(), nullable=True))  # None: the business's
    op.add_column("services", sa.Column("assignment", postgresql.JSONB(), nullable=True))  # None: first free
    # a deposit paid through a provider that can charge again later (Stripe: the customer and the payment)
    op.add_column("payments", sa.Column("payer_ref", sa.String(200), nullable=True))
    op.add_column("payments", sa.Column("payment_ref", sa.String(200), nullable=True))
    op.drop_constraint("known_status", "payments", type_="check")
    op.create_check_constraint("known_status", "payments", f"status in {PAYMENT_STATUSES_NOW}")
    op.create_table(
        "booking_fees",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), sa.ForeignKey("bookings.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("provider", sa.String(16), nullable=True),
        sa.Column("provider_ref", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", TZ, nullable=True),
        sa.Column("log", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("booking_id", "kind"),  # one late-cancel fee, one no-show fee: never charged twice
        sa.CheckConstraint("kind in ('late_cancel', 'no_show')", name="known_kind"),
        sa.CheckConstraint("status in ('deposit_kept', 'due', 'charging', 'charged', 'failed', 'no_payment_method')",
                           name="known_status"),
        sa.CheckConstraint("amount_minor > 0", name="positive_amount"),
    )
    op.create_index(op.f("ix_booking_fees_business_id"), "booking_fees", ["business_id"])
    # seats: a party of k takes k places of a class (capacity > 1) in one claim
    op.add_column("claims", sa.Column("seats", sa.SmallInteger(), server_default="1", nullable=False))
    op.create_check_constraint("positive_seats", "claims", "seats >= 1")
    op.add_column("bookings", sa.Column("party_size", sa.SmallInteger(), server_default="1", nullable=False))
    op.add_column("holds", sa.Column("party_size", sa.SmallInteger(), server_default="1", nullable=False))
    op.add_column("services", sa.Column("party", postgresql.JSONB(), nullable=True))  # None: one person a booking
    op.create_table(
        "booking_series",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False),
        sa.Column("service_id", sa.BigInteger(), sa.ForeignKey("services.id"), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("rule", postgresql.JSONB(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_booking_series_business_id"), "booking_series", ["business_id"])
    op.add_column("bookings", sa.Column("series_id", sa.BigInteger(), sa.ForeignKey("booking_series.id"),
                                        nullable=True))
    op.create_index(op.f("ix_bookings_series_id"), "bookings", ["series_id"])
    # locations: branches with their own address, zone and hours; a resource belongs to one (or is shared)
    op.create_table(
        "locations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(500), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("phone", sa.String(50), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("business_id", "key"),
    )
    op.create_index(op.f("ix_locations_business_id"), "locations", ["business_id"])
    op.add_column("resources", sa.Column("location_id", sa.BigInteger(), sa.ForeignKey("locations.id"),
                                         nullable=True))
    op.create_index(op.f("ix_resources_location_id"), "resources", ["location_id"])
    op.execute(CLAIM_GUARD)
    op.execute(CAPACITY_GUARD)
    op.execute("DROP TRIGGER IF EXISTS claims_guard ON claims")
    op.execute("CREATE TRIGGER claims_guard BEFORE INSERT OR UPDATE OF active, during, resource_id, seats ON claims "
               "FOR EACH ROW EXECUTE FUNCTION nextslot_claim_guard()")
    op.create_index("booking_fees_due", "booking_fees", ["status"], postgresql_where=sa.text("status in ('due', 'charging')"))


def downgrade() -> None:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("initial_schema", Path(__file__).with_name("0001_initial_schema.py"))
    assert spec is not None and spec.loader is not None
    initial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(initial)  # the guards as they were before seats
    op.execute("DROP TRIGGER IF EXISTS claims_guard ON claims")
    op.execute(initial.CLAIM_GUARD)
    op.execute(initial.CAPACITY_GUARD)
    op.execute("CREATE TRIGGER claims_guard BEFORE INSERT OR UPDATE OF active, during, resource_id ON claims "
               "FOR EACH ROW EXECUTE FUNCTION nextslot_claim_guard()")
    op.drop_index(op.f("ix_resources_location_id"), table_name="resources")
    op.drop_column("resources", "location_id")
    op.drop_index(op.f("ix_locations_business_id"), table_name="locations")
    op.drop_table("locations")
    op.drop_index(op.f("ix_bookings_series_id"), table_name="bookings")
    op.drop_column("bookings", "series_id")
    op.drop_index(op.f("ix_booking_series_business_id"), table_name="booking_series")
    op.drop_table("booking_series")
    op.drop_column("services", "party")
    op.drop_column("holds", "party_size")
    op.drop_column("bookings", "party_size")
    op.drop_constraint("positive_seats", "claims", type_="check")
    op.drop_column("claims", "seats")
    op.drop_index("booking_fees_due", table_name="booking_fees")
    op.drop_index(op.f("ix_booking_fees_business_id"), table_name="booking_fees")
    op.drop_table("booking_fees")
    op.execute("UPDATE payments SET status = 'paid' WHERE status = 'kept'")
    op.drop_constraint("known_status", "payments", type_="check")
    op.create_check_constraint("known_status", "payments", f"status in {PAYMENT_STATUSES}")
    op.drop_column("payments", "payment_ref")
    op.drop_column("payments", "payer_ref")
    op.drop_column("services", "assignment")
    op.drop_column("services", "cancellation")
