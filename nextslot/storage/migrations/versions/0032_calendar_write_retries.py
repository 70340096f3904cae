"""calendar write retries: a write given up on (failed after its tries) is tried again at its `locked_until` while
its booking is to come, by the writer's own queue, so a write a provider refuses while the calendar reads fine (a
write quota, throttling) no longer waits for a failing sync or a reconnect. The writer's claim finds those rows by
this partial index (failed rows are few; without it every claim would scan the whole table).

Writes given up before this release are tried once more now, for bookings not over yet.

Revision ID: 0032_calendar_write_retries
Revises: 0031_booking_contact_name
"""

import sqlalchemy as sa
from alembic import op

revision = "0032_calendar_write_retries"
down_revision = "0031_booking_contact_name"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("calendar_writes_retry", "calendar_writes", ["locked_until"],
                    postgresql_where=sa.text("status = 'failed'"))
    op.execute("""
        update calendar_writes w set locked_until = now()
         where w.status = 'failed'
           and exists (select 1 from bookings b where b.business_id = w.business_id and b.id = w.booking_id
                                                  and b.ends_at > now())
    """)


def downgrade() -> None:
    op.execute("update calendar_writes set locked_until = null where status = 'failed'")
    op.drop_index("calendar_writes_retry", table_name="calendar_writes")
