"""hold holders: a hold a public caller made is converted only by calls from the same number (a digest of it), not by
another caller naming its id.

Revision ID: 0038_hold_holders
Revises: 0037_queues_by_business
"""
import sqlalchemy as sa
from alembic import op

revision = "0038_hold_holders"
down_revision = "0037_queues_by_business"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("holds", sa.Column("holder", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("holds", "holder")
