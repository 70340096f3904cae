"""booking rules: cancellation cutoffs and late fees (a policy per service, fees recorded per booking, a deposit
that can be kept, the saved payment method a deposit leaves); fair assignment per service

Revision ID: 0022_booking_rules
Revises: 0018_conversation_handoff
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022_booking_rules"
down_revision = "0021_calendar_grants"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
PAYMENT_STATUSES = "('pending', 'paid', 'expired', 'refund_due', 'refunded')"
PAYMENT_STATUSES_NOW = "('pending', 'paid', 'expired', 'refund_due', 'refunded', 'kept')"


def upgrade() -> None:
    op.add_column("services", sa.Column("cancellation", postgresql.JSONB(), nullable=True))  # None: the business's
    op.add_column("services", sa.Column("assignment", postgresql.JSONB(), nullable=True))  # None: first free
    # a deposit paid through a provider that can charge again later (Stripe: the customer and the payment)
    op.add_column("payments", sa.Column("payer_ref", sa.String(200), nullable=True))
    op.add_column("payments", sa.Column("payment_ref", sa.String(200), nullable=True))
    op.drop_constraint("known_status", "payments", type_="check")
    op.create_check_constraint("known_status", "payments", f"status in {PAYMENT_STATUSES_NOW}")
    op.create_table(
        "booking_fees",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), sa.ForeignKey("bookings.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("provider", sa.String(16), nullable=True),
        sa.Column("provider_ref", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", TZ, nullable=True),
        sa.Column("log", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("booking_id", "kind"),  # one late-cancel fee, one no-show fee: never charged twice
        sa.CheckConstraint("kind in ('late_cancel', 'no_show')", name="known_kind"),
        sa.CheckConstraint("status in ('deposit_kept', 'due', 'charging', 'charged', 'failed', 'no_payment_method')",
                           name="known_status"),
        sa.CheckConstraint("amount_minor > 0", name="positive_amount"),
    )
    op.create_index(op.f("ix_booking_fees_business_id"), "booking_fees", ["business_id"])
    op.create_index("booking_fees_due", "booking_fees", ["status"], postgresql_where=sa.text("status in ('due', 'charging')"))


def downgrade() -> None:
    op.drop_index("booking_fees_due", table_name="booking_fees")
    op.drop_index(op.f("ix_booking_fees_business_id"), table_name="booking_fees")
    op.drop_table("booking_fees")
    op.execute("UPDATE payments SET status = 'paid' WHERE status = 'kept'")
    op.drop_constraint("known_status", "payments", type_="check")
    op.create_check_constraint("known_status", "payments", f"status in {PAYMENT_STATUSES}")
    op.drop_column("payments", "payment_ref")
    op.drop_column("payments", "payer_ref")
    op.drop_column("services", "assignment")
    op.drop_column("services", "cancellation")
