"""booking contact names: a booking keeps the name its caller gave for it (`contact_name`), so a caller who knows a
customer's phone number is answered with the name they gave, never the customer's own, and cannot rename her.

Existing bookings get their customer's name as it stands now: the code before wrote every booking's name onto its
customer, so that is what anyone holding one of her codes could read that day, and no later change of hers reaches
them. An erased customer's bookings keep none.

Revision ID: 0031_booking_contact_name
Revises: 0030_waitlist_party
"""

import sqlalchemy as sa
from alembic import op

revision = "0031_booking_contact_name"
down_revision = "0030_waitlist_party"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bookings", sa.Column("contact_name", sa.String(200), nullable=True))
    op.execute(
        "update bookings b set contact_name = c.name from customers c "
        "where c.id = b.customer_id and c.business_id = b.business_id and c.erased_at is null"
    )


def downgrade() -> None:
    op.drop_column("bookings", "contact_name")
