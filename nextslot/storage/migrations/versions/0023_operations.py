"""operations: the request id a notification or webhook delivery was written under (to follow a booking from its
HTTP request to the messages the scheduler sends); the audit log of configuration and account changes; when a
customer was erased

Revision ID: 0023_operations
Revises: 0022_booking_rules
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0023_operations"
down_revision = "0022_booking_rules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("request_id", sa.String(64), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("request_id", sa.String(64), nullable=True))
    op.add_column("customers", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), server_default="", nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("audit_log_business_at", "audit_log", ["business_id", "id"])
    # like booking_history: what was done stays done
    op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
               "FOR EACH ROW EXECUTE FUNCTION nextslot_append_only()")


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_column("customers", "erased_at")
    op.drop_column("webhook_deliveries", "request_id")
    op.drop_column("notifications", "request_id")
