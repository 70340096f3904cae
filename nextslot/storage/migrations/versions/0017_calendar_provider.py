"""calendar provider: which provider reads each external calendar (CalDAV for every existing one)

Revision ID: 0017_calendar_provider
Revises: 0016_conversations
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_calendar_provider"
down_revision = "0016_conversations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("external_calendars", sa.Column("provider", sa.String(20), server_default="caldav",
                                                  nullable=False))


def downgrade() -> None:
    op.drop_column("external_calendars", "provider")
