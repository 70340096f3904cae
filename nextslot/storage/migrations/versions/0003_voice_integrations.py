"""voice_integrations: each business's secret for Vapi and Retell tool webhooks

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voice_integrations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("platform in ('vapi', 'retell')", name="known_platform"),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("business_id", "platform"),
    )
    op.create_index(op.f("ix_voice_integrations_business_id"), "voice_integrations", ["business_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_voice_integrations_business_id"), table_name="voice_integrations")
    op.drop_table("voice_integrations")
