"""early receipt references: a receipt for a send never recorded names the notification and channel it was sent for
(from its status callback's URL), so a dispatcher taking over that notification after its sender died records the send
the provider took instead of sending it a second time.

Revision ID: 0039_early_receipt_references
Revises: 0038_hold_holders
"""
import sqlalchemy as sa
from alembic import op

revision = "0039_early_receipt_references"
down_revision = "0038_hold_holders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("early_receipts", sa.Column("reference", sa.String(length=64), nullable=True))
    op.add_column("early_receipts", sa.Column("channel", sa.String(length=16), nullable=True))
    op.create_index("early_receipts_reference", "early_receipts", ["reference"],
                    postgresql_where=sa.text("reference is not null"))


def downgrade() -> None:
    op.drop_index("early_receipts_reference", table_name="early_receipts")
    op.drop_column("early_receipts", "channel")
    op.drop_column("early_receipts", "reference")
