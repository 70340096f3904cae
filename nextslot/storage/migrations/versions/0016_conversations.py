"""conversations over SMS and WhatsApp: conversations, their messages, model calls and tool calls

Revision ID: 0016_conversations
Revises: 0015_oauth
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016_conversations"
down_revision = "0015_oauth"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False, index=True),
        sa.Column("customer_id", sa.BigInteger(), sa.ForeignKey("customers.id"), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("state", postgresql.JSONB(), nullable=False),
        sa.Column("model_calls", sa.Integer(), nullable=False),
        sa.Column("last_message_at", TZ, nullable=False),
        sa.Column("locked_until", TZ, nullable=True),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("closed_at", TZ, nullable=True),
        sa.CheckConstraint("status in ('open', 'closed')", name="known_status"),
    )
    op.create_index("conversations_open", "conversations", ["business_id", "phone", "channel"], unique=True,
                    postgresql_where=sa.text("status = 'open'"))
    op.create_index("conversations_leased", "conversations", ["locked_until"])
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False, index=True),
        sa.Column("conversation_id", sa.BigInteger(), sa.ForeignKey("conversations.id"), nullable=False, index=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("provider_id", sa.String(200), nullable=True, unique=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("media", postgresql.JSONB(), nullable=False),
        sa.Column("answered_by", sa.String(16), nullable=True),
        sa.Column("notification_id", sa.BigInteger(), sa.ForeignKey("notifications.id"), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("processed_at", TZ, nullable=True),
        sa.CheckConstraint("direction in ('in', 'out')", name="known_direction"),
    )
    op.create_index("conversation_messages_waiting", "conversation_messages", ["conversation_id", "id"],
                    postgresql_where=sa.text("direction = 'in' and processed_at is null"))
    op.create_table(
        "model_calls",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False, index=True),
        sa.Column("conversation_id", sa.BigInteger(), sa.ForeignKey("conversations.id"), nullable=False, index=True),
        sa.Column("message_id", sa.BigInteger(), sa.ForeignKey("conversation_messages.id"), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("model_calls_business_day", "model_calls", ["business_id", "created_at"])
    op.create_table(
        "conversation_tool_calls",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False, index=True),
        sa.Column("conversation_id", sa.BigInteger(), sa.ForeignKey("conversations.id"), nullable=False, index=True),
        sa.Column("message_id", sa.BigInteger(), sa.ForeignKey("conversation_messages.id"), nullable=True),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("arguments", postgresql.JSONB(), nullable=False),
        sa.Column("result", postgresql.JSONB(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("by", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("conversation_tool_calls")
    op.drop_table("model_calls")
    op.drop_table("conversation_messages")
    op.drop_table("conversations")
