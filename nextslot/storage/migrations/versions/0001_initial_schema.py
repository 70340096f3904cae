"""initial schema: tables, btree_gist, and the database-level double-booking guards

Revision ID: 0001
Revises:
Create Date: 2026-11-25 04:35:03.432140
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

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
    IF NOT NEW.active OR cap = 1 THEN
        RETURN NEW;  -- capacity 1: the exclusion constraint decides
    END IF;
    -- serialise writers of this resource; every statement below sees their committed claims,
    -- and a capacity change committed meanwhile is read again
    SELECT capacity INTO cap FROM resources WHERE id = NEW.resource_id FOR UPDATE;
    NEW.exclusive := (cap = 1);
    IF cap = 1 THEN
        RETURN NEW;
    END IF;
    -- the peak of overlapping intervals is reached at the new claim's start or at a later start
    SELECT coalesce(max(n), 0) INTO peak FROM (
        SELECT (SELECT count(*) FROM claims c2
                 WHERE c2.resource_id = NEW.resource_id AND c2.active
                   AND c2.id IS DISTINCT FROM NEW.id AND c2.during @> p.t) AS n
          FROM (SELECT lower(NEW.during) AS t
                UNION
                SELECT lower(c.during) FROM claims c
                 WHERE c.resource_id = NEW.resource_id AND c.active
                   AND c.id IS DISTINCT FROM NEW.id AND c.during && NEW.during
                   AND lower(c.during) > lower(NEW.during)) AS p
    ) AS counts;
    IF peak + 1 > cap THEN
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
    -- re-flag live claims: going to capacity 1 puts them under the exclusion constraint,
    -- which refuses the change if they overlap
    UPDATE claims SET exclusive = (NEW.capacity = 1) WHERE resource_id = NEW.id AND active;
    IF NEW.capacity > 1 AND NEW.capacity < OLD.capacity THEN
        SELECT coalesce(max((SELECT count(*) FROM claims c2
                              WHERE c2.resource_id = NEW.id AND c2.active AND c2.during @> lower(c.during))), 0)
          INTO worst FROM claims c WHERE c.resource_id = NEW.id AND c.active;
        IF worst > NEW.capacity THEN
            RAISE EXCEPTION 'resource % has % overlapping claims; capacity % is too low', NEW.id, worst, NEW.capacity
                USING ERRCODE = 'exclusion_violation';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION nextslot_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


def upgrade() -> None:
    # the exclusion constraint on claims needs '=' on bigint inside a gist index
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table('businesses',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug')
    )
    op.create_table('api_keys',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('business_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    op.create_index(op.f('ix_api_keys_business_id'), 'api_keys', ['business_id'], unique=False)
    op.create_index(op.f('ix_api_keys_prefix'), 'api_keys', ['prefix'], unique=False)
    op.create_table('customers',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('business_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('channels', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('no_show_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('customers_email', 'customers', ['business_id', sa.literal_column('lower(email)')], unique=False)
    op.create_index('customers_phone', 'customers', ['business_id', 'phone'], unique=True, postgresql_where=sa.text('phone is not null'))
    op.create_index(op.f('ix_customers_business_id'), 'customers', ['business_id'], unique=False)
    op.create_table('resources',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('business_id', sa.BigInteger(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.CheckConstraint("kind in ('staff', 'room', 'device')", name='known_kind'),
    sa.CheckConstraint('capacity >= 1', name='capacity_at_least_one'),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('business_id', 'key')
    )
    op.create_index(op.f('ix_resources_business_id'), 'resources', ['business_id'], unique=False)
    op.create_table('services',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('business_id', sa.BigInteger(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('buffer_before_minutes', sa.Integer(), nullable=False),
    sa.Column('buffer_after_minutes', sa.Integer(), nullable=False),
    sa.Column('slot_step_minutes', sa.Integer(), nullable=False),
    sa.Column('min_notice_minutes', sa.Integer(), nullable=False),
    sa.Column('horizon_days', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.CheckConstraint('buffer_before_minutes >= 0 and buffer_after_minutes >= 0', name='buffers'),
    sa.CheckConstraint('duration_minutes > 0', name='positive_duration'),
    sa.CheckConstraint('min_notice_minutes >= 0 and horizon_days > 0', name='window'),
    sa.CheckConstraint('slot_step_minutes > 0', name='positive_step'),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('business_id', 'key')
    )
    op.create_index(op.f('ix_services_business_id'), 'services', ['business_id'], unique=False)
    op.create_table('availability_exceptions',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('business_id', sa.BigInteger(), nullable=False),
    sa.Column('resource_id', sa.BigInteger(), nullable=True),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.CheckConstraint("kind in ('closed', 'open')", name='known_kind'),
    sa.CheckConstraint('starts_at < ends_at', name='ordered'),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], ),
    sa.ForeignKeyConstraint(['resource_id'], ['resources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_availability_exceptions_business_id'), 'availability_exceptions', ['business_id'], unique=False)
    op.create_index(op.f('ix_availability_exceptions_resource_id'), 'availability_exceptions', ['resource_id'], unique=False)
    op.create_table('bookings',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('business_id', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('service_id', sa.BigInteger(), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('intake', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status in ('booked', 'confirmed', 'cancelled', 'no_show', 'completed')", name='known_status'),
    sa.CheckConstraint('starts_at < ends_at', name='ordered'),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('business_id', 'code')
    )
    op.create_index('bookings_business_start', 'bookings', ['business_id', 'starts_at'], unique=False)
    op.create_index(op.f('ix_bookings_business_id'), 'bookings', ['business_id'], unique=False)
    op.create_index(op.f('ix_bookings_customer_id'), 'bookings', ['customer_id'], unique=False)
    op.create_table('service_requirements',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('service_id', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_service_requirements_service_id'), 'service_requirements', ['service_id'], unique=False)
    op.create_table('waitlist_entries',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('business_id', sa.BigInteger(), nullable=False),
    sa.Column('service_id', sa.BigInteger(), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('earliest_date', sa.Date(), nullable=False),
    sa.Column('latest_date', sa.Date(), nullable=False),
    sa.Column('day_start_minute', sa.SmallInteger(), nullable=False),
    sa.Column('day_end_minute', sa.SmallInteger(), nullable=False),
    sa.Column('preferred_resource_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status in ('waiting', 'offered', 'booked', 'expired', 'withdrawn')", name='known_status'),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_waitlist_entries_business_id'), 'waitlist_entries', ['business_id'], unique=False)
    op.create_table('working_hours',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('resource_id', sa.BigInteger(), nullable=False),
    sa.Column('weekday', sa.SmallInteger(), nullable=False),
    sa.Column('start_minute', sa.SmallInteger(), nullable=False),
    sa.Column('end_minute', sa.SmallInteger(), nullable=False),
    sa.CheckConstraint('0 <= start_minute and start_minute < end_minute and end_minute <= 1440', name='minutes_range'),
    sa.CheckConstraint('weekday between 0 and 6', name='weekday_range'),
    sa.ForeignKeyConstraint(['resource_id'], ['resources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_working_hours_resource_id'), 'working_hours', ['resource_id'], unique=False)
    op.create_table('booking_history',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('business_id', sa.BigInteger(), nullable=False),
    sa.Column('booking_id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], ),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_booking_history_booking_id'), 'booking_history', ['booking_id'], unique=False)
    op.create_index(op.f('ix_booking_history_business_id'), 'booking_history', ['business_id'], unique=False)
    op.create_table('holds',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('business_id', sa.BigInteger(), nullable=False),
    sa.Column('service_id', sa.BigInteger(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('booking_id', sa.BigInteger(), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status in ('active', 'converted', 'released')", name='known_status'),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], ),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], ),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_holds_business_id'), 'holds', ['business_id'], unique=False)
    op.create_table('idempotency_keys',
    sa.Column('business_id', sa.BigInteger(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('operation', sa.String(length=32), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('booking_id', sa.BigInteger(), nullable=True),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], ),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], ),
    sa.PrimaryKeyConstraint('business_id', 'key')
    )
    op.create_table('notifications',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('business_id', sa.BigInteger(), nullable=False),
    sa.Column('booking_id', sa.BigInteger(), nullable=True),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.CheckConstraint("status in ('pending', 'sending', 'sent', 'failed', 'void')", name='known_status'),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], ),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_notifications_booking_id'), 'notifications', ['booking_id'], unique=False)
    op.create_index(op.f('ix_notifications_business_id'), 'notifications', ['business_id'], unique=False)
    op.create_index('notifications_due', 'notifications', ['due_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_table('requirement_members',
    sa.Column('requirement_id', sa.BigInteger(), nullable=False),
    sa.Column('resource_id', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.ForeignKeyConstraint(['requirement_id'], ['service_requirements.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resource_id'], ['resources.id'], ),
    sa.PrimaryKeyConstraint('requirement_id', 'resource_id')
    )
    op.create_table('claims',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('business_id', sa.BigInteger(), nullable=False),
    sa.Column('resource_id', sa.BigInteger(), nullable=False),
    sa.Column('booking_id', sa.BigInteger(), nullable=True),
    sa.Column('hold_id', sa.BigInteger(), nullable=True),
    sa.Column('during', postgresql.TSTZRANGE(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('exclusive', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    postgresql.ExcludeConstraint((sa.text('resource_id'), '='), (sa.text('during'), '&&'), where=sa.text('active and exclusive'), using='gist', name='claims_no_double_booking'),
    sa.CheckConstraint('booking_id is not null or hold_id is not null', name='owned'),
    sa.CheckConstraint('not isempty(during) and not lower_inf(during) and not upper_inf(during)', name='bounded'),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], ),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], ),
    sa.ForeignKeyConstraint(['hold_id'], ['holds.id'], ),
    sa.ForeignKeyConstraint(['resource_id'], ['resources.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('claims_active_during', 'claims', ['resource_id', 'during'], unique=False, postgresql_using='gist', postgresql_where=sa.text('active'))
    op.create_index(op.f('ix_claims_booking_id'), 'claims', ['booking_id'], unique=False)
    op.create_index(op.f('ix_claims_business_id'), 'claims', ['business_id'], unique=False)
    op.create_index(op.f('ix_claims_hold_id'), 'claims', ['hold_id'], unique=False)

    # The claim guard: `exclusive` always comes from the resource's capacity (so no insert can
    # opt out of the exclusion constraint), and for capacity > 1 the resource row is locked and
    # the peak overlap checked, so even raw SQL cannot put a resource over capacity.
    op.execute(CLAIM_GUARD)
    op.execute(
        "CREATE TRIGGER claims_guard BEFORE INSERT OR UPDATE OF active, during, resource_id ON claims "
        "FOR EACH ROW EXECUTE FUNCTION nextslot_claim_guard()"
    )
    op.execute(CAPACITY_GUARD)
    op.execute(
        "CREATE TRIGGER resources_capacity_guard AFTER UPDATE OF capacity ON resources "
        "FOR EACH ROW WHEN (OLD.capacity IS DISTINCT FROM NEW.capacity) EXECUTE FUNCTION nextslot_capacity_guard()"
    )
    op.execute(APPEND_ONLY)
    op.execute(
        "CREATE TRIGGER booking_history_append_only BEFORE UPDATE OR DELETE ON booking_history "
        "FOR EACH ROW EXECUTE FUNCTION nextslot_append_only()"
    )
    op.execute(
        "CREATE TRIGGER booking_history_no_truncate BEFORE TRUNCATE ON booking_history "
        "FOR EACH STATEMENT EXECUTE FUNCTION nextslot_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS booking_history_no_truncate ON booking_history")
    op.execute("DROP TRIGGER IF EXISTS booking_history_append_only ON booking_history")
    op.execute("DROP TRIGGER IF EXISTS claims_guard ON claims")
    op.execute("DROP TRIGGER IF EXISTS resources_capacity_guard ON resources")
    op.execute("DROP FUNCTION IF EXISTS nextslot_capacity_guard()")
    op.execute("DROP FUNCTION IF EXISTS nextslot_append_only()")
    op.execute("DROP FUNCTION IF EXISTS nextslot_claim_guard()")
    op.drop_index(op.f('ix_claims_hold_id'), table_name='claims')
    op.drop_index(op.f('ix_claims_business_id'), table_name='claims')
    op.drop_index(op.f('ix_claims_booking_id'), table_name='claims')
    op.drop_index('claims_active_during', table_name='claims', postgresql_using='gist', postgresql_where=sa.text('active'))
    op.drop_table('claims')
    op.drop_table('requirement_members')
    op.drop_index('notifications_due', table_name='notifications', postgresql_where=sa.text("status = 'pending'"))
    op.drop_index(op.f('ix_notifications_business_id'), table_name='notifications')
    op.drop_index(op.f('ix_notifications_booking_id'), table_name='notifications')
    op.drop_table('notifications')
    op.drop_table('idempotency_keys')
    op.drop_index(op.f('ix_holds_business_id'), table_name='holds')
    op.drop_table('holds')
    op.drop_index(op.f('ix_booking_history_business_id'), table_name='booking_history')
    op.drop_index(op.f('ix_booking_history_booking_id'), table_name='booking_history')
    op.drop_table('booking_history')
    op.drop_index(op.f('ix_working_hours_resource_id'), table_name='working_hours')
    op.drop_table('working_hours')
    op.drop_index(op.f('ix_waitlist_entries_business_id'), table_name='waitlist_entries')
    op.drop_table('waitlist_entries')
    op.drop_index(op.f('ix_service_requirements_service_id'), table_name='service_requirements')
    op.drop_table('service_requirements')
    op.drop_index(op.f('ix_bookings_customer_id'), table_name='bookings')
    op.drop_index(op.f('ix_bookings_business_id'), table_name='bookings')
    op.drop_index('bookings_business_start', table_name='bookings')
    op.drop_table('bookings')
    op.drop_index(op.f('ix_availability_exceptions_resource_id'), table_name='availability_exceptions')
    op.drop_index(op.f('ix_availability_exceptions_business_id'), table_name='availability_exceptions')
    op.drop_table('availability_exceptions')
    op.drop_index(op.f('ix_services_business_id'), table_name='services')
    op.drop_table('services')
    op.drop_index(op.f('ix_resources_business_id'), table_name='resources')
    op.drop_table('resources')
    op.drop_index(op.f('ix_customers_business_id'), table_name='customers')
    op.drop_index('customers_phone', table_name='customers', postgresql_where=sa.text('phone is not null'))
    op.drop_index('customers_email', table_name='customers')
    op.drop_table('customers')
    op.drop_index(op.f('ix_api_keys_prefix'), table_name='api_keys')
    op.drop_index(op.f('ix_api_keys_business_id'), table_name='api_keys')
    op.drop_table('api_keys')
    op.drop_table('businesses')
