"""calendar grants: Google and Microsoft 365 calendars connected with OAuth (tokens encrypted at rest), their
push channels, a calendar's need for reconnection, and the queue writing bookings into staff calendars

Revision ID: 0021_calendar_grants
Revises: 0020_contact_proofs
"""
import sqlalchemy as sa
from alembic import op

revision = "0021_calendar_grants"
down_revision = "0020_contact_proofs"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calendar_grants",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("account", sa.String(320), nullable=True),
        sa.Column("scopes", sa.Text(), server_default="", nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("status", sa.String(20), server_default="active", nullable=False),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("problem_at", TZ, nullable=True),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status in ('active', 'needs_reconnect')", name="known_status"),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"]),
        sa.ForeignKeyConstraint(["resource_id"], ["resources.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("resource_id", "provider", name="calendar_grants_resource_provider"),
    )
    op.create_index(op.f("ix_calendar_grants_business_id"), "calendar_grants", ["business_id"])
    op.add_column("external_calendars", sa.Column("grant_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key("external_calendars_grant_id_fkey", "external_calendars", "calendar_grants",
                          ["grant_id"], ["id"], ondelete="CASCADE")
    # CalDAV passwords are stored encrypted from now on: longer than the 200 characters the column allowed
    op.alter_column("external_calendars", "password", type_=sa.Text(), existing_type=sa.String(200))
    op.add_column("external_calendars", sa.Column("calendar_ref", sa.String(1000), nullable=True))
    op.add_column("external_calendars", sa.Column("status", sa.String(20), server_default="active", nullable=False))
    op.add_column("external_calendars", sa.Column("write_back", sa.Boolean(), server_default=sa.true(),
                                                  nullable=False))
    op.add_column("external_calendars", sa.Column("pushed_at", TZ, nullable=True))
    op.add_column("external_calendars", sa.Column("channel_id", sa.String(200), nullable=True))
    op.add_column("external_calendars", sa.Column("channel_resource", sa.String(1000), nullable=True))
    op.add_column("external_calendars", sa.Column("channel_secret_hash", sa.String(64), nullable=True))
    op.add_column("external_calendars", sa.Column("channel_expires_at", TZ, nullable=True))
    op.create_check_constraint("known_status", "external_calendars", "status in ('active', 'needs_reconnect')")
    op.create_index("external_calendars_channel", "external_calendars", ["channel_id"], unique=True,
                    postgresql_where=sa.text("channel_id is not null"))
    op.create_table(
        "calendar_writes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("calendar_id", sa.BigInteger(), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("written_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("remote_id", sa.String(1024), nullable=True),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("locked_until", TZ, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status in ('pending', 'sending', 'done', 'failed')", name="known_status"),
        sa.ForeignKeyConstraint(["business_id"], ["businesses.id"]),
        sa.ForeignKeyConstraint(["calendar_id"], ["external_calendars.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("calendar_id", "booking_id", name="calendar_writes_one_per_booking"),
    )
    op.create_index(op.f("ix_calendar_writes_business_id"), "calendar_writes", ["business_id"])
    op.create_index(op.f("ix_calendar_writes_booking_id"), "calendar_writes", ["booking_id"])
    op.create_index("calendar_writes_due", "calendar_writes", ["due_at"],
                    postgresql_where=sa.text("status in ('pending', 'sending')"))


def downgrade() -> None:
    op.drop_index("calendar_writes_due", table_name="calendar_writes")
    op.drop_index(op.f("ix_calendar_writes_booking_id"), table_name="calendar_writes")
    op.drop_index(op.f("ix_calendar_writes_business_id"), table_name="calendar_writes")
    op.drop_table("calendar_writes")
    op.drop_index("external_calendars_channel", table_name="external_calendars")
    op.drop_constraint("known_status", "external_calendars", type_="check")
    for column in ("channel_expires_at", "channel_secret_hash", "channel_resource", "channel_id", "pushed_at",
                   "write_back", "status", "calendar_ref"):
        op.drop_column("external_calendars", column)
    op.drop_constraint("external_calendars_grant_id_fkey", "external_calendars", type_="foreignkey")
    op.alter_column("external_calendars", "password", type_=sa.String(200), existing_type=sa.Text())
    op.drop_column("external_calendars", "grant_id")
    op.drop_index(op.f("ix_calendar_grants_business_id"), table_name="calendar_grants")
    op.drop_table("calendar_grants")
