"""early receipts and opt-outs by number: a delivery receipt the provider sends before the send is recorded is kept
(early_receipts) and applied when it is, instead of dropped (a delivered message then went out again on the next
channel); a number's STOP and START are found by the number (a partial index of inbound_messages), so a customer
record made after a STOP is opted out too.

Revision ID: 0029_early_receipts
Revises: 0028_local_exceptions
"""
import sqlalchemy as sa
from alembic import op

revision = "0029_early_receipts"
down_revision = "0028_local_exceptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "early_receipts",
        sa.Column("provider_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider_id", "status"),
    )
    op.create_index("inbound_messages_opt_outs", "inbound_messages", ["sender", "channel", "id"],
                    postgresql_where=sa.text("outcome in ('opted_out', 'opted_in')"))


def downgrade() -> None:
    op.drop_index("inbound_messages_opt_outs", table_name="inbound_messages")
    op.drop_table("early_receipts")
