"""Is the schema ready to be distributed by tenant (Citus, by business_id)? Asked of the migrated catalog.

Citus needs every primary key, unique and exclusion constraint of a distributed table to include the distribution
column, and a foreign key between distributed tables to include it on both sides. This lists every constraint (and
unique index) of the migrated schema that does not include business_id, and compares it with the known exceptions
below: a new one fails here until it carries business_id or is added to the list with its reason.
"""
from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

pytestmark = pytest.mark.storage

CATALOG = text("""
    select t.relname as tbl, c.conname as name, c.contype as kind,
           exists (select 1 from pg_attribute a where a.attrelid = c.conrelid and a.attname = 'business_id'
                   and not a.attisdropped) as table_has_it
      from pg_constraint c
      join pg_class t on t.oid = c.conrelid
      join pg_namespace n on n.oid = t.relnamespace
     where n.nspname = current_schema() and c.contype in ('p', 'u', 'x', 'f') and t.relname <> 'alembic_version'
       and not exists (select 1 from pg_attribute a
                        where a.attrelid = c.conrelid and a.attnum = any (c.conkey) and a.attname = 'business_id')
    union all
    select t.relname, i.relname, 'i',
           exists (select 1 from pg_attribute a where a.attrelid = x.indrelid and a.attname = 'business_id'
                   and not a.attisdropped)
      from pg_index x
      join pg_class i on i.oid = x.indexrelid
      join pg_class t on t.oid = x.indrelid
      join pg_namespace n on n.oid = t.relnamespace
     where n.nspname = current_schema() and x.indisunique
       and not exists (select 1 from pg_constraint c where c.conindid = x.indexrelid)
       and not exists (select 1 from pg_attribute a
                        where a.attrelid = x.indrelid and a.attnum = any (x.indkey) and a.attname = 'business_id')
     order by 1, 2
""")


def without_business_id(conn: Connection) -> list[tuple[str, str, str, bool]]:
    return [(r.tbl, r.name, r.kind, r.table_has_it) for r in conn.execute(CATALOG)]


# Tables with business_id whose primary key is a surrogate `id` alone. Citus: (business_id, id) as the key, and every
# foreign key below pointing at (business_id, id); the code mostly filters by business_id already.
SURROGATE_KEYS = {f"{table}_pkey" for table in (
    "api_keys", "audit_log", "availability_exceptions", "booking_fees", "booking_history", "booking_series",
    "bookings", "calendar_feeds", "calendar_grants", "calendar_writes", "claims", "contact_proofs",
    "conversation_messages", "conversation_tool_calls", "conversations", "customers", "delivery_attempts",
    "external_busy", "external_calendars", "external_events", "freed_capacity", "holds", "inbound_messages",
    "locations", "model_calls", "notifications", "oauth_grants", "payments", "resources", "services",
    "staff_accounts", "voice_integrations", "waitlist_entries", "waitlist_offers", "webhook_deliveries",
    "webhook_endpoints", "whatsapp_windows")}

# Foreign keys by a parent's id alone (both rows carry business_id, always the same). Citus: composite foreign keys
# (business_id, parent_id) -> parent (business_id, id), after the keys above are composite.
PARENT_ID_KEYS = {
    "availability_exceptions_resource_id_fkey", "booking_fees_booking_id_fkey", "booking_history_booking_id_fkey",
    "booking_series_customer_id_fkey", "booking_series_service_id_fkey", "bookings_customer_id_fkey",
    "bookings_series_id_fkey", "bookings_service_id_fkey", "calendar_feeds_resource_id_fkey",
    "calendar_grants_resource_id_fkey", "calendar_writes_booking_id_fkey", "calendar_writes_calendar_id_fkey",
    "claims_booking_id_fkey", "claims_hold_id_fkey", "claims_resource_id_fkey",
    "conversation_messages_conversation_id_fkey", "conversation_messages_notification_id_fkey",
    "conversation_tool_calls_conversation_id_fkey", "conversation_tool_calls_message_id_fkey",
    "conversations_customer_id_fkey", "delivery_attempts_notification_id_fkey", "external_busy_calendar_id_fkey",
    "external_busy_resource_id_fkey", "external_calendars_grant_id_fkey", "external_calendars_resource_id_fkey",
    "external_events_calendar_id_fkey", "holds_booking_id_fkey", "holds_service_id_fkey",
    "idempotency_keys_booking_id_fkey", "inbound_messages_booking_id_fkey", "inbound_messages_customer_id_fkey",
    "model_calls_conversation_id_fkey", "model_calls_message_id_fkey", "notifications_booking_id_fkey",
    "notifications_customer_id_fkey", "notifications_offer_id_fkey", "notifications_resource_id_fkey",
    "oauth_grants_account_id_fkey", "payments_booking_id_fkey", "resources_location_id_fkey",
    "waitlist_entries_customer_id_fkey", "waitlist_entries_service_id_fkey", "waitlist_offers_booking_id_fkey",
    "waitlist_offers_customer_id_fkey", "waitlist_offers_entry_id_fkey", "webhook_deliveries_endpoint_id_fkey",
    # to oauth_clients, which has no business (see below)
    "oauth_grants_client_id_fkey",
}

