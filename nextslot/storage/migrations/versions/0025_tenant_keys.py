"""tenant keys: the exclusion constraint against double-booking and the unique constraints scoped to one booking,
calendar, grant or waitlist entry gain business_id, so each holds within one tenant's rows (a step towards
distributing the tables by business_id; tests/storage/test_tenant_keys.py lists what still lacks it).

Each row's business_id is its parent's, so no constraint's meaning changes: two rows that clashed before clash now.

Revision ID: 0025_tenant_keys
Revises: 0023_operations
"""
from alembic import op

revision = "0025_tenant_keys"
down_revision = "0024_plan_cache"
branch_labels = None
depends_on = None

# table, constraint name (kept, code names some), columns before
UNIQUE = [
    ("booking_fees", "booking_fees_booking_id_kind_key", ["booking_id", "kind"]),
    ("calendar_grants", "calendar_grants_resource_provider", ["resource_id", "provider"]),
    ("calendar_writes", "calendar_writes_one_per_booking", ["calendar_id", "booking_id"]),
    ("external_events", "external_events_calendar_id_href_key", ["calendar_id", "href"]),
    ("payments", "payments_booking_id_key", ["booking_id"]),
    ("waitlist_offers", "waitlist_offers_entry_id_starts_at_key", ["entry_id", "starts_at"]),
]
EXCLUDE = "EXCLUDE USING gist (resource_id WITH =, during WITH &&{}) WHERE (active AND exclusive)"


def upgrade() -> None:
    for table, name, columns in UNIQUE:
        op.drop_constraint(name, table, type_="unique")
        op.create_unique_constraint(name, table, [*columns, "business_id"])  # last: the old leading columns still lead the index
    op.execute("ALTER TABLE claims DROP CONSTRAINT claims_no_double_booking")
    op.execute("ALTER TABLE claims ADD CONSTRAINT claims_no_double_booking " + EXCLUDE.format(", business_id WITH ="))


def downgrade() -> None:
    op.execute("ALTER TABLE claims DROP CONSTRAINT claims_no_double_booking")
    op.execute("ALTER TABLE claims ADD CONSTRAINT claims_no_double_booking " + EXCLUDE.format(""))
    for table, name, columns in UNIQUE:
        op.drop_constraint(name, table, type_="unique")
        op.create_unique_constraint(name, table, columns)
