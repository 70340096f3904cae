"""citus keys: every key and every reference between a tenant's rows carries business_id, so the tables can be
distributed by business_id (Citus) without changing what any constraint means.

- the six tables that reached their business through a parent (hours, requirements and their members, staff
  sessions, OAuth codes and tokens) get a business_id column, filled from the parent;
- primary keys become (id, business_id): id first, so a lookup by id alone (the ORM's identity, the triggers)
  still walks the key's index; Citus only needs the column in the key, not first;
- foreign keys become (parent_id, business_id) -> parent (id, business_id), same names, same ON DELETE;
- the unique values looked up before the business is known (key, token and proof hashes, providers' ids) are
  unique per business, their value first so the lookup by value alone still uses the index. They are random or
  issued unique by the provider, and a retried webhook is stored under the same business, so nothing that clashed
  before passes now (tests/storage/test_tenant_keys.py says why, and what stays global).

Revision ID: 0027_citus_keys
Revises: 0026_service_series
"""
from alembic import op

revision = "0027_citus_keys"
down_revision = "0026_service_series"
branch_labels = None
depends_on = None

# table, its parent, the column pointing at the parent: business_id is copied from there (parents first)
NEW_COLUMN = [
    ("working_hours", "resources", "resource_id"),
    ("service_requirements", "services", "service_id"),
    ("requirement_members", "service_requirements", "requirement_id"),
    ("staff_sessions", "staff_accounts", "account_id"),
    ("oauth_codes", "oauth_grants", "grant_id"),
    ("oauth_tokens", "oauth_grants", "grant_id"),
]
INDEXED = ["working_hours", "service_requirements", "staff_sessions"]  # the ORM's tenant rows index business_id

# table: its primary key's columns before (business_id is appended)
KEYS = {table: ["id"] for table in (
    "api_keys", "audit_log", "availability_exceptions", "booking_fees", "booking_history", "booking_series",
    "bookings", "calendar_feeds", "calendar_grants", "calendar_writes", "claims", "contact_proofs",
    "conversation_messages", "conversation_tool_calls", "conversations", "customers", "delivery_attempts",
    "external_busy", "external_calendars", "external_events", "freed_capacity", "holds", "locations",
    "model_calls", "notifications", "oauth_grants", "payments", "resources", "service_requirements", "services",
    "staff_accounts", "staff_sessions", "voice_integrations", "waitlist_entries", "waitlist_offers",
    "webhook_deliveries", "webhook_endpoints", "whatsapp_windows", "working_hours")}
KEYS |= {"requirement_members": ["requirement_id", "resource_id"], "oauth_codes": ["code_hash"],
         "oauth_tokens": ["token_hash"]}

# table, column, parent, ON DELETE CASCADE; the constraint keeps its name, <table>_<column>_fkey
PARENTS = [
    ("availability_exceptions", "resource_id", "resources", True),
    ("booking_fees", "booking_id", "bookings", False),
    ("booking_history", "booking_id", "bookings", False),
    ("booking_series", "customer_id", "customers", False),
    ("booking_series", "service_id", "services", False),
    ("bookings", "customer_id", "customers", False),
    ("bookings", "series_id", "booking_series", False),
    ("bookings", "service_id", "services", False),
    ("calendar_feeds", "resource_id", "resources", False),
    ("calendar_grants", "resource_id", "resources", False),
    ("calendar_writes", "booking_id", "bookings", False),
    ("calendar_writes", "calendar_id", "external_calendars", True),
    ("claims", "booking_id", "bookings", False),
    ("claims", "hold_id", "holds", False),
    ("claims", "resource_id", "resources", False),
    ("conversation_messages", "conversation_id", "conversations", False),
    ("conversation_messages", "notification_id", "notifications", False),
    ("conversation_tool_calls", "conversation_id", "conversations", False),
    ("conversation_tool_calls", "message_id", "conversation_messages", False),
    ("conversations", "customer_id", "customers", False),
    ("delivery_attempts", "notification_id", "notifications", False),
    ("external_busy", "calendar_id", "external_calendars", True),
    ("external_busy", "resource_id", "resources", False),
    ("external_calendars", "grant_id", "calendar_grants", True),
    ("external_calendars", "resource_id", "resources", False),
    ("external_events", "calendar_id", "external_calendars", True),
    ("holds", "booking_id", "bookings", False),
    ("holds", "service_id", "services", False),
    ("idempotency_keys", "booking_id", "bookings", False),
    ("inbound_messages", "booking_id", "bookings", False),
    ("inbound_messages", "customer_id", "customers", False),
    ("model_calls", "conversation_id", "conversations", False),
    ("model_calls", "message_id", "conversation_messages", False),
    ("notifications", "booking_id", "bookings", False),
    ("notifications", "customer_id", "customers", False),
    ("notifications", "offer_id", "waitlist_offers", False),
    ("notifications", "resource_id", "resources", False),
    ("oauth_codes", "grant_id", "oauth_grants", True),
    ("oauth_grants", "account_id", "staff_accounts", True),
    ("oauth_tokens", "grant_id", "oauth_grants", True),
    ("payments", "booking_id", "bookings", False),
    ("requirement_members", "requirement_id", "service_requirements", True),
    ("requirement_members", "resource_id", "resources", False),
    ("resources", "location_id", "locations", False),
    ("service_requirements", "service_id", "services", True),
    ("staff_sessions", "account_id", "staff_accounts", True),
    ("waitlist_entries", "customer_id", "customers", False),
    ("waitlist_entries", "service_id", "services", False),
    ("waitlist_offers", "booking_id", "bookings", False),
    ("waitlist_offers", "customer_id", "customers", False),
    ("waitlist_offers", "entry_id", "waitlist_entries", False),
    ("webhook_deliveries", "endpoint_id", "webhook_endpoints", False),
    ("working_hours", "resource_id", "resources", True),
]

