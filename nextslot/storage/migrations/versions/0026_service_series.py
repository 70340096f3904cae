"""service series: whether a service may be booked as a recurring series, and how many occurrences at most
(services.series, a SeriesConfig; NULL: allowed, up to 52, as before).

Revision ID: 0026_service_series
Revises: 0025_tenant_keys
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0026_service_series"
down_revision = "0025_tenant_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("services", sa.Column("series", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("services", "series")
