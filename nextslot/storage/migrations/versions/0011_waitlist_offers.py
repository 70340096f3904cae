"""waitlist offers, and the freed-capacity markers the scheduler turns into them

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "freed_capacity",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_freed_capacity_business_id"), "freed_capacity", ["business_id"])
    op.create_index("freed_capacity_unprocessed", "freed_capacity", ["created_at"],
                    postgresql_where=sa.text("processed_at is null"))
    op.create_table(
        "waitlist_offers",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resource_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status in ('open', 'accepted', 'lost', 'declined', 'expired')", name="known_status"),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"]),
        sa.ForeignKeyConstraint(["entry_id"], ["waitlist_entries.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_id", "starts_at"),
    )
    op.create_index(op.f("ix_waitlist_offers_business_id"), "waitlist_offers", ["business_id"])
    op.create_index(op.f("ix_waitlist_offers_customer_id"), "waitlist_offers", ["customer_id"])
    op.create_index("waitlist_offers_open", "waitlist_offers", ["expires_at"],
                    postgresql_where=sa.text("status = 'open'"))
    op.add_column("notifications", sa.Column("offer_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key("notifications_offer_id_fkey", "notifications", "waitlist_offers", ["offer_id"], ["id"])


def downgrade() -> None:
    op.drop_constraint("notifications_offer_id_fkey", "notifications", type_="foreignkey")
    op.drop_column("notifications", "offer_id")
    op.drop_index("waitlist_offers_open", table_name="waitlist_offers")
    op.drop_index(op.f("ix_waitlist_offers_customer_id"), table_name="waitlist_offers")
    op.drop_index(op.f("ix_waitlist_offers_business_id"), table_name="waitlist_offers")
    op.drop_table("waitlist_offers")
    op.drop_index("freed_capacity_unprocessed", table_name="freed_capacity")
    op.drop_index(op.f("ix_freed_capacity_business_id"), table_name="freed_capacity")
    op.drop_table("freed_capacity")
