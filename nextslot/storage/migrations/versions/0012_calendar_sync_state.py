"""calendar sync state: sync-token, ctag, window and lease on external_calendars; external_events (ETag, text)

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("external_calendars", sa.Column("sync_token", sa.Text(), nullable=True))
    op.add_column("external_calendars", sa.Column("ctag", sa.Text(), nullable=True))
    op.add_column("external_calendars", sa.Column("window_start", sa.DateTime(timezone=True), nullable=True))
    op.add_column("external_calendars", sa.Column("window_end", sa.DateTime(timezone=True), nullable=True))
    op.add_column("external_calendars", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "external_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("calendar_id", sa.BigInteger(), nullable=False),
        sa.Column("href", sa.String(length=2000), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"]),
        sa.ForeignKeyConstraint(["calendar_id"], ["external_calendars.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("calendar_id", "href"),
    )
    op.create_index(op.f("ix_external_events_business_id"), "external_events", ["business_id"])
    # existing calendars have busy time but no stored events: no window either, so their next sync reads it whole


def downgrade() -> None:
    op.drop_index(op.f("ix_external_events_business_id"), table_name="external_events")
    op.drop_table("external_events")
    op.drop_column("external_calendars", "locked_until")
    op.drop_column("external_calendars", "window_end")
    op.drop_column("external_calendars", "window_start")
    op.drop_column("external_calendars", "ctag")
    op.drop_column("external_calendars", "sync_token")