# Unique across all businesses on purpose: a token, key hash or provider's id is looked up before the business is
# known (a request's bearer key, a feed or proof token, a provider's webhook). Citus: keep them in a small reference
# or lookup table (value -> business_id), or give up global uniqueness for a per-business one.
GLOBAL_LOOKUPS = {
    "api_keys_key_hash_key", "calendar_feeds_token_hash_key", "contact_proofs_challenge_hash_key",
    "contact_proofs_proof_hash_key", "conversation_messages_provider_id_key", "delivery_attempts_provider_id_key",
    "external_calendars_channel", "inbound_messages_provider_id_key", "payments_provider_provider_ref_key",
}

# Tables without a business_id column. businesses is the tenant table itself (Citus: distributed by id, or a
# reference table; its slug stays globally unique). oauth_clients are shared by every business (a reference table).
# The others reach their business through a parent and would need a business_id column first.
NO_TENANT_COLUMN = {
    "businesses_pkey", "businesses_slug_key", "oauth_clients_pkey",
    "oauth_codes_grant_id_fkey", "oauth_codes_pkey", "oauth_tokens_grant_id_fkey", "oauth_tokens_pkey",
    "requirement_members_pkey", "requirement_members_requirement_id_fkey", "requirement_members_resource_id_fkey",
    "service_requirements_pkey", "service_requirements_service_id_fkey",
    "staff_sessions_account_id_fkey", "staff_sessions_pkey", "staff_sessions_token_hash_key",
    "working_hours_pkey", "working_hours_resource_id_fkey",
}

# made tenant-scoped by migration 0025: must not come back without business_id
TENANT_SCOPED = {
    "claims_no_double_booking", "booking_fees_booking_id_kind_key", "calendar_grants_resource_provider",
    "calendar_writes_one_per_booking", "external_events_calendar_id_href_key", "payments_booking_id_key",
    "waitlist_offers_entry_id_starts_at_key",
}


def test_every_key_without_business_id_is_a_known_exception(engine):
    with engine.connect() as conn:
        found = without_business_id(conn)
    names = {name for _, name, _, _ in found}

    assert not names & TENANT_SCOPED
    assert not [name for _, name, kind, _ in found if kind == "x"]  # no exclusion constraint spans businesses
    assert {name for _, name, _, has_column in found if not has_column} == NO_TENANT_COLUMN
    assert {name for _, name, kind, has_column in found if has_column and kind == "p"} == SURROGATE_KEYS
    assert {name for _, name, kind, has_column in found if has_column and kind == "f"} == PARENT_ID_KEYS
    assert {name for _, name, kind, has_column in found if has_column and kind in "ui"} == GLOBAL_LOOKUPS


def test_the_tenant_scoped_constraints_exist_with_business_id(engine):
    with engine.connect() as conn:
        defined = dict(conn.execute(text(
            "select conname, pg_get_constraintdef(oid) from pg_constraint where conname = any (:names)"),
            {"names": list(TENANT_SCOPED)}).all())
    assert set(defined) == TENANT_SCOPED
    assert all("business_id" in definition for definition in defined.values()), defined
