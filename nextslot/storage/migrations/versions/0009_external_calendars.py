"""external_calendars, external_busy: staff members' own CalDAV calendars and the busy time read from them

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "external_calendars",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=True),
        sa.Column("password", sa.String(length=200), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"]),
        sa.ForeignKeyConstraint(["resource_id"], ["resources.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_external_calendars_business_id"), "external_calendars", ["business_id"])
    op.create_index(op.f("ix_external_calendars_resource_id"), "external_calendars", ["resource_id"])
    op.create_table(
        "external_busy",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.Column("calendar_id", sa.BigInteger(), nullable=False),
        sa.Column("during", postgresql.TSTZRANGE(), nullable=False),
        sa.CheckConstraint("not isempty(during) and not lower_inf(during) and not upper_inf(during)",
                           name="bounded"),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"]),
        sa.ForeignKeyConstraint(["resource_id"], ["resources.id"]),
        sa.ForeignKeyConstraint(["calendar_id"], ["external_calendars.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_external_busy_business_id"), "external_busy", ["business_id"])
    op.create_index(op.f("ix_external_busy_calendar_id"), "external_busy", ["calendar_id"])
    # btree_gist (0001) lets the bigint sit beside the range in one gist index
    op.create_index("external_busy_during", "external_busy", ["resource_id", "during"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_index("external_busy_during", table_name="external_busy", postgresql_using="gist")
    op.drop_index(op.f("ix_external_busy_calendar_id"), table_name="external_busy")
    op.drop_index(op.f("ix_external_busy_business_id"), table_name="external_busy")
    op.drop_table("external_busy")
    op.drop_index(op.f("ix_external_calendars_resource_id"), table_name="external_calendars")
    op.drop_index(op.f("ix_external_calendars_business_id"), table_name="external_calendars")
    op.drop_table("external_calendars")
