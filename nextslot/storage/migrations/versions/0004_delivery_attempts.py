"""delivery_attempts: every try to deliver a notification, per channel, with its receipts;
notifications remember the channels they gave up on; customers their opted-out channels;
services may override the business's reminder offsets

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OLD_STATUSES = "status in ('pending', 'sending', 'sent', 'failed', 'void')"
NEW_STATUSES = "status in ('pending', 'sending', 'sent', 'delivered', 'unconfirmed', 'failed', 'void')"


def upgrade() -> None:
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("history", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("channel in ('whatsapp', 'sms', 'email')", name="known_channel"),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"]),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider_id"),
    )
    op.create_index(op.f("ix_delivery_attempts_business_id"), "delivery_attempts", ["business_id"])
    op.create_index(op.f("ix_delivery_attempts_notification_id"), "delivery_attempts", ["notification_id"])
    op.add_column("notifications", sa.Column("gave_up_on", postgresql.JSONB(astext_type=sa.Text()),
                                             server_default=sa.text("'[]'::jsonb"), nullable=False))
    op.drop_constraint("known_status", "notifications", type_="check")
    op.create_check_constraint("known_status", "notifications", NEW_STATUSES)
    # leases that ran out (a dispatcher died between claim and send) are found by this index
    op.create_index("notifications_leased", "notifications", ["locked_until"],
                    postgresql_where=sa.text("status = 'sending'"))
    op.create_index("notifications_awaiting_receipt", "notifications", ["due_at"],
                    postgresql_where=sa.text("status = 'sent'"))
    op.add_column("customers", sa.Column("opted_out", postgresql.JSONB(astext_type=sa.Text()),
                                         server_default=sa.text("'[]'::jsonb"), nullable=False))
    op.add_column("services", sa.Column("reminder_offsets_minutes", postgresql.JSONB(astext_type=sa.Text()),
                                        nullable=True))


def downgrade() -> None:
    op.drop_column("services", "reminder_offsets_minutes")
    op.drop_column("customers", "opted_out")
    op.drop_index("notifications_awaiting_receipt", table_name="notifications")
    op.drop_index("notifications_leased", table_name="notifications")
    op.execute("update notifications set status = 'sent' where status in ('delivered', 'unconfirmed')")
    op.drop_constraint("known_status", "notifications", type_="check")
    op.create_check_constraint("known_status", "notifications", OLD_STATUSES)
    op.drop_column("notifications", "gave_up_on")
    op.drop_index(op.f("ix_delivery_attempts_notification_id"), table_name="delivery_attempts")
    op.drop_index(op.f("ix_delivery_attempts_business_id"), table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
