"""WhatsApp's 24-hour window per customer and business; conversation limits: tokens spent per conversation, and
the tries at answering each message; how long each tool call took

Revision ID: 0019_whatsapp_windows
Revises: 0018_conversation_handoff
"""
import sqlalchemy as sa
from alembic import op

revision = "0019_whatsapp_windows"
down_revision = "0018_conversation_handoff"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "whatsapp_windows",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False, index=True),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("number", sa.String(20), server_default="", nullable=False),
        sa.Column("last_inbound_at", TZ, nullable=False),
        sa.UniqueConstraint("business_id", "phone", "number"),
    )
    op.add_column("conversations", sa.Column("tokens", sa.Integer(), server_default="0", nullable=False))
    op.add_column("conversation_messages", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("conversation_messages", sa.Column("error", sa.String(64), nullable=True))
    op.add_column("conversation_tool_calls", sa.Column("latency_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("conversation_tool_calls", "latency_ms")
    op.drop_column("conversation_messages", "error")
    op.drop_column("conversation_messages", "attempts")
    op.drop_column("conversations", "tokens")
    op.drop_table("whatsapp_windows")
