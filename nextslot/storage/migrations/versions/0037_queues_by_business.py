"""queues by business: webhook deliveries and calendar writes are claimed each business in turn (storage/leases.py),
its rows waiting found through an index on (business_id, due_at, id) of the rows that may fall due.

Revision ID: 0037_queues_by_business
Revises: 0036_sender_budgets
"""
import sqlalchemy as sa
from alembic import op

revision = "0037_queues_by_business"
down_revision = "0036_sender_budgets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("webhook_deliveries_waiting", "webhook_deliveries", ["business_id", "due_at", "id"],
                    postgresql_where=sa.text("status in ('pending', 'sending')"))
    op.create_index("calendar_writes_waiting", "calendar_writes", ["business_id", "due_at", "id"],
                    postgresql_where=sa.text("status in ('pending', 'sending') "
                                             "or (status = 'failed' and locked_until is not null)"))


def downgrade() -> None:
    op.drop_index("calendar_writes_waiting", table_name="calendar_writes")
    op.drop_index("webhook_deliveries_waiting", table_name="webhook_deliveries")
