"""operations: the request id a notification or webhook delivery was written under (to follow a booking from its
HTTP request to the messages the scheduler sends)

Revision ID: 0023_operations
Revises: 0018_conversation_handoff
"""
import sqlalchemy as sa
from alembic import op

revision = "0023_operations"
down_revision = "0018_conversation_handoff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("request_id", sa.String(64), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("request_id", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("webhook_deliveries", "request_id")
    op.drop_column("notifications", "request_id")
