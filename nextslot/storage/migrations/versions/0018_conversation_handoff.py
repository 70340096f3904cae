"""conversation handoff to a person and web chats: who handed it off and why, staff replies, a web visitor's key
and identity (stated contact, pending one-time code, verified contact)

Revision ID: 0018_conversation_handoff
Revises: 0017_calendar_provider
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018_conversation_handoff"
down_revision = "0017_calendar_provider"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("conversations", sa.Column("handoff_at", TZ, nullable=True))
    op.add_column("conversations", sa.Column("handoff_reason", sa.String(32), nullable=True))
    op.add_column("conversations", sa.Column("visitor_key", sa.String(64), nullable=True))
    op.add_column("conversations", sa.Column("identity", postgresql.JSONB(), server_default="{}", nullable=False))
    op.add_column("conversation_messages", sa.Column("staff_name", sa.String(200), nullable=True))
    # a web chat has no phone until it says one: it is told apart by its visitor's key instead
    op.drop_index("conversations_open", table_name="conversations")
    op.create_index("conversations_open", "conversations", ["business_id", "phone", "channel"], unique=True,
                    postgresql_where=sa.text("status = 'open' and channel <> 'web'"))
    op.create_index("conversations_open_web", "conversations", ["business_id", "visitor_key"], unique=True,
                    postgresql_where=sa.text("status = 'open' and channel = 'web'"))
    op.create_index("conversations_handoff", "conversations", ["business_id", "handoff_at"],
                    postgresql_where=sa.text("handoff_at is not null"))


def downgrade() -> None:
    op.drop_index("conversations_handoff", table_name="conversations")
    op.drop_index("conversations_open_web", table_name="conversations")
    op.drop_index("conversations_open", table_name="conversations")
    op.execute("update conversations set status = 'closed', closed_at = now() where channel = 'web'")
    op.create_index("conversations_open", "conversations", ["business_id", "phone", "channel"], unique=True,
                    postgresql_where=sa.text("status = 'open'"))
    op.drop_column("conversation_messages", "staff_name")
    op.drop_column("conversations", "identity")
    op.drop_column("conversations", "visitor_key")
    op.drop_column("conversations", "handoff_reason")
    op.drop_column("conversations", "handoff_at")
