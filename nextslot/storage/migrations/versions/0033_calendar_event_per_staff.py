"""calendar event per staff member: a booking's event in a staff calendar is keyed by the booking and the calendar's
resource together, so staff sharing one calendar (one Google calendar, one Microsoft 365 mailbox, one CalDAV
collection) each keep their own and one's removal never takes out another's.

Rows written before this release hold their event under the booking's key alone (`legacy_key` true: every existing
row, since one never tried may have written with its answer lost): their next write puts the event under its own key,
takes the old one out, and makes the booking's other such rows due. Rows made from now on start on their own key.
Downgrading drops the flag; events written since stay under their own keys, which the code before does not look for.

Revision ID: 0033_calendar_event_per_staff
Revises: 0032_calendar_write_retries
"""

import sqlalchemy as sa
from alembic import op

revision = "0033_calendar_event_per_staff"
down_revision = "0032_calendar_write_retries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a constant default: no table rewrite; existing rows read it, new ones get false
    op.add_column("calendar_writes", sa.Column("legacy_key", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.alter_column("calendar_writes", "legacy_key", server_default=sa.false())


def downgrade() -> None:
    op.drop_column("calendar_writes", "legacy_key")
