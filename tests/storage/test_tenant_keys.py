"""Is the schema ready to be distributed by tenant (Citus, by business_id)? Asked of the migrated catalog.

Citus needs every primary key, unique and exclusion constraint of a distributed table to include the distribution
column, and a foreign key between distributed tables to include it on both sides. This lists every constraint (and
unique index) of the migrated schema that does not include business_id: since migration 0026 only the reference
tables and the shared inbox below, each with its reason. A new key without business_id fails here.

Primary keys are (id, business_id) and references (parent_id, business_id) -> parent (id, business_id): id first,
so a lookup by id alone still uses the key's index; Citus asks only that business_id be in the key.
"""
from __future__ import annotations

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

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


# Citus reference tables (copied whole to every node, no distribution column). businesses: the tenants themselves,
# whose slug (the booking page's address) is unique across all of them; oauth_clients: the apps every business shares.
# A distributed table may reference a reference table, so a grant's reference to its client stays as it is.
REFERENCE_TABLES = {"businesses_pkey", "businesses_slug_key", "oauth_clients_pkey", "oauth_grants_client_id_fkey"}

# The shared numbers' inbox of replies: a stranger's text has no business (business_id null), and a retried webhook
# is recognised by the provider's id before any business is known. Citus: a local table on the coordinator; its
# references to customers and bookings (composite here, checked whenever the business is known) are kept by the code.
SHARED_INBOX = {"inbound_messages_pkey", "inbound_messages_provider_id_key",
                # a delivery receipt that came before its send was recorded: no business is known until it is
                "early_receipts_pkey"}

# Unique values found before the business is known: an API key's, a feed token's, a session cookie's or a contact
# proof's hash, a provider's message or payment id, a calendar's push channel. Unique per business since migration
# 0026 (Citus needs business_id in every unique constraint), with the value leading so the lookup by value alone
# still walks the index. Global uniqueness is kept by the values themselves: the hashes are of 256-bit random
# secrets, the providers issue unique ids, and a retried webhook is stored under the same business as the first,
# so it still meets the constraint. Under Citus the lookup by value alone asks every shard (one index probe each);
# a reference table value -> business_id is the step after, if that fan-out ever shows on the request path.
LOOKUPS = {
    "api_keys_key_hash_key": "key_hash", "calendar_feeds_token_hash_key": "token_hash",
    "contact_proofs_challenge_hash_key": "challenge_hash", "contact_proofs_proof_hash_key": "proof_hash",
    "conversation_messages_provider_id_key": "provider_id", "delivery_attempts_provider_id_key": "provider_id",
    "external_calendars_channel": "channel_id", "payments_provider_provider_ref_key": "provider, provider_ref",
    "staff_sessions_token_hash_key": "token_hash",
}

# made tenant-scoped by migration 0025: must not come back without business_id
TENANT_SCOPED = {
    "claims_no_double_booking", "booking_fees_booking_id_kind_key", "calendar_grants_resource_provider",
    "calendar_writes_one_per_booking", "external_events_calendar_id_href_key", "payments_booking_id_key",
    "waitlist_offers_entry_id_starts_at_key",
}


def test_only_reference_tables_and_the_shared_inbox_have_keys_without_business_id(engine):
    with engine.connect() as conn:
        found = without_business_id(conn)

    assert {name for _, name, _, _ in found} == REFERENCE_TABLES | SHARED_INBOX


def test_lookup_values_lead_their_per_business_unique_keys(engine):
    with engine.connect() as conn:
        defined = dict(conn.execute(text(
            "select i.relname, pg_get_indexdef(i.oid) from pg_class i where i.relname = any (:names)"),
            {"names": list(LOOKUPS)}).all())
    assert {name: definition.split("(", 1)[1].split(")")[0] for name, definition in defined.items()} == {
        name: f"{columns}, business_id" for name, columns in LOOKUPS.items()}


def test_a_row_cannot_point_at_another_business_s_row(engine):
    with engine.connect() as conn, conn.begin():
        first, second = (conn.execute(text(
            "insert into businesses (slug, name, timezone, country, details) "
            "values (:slug, 'Shop', 'UTC', 'US', '{}') returning id"), {"slug": f"tenant-keys-{n}"}).scalar()
            for n in (1, 2))
        resource = conn.execute(text(
            "insert into resources (business_id, key, name, kind, capacity, active) "
            "values (:b, 'chair', 'Chair', 'room', 1, true) returning id"), {"b": second}).scalar()
        hours = "insert into working_hours (business_id, resource_id, weekday, start_minute, end_minute) " \
                "values (:b, :r, 0, 540, 1020)"
        conn.execute(text(hours), {"b": second, "r": resource})
        with pytest.raises(IntegrityError, match="working_hours_resource_id_fkey"), conn.begin_nested():
            conn.execute(text(hours), {"b": first, "r": resource})
        conn.rollback()


def test_the_tenant_scoped_constraints_exist_with_business_id(engine):
    with engine.connect() as conn:
        defined = dict(conn.execute(text(
            "select conname, pg_get_constraintdef(oid) from pg_constraint where conname = any (:names)"),
            {"names": list(TENANT_SCOPED)}).all())
    assert set(defined) == TENANT_SCOPED
    assert all("business_id" in definition for definition in defined.values()), defined
