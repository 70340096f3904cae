"""staff contacts: resources may have an email and a mobile; notifications may be for a resource (staff)

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("resources", sa.Column("email", sa.String(length=320), nullable=True))
    op.add_column("resources", sa.Column("phone", sa.String(length=20), nullable=True))
    op.add_column("notifications", sa.Column("resource_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key("notifications_resource_id_fkey", "notifications", "resources", ["resource_id"], ["id"])


def downgrade() -> None:
    op.drop_constraint("notifications_resource_id_fkey", "notifications", type_="foreignkey")
    op.drop_column("notifications", "resource_id")
    op.drop_column("resources", "phone")
    op.drop_column("resources", "email")
