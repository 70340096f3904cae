"""intake questions and deposits per service, payments, bookings pending payment or expired unpaid

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OLD_STATUSES = "status in ('booked', 'confirmed', 'cancelled', 'no_show', 'completed')"
NEW_STATUSES = "status in ('pending_payment', 'booked', 'confirmed', 'cancelled', 'no_show', 'completed', 'expired')"


def upgrade() -> None:
    op.add_column("services", sa.Column("intake_questions", postgresql.JSONB(astext_type=sa.Text()),
                                        server_default=sa.text("'[]'::jsonb"), nullable=False))
    op.add_column("services", sa.Column("deposit_minor", sa.Integer(), nullable=True))
    op.add_column("services", sa.Column("deposit_currency", sa.String(length=3), nullable=True))
    op.drop_constraint("known_status", "bookings", type_="check")
    op.create_check_constraint("known_status", "bookings", NEW_STATUSES)
    op.create_table(
        "payments",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_ref", sa.String(length=200), nullable=True),
        sa.Column("checkout_url", sa.String(length=2000), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("log", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status in ('pending', 'paid', 'expired', 'refund_due', 'refunded')", name="known_status"),
        sa.CheckConstraint("amount_minor > 0", name="positive_amount"),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"]),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("booking_id"),
        sa.UniqueConstraint("provider", "provider_ref"),
    )
    op.create_index(op.f("ix_payments_business_id"), "payments", ["business_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_payments_business_id"), table_name="payments")
    op.drop_table("payments")
    op.drop_constraint("known_status", "bookings", type_="check")
    op.create_check_constraint("known_status", "bookings", OLD_STATUSES)
    op.drop_column("services", "deposit_currency")
    op.drop_column("services", "deposit_minor")
    op.drop_column("services", "intake_questions")
