"""waitlist parties: a waitlist entry carries the party it waits for (`party_size`, 1 for every existing entry), so
freed places are offered only to parties they seat, and a yes books the whole party.

Revision ID: 0030_waitlist_party
Revises: 0029_early_receipts
"""

import sqlalchemy as sa
from alembic import op

revision = "0030_waitlist_party"
down_revision = "0029_early_receipts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("waitlist_entries", sa.Column("party_size", sa.SmallInteger(), server_default="1", nullable=False))
    op.create_check_constraint("party_size_positive", "waitlist_entries", "party_size >= 1")


def downgrade() -> None:
    op.drop_constraint("party_size_positive", "waitlist_entries", type_="check")
    op.drop_column("waitlist_entries", "party_size")