# table, unique constraint (kept), its columns before (business_id is appended)
UNIQUE = [
    ("api_keys", "api_keys_key_hash_key", "key_hash"),
    ("calendar_feeds", "calendar_feeds_token_hash_key", "token_hash"),
    ("contact_proofs", "contact_proofs_challenge_hash_key", "challenge_hash"),
    ("contact_proofs", "contact_proofs_proof_hash_key", "proof_hash"),
    ("conversation_messages", "conversation_messages_provider_id_key", "provider_id"),
    ("delivery_attempts", "delivery_attempts_provider_id_key", "provider_id"),
    ("payments", "payments_provider_provider_ref_key", "provider, provider_ref"),
    ("staff_sessions", "staff_sessions_token_hash_key", "token_hash"),
]
CHANNEL_INDEX = "CREATE UNIQUE INDEX external_calendars_channel ON external_calendars ({}) WHERE channel_id IS NOT NULL"


def upgrade() -> None:
    for table, parent, column in NEW_COLUMN:
        op.execute(f"ALTER TABLE {table} ADD COLUMN business_id bigint REFERENCES businesses (id)")
        op.execute(f"UPDATE {table} t SET business_id = p.business_id FROM {parent} p WHERE p.id = t.{column}")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN business_id SET NOT NULL")
    for table in INDEXED:
        op.execute(f"CREATE INDEX ix_{table}_business_id ON {table} (business_id)")
    rekey([(table, [*columns, "business_id"]) for table, columns in KEYS.items()], composite=True)
    for table, name, columns in UNIQUE:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} UNIQUE ({columns}, business_id)")
    op.execute("DROP INDEX external_calendars_channel")
    op.execute(CHANNEL_INDEX.format("channel_id, business_id"))


def downgrade() -> None:
    op.execute("DROP INDEX external_calendars_channel")
    op.execute(CHANNEL_INDEX.format("channel_id"))
    for table, name, columns in UNIQUE:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} UNIQUE ({columns})")
    rekey(list(KEYS.items()), composite=False)
    for table, _, _ in NEW_COLUMN:
        op.execute(f"ALTER TABLE {table} DROP COLUMN business_id")  # its index and foreign key go with it


def rekey(keys: list[tuple[str, list[str]]], composite: bool) -> None:
    """Drop the foreign keys between tenant rows, set the primary keys, and add the foreign keys back, composite
    (parent_id, business_id) or by the parent's id alone."""
    for table, column, _, _ in PARENTS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_fkey")
    for table, columns in keys:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
                   f"ADD CONSTRAINT {table}_pkey PRIMARY KEY ({', '.join(columns)})")
    for table, column, parent, cascade in PARENTS:
        child, referenced = (f"{column}, business_id", "id, business_id") if composite else (column, "id")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fkey FOREIGN KEY ({child}) "
                   f"REFERENCES {parent} ({referenced}){' ON DELETE CASCADE' if cascade else ''}")
