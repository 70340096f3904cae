"""claims are half-open [start, end): the capacity guard's peak count relies on it

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_check_constraint("half_open", "claims", "lower_inc(during) and not upper_inc(during)")


def downgrade() -> None:
    op.drop_constraint("half_open", "claims", type_="check")
