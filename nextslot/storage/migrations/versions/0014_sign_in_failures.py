"""console sign-in throttling per account: sign_in_failures (wrong tries in a row, locked until)

Revision ID: 0014_sign_in_failures
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_sign_in_failures"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"]),
        sa.PrimaryKeyConstraint("business_id", "email"),
    )


def downgrade() -> None:
    op.drop_table("sign_in_failures")
