"""idempotency key unused: one statement for a booking that found its time taken to learn whether its key is free
and unused, so it can be refused without taking the key (no row written, no transaction).

The function asks for the advisory lock every key's taker holds until its transaction ends, then, in a snapshot of
its own taken after that (a VOLATILE function's statements each take one), whether a row keeps the key. A taker in
flight is seen by the lock, one that committed before by the row, and one that takes the key after the lock was
free came after this request, as if it had waited for it.

Revision ID: 0034_idempotency_key_unused
Revises: 0033_calendar_event_per_staff
"""

from alembic import op

revision = "0034_idempotency_key_unused"
down_revision = "0033_calendar_event_per_staff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
create function idempotency_key_unused(p_business bigint, p_key text, p_locks integer, p_lock integer)
returns boolean language plpgsql volatile as $$
begin
    if not pg_try_advisory_xact_lock_shared(p_locks, p_lock) then
        return false;
    end if;
    return not exists (select 1 from idempotency_keys where business_id = p_business and key = p_key);
end $$;
""")


def downgrade() -> None:
    op.execute("drop function idempotency_key_unused(bigint, text, integer, integer)")
