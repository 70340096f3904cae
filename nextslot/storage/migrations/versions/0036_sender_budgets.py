"""sender budgets: what one sender of the public ways in (an address, a calling number) made at a business on a UTC
day, counted in the database so every server process shares one budget (it was counted in each process's memory).

Revision ID: 0036_sender_budgets
Revises: 0035_webhook_sequences
"""
import sqlalchemy as sa
from alembic import op

revision = "0036_sender_budgets"
down_revision = "0035_webhook_sequences"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sender_budgets",
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("made", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"], name="sender_budgets_business_id_fkey"),
        sa.PrimaryKeyConstraint("business_id", "kind", "sender", "day", name="sender_budgets_pkey"),
    )


def downgrade() -> None:
    op.drop_table("sender_budgets")
