"""webhook sequences: each endpoint's last event number, so every event it is sent carries `sequence` 1, 2, 3 ... in
the order the events committed, none skipped (a receiver tells a retry that arrives late, and a gap, by it).

The row of an endpoint is made by its first event (insert ... on conflict do update) and locked by each transaction
that numbers events for it, from its commit's start to its end: the next one takes its numbers after, and a rolled
back one gives its numbers back. Events written before this release carry no sequence.

Revision ID: 0035_webhook_sequences
Revises: 0034_idempotency_key_unused
"""
import sqlalchemy as sa
from alembic import op

revision = "0035_webhook_sequences"
down_revision = "0034_idempotency_key_unused"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_sequences",
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"], name="webhook_sequences_business_id_fkey"),
        sa.ForeignKeyConstraint(["endpoint_id", "business_id"],
                                ["webhook_endpoints.id", "webhook_endpoints.business_id"],
                                name="webhook_sequences_endpoint_id_fkey", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("endpoint_id", "business_id", name="webhook_sequences_pkey"),
    )
    op.create_index("ix_webhook_sequences_business_id", "webhook_sequences", ["business_id"])


def downgrade() -> None:
    op.drop_table("webhook_sequences")
