"""local exceptions: a closure given as a date is stored once per zone the business's resources keep, so a branch in
another zone is closed on its own calendar date (availability_exceptions.local, .zone).

Rows stored before could have come from a date or from exact instants; those starting and ending at local midnight
in the zone they were read in were whole days, so they are marked local and the business-wide ones are copied into
each other zone of the business's branches and resources, at the same wall times. Applying the config again stores
exactly what the config says.

Revision ID: 0028_local_exceptions
Revises: 0027_citus_keys
"""
import sqlalchemy as sa
from alembic import op

revision = "0028_local_exceptions"
down_revision = "0027_citus_keys"
branch_labels = None
depends_on = None

WHOLE_DAYS = """
update availability_exceptions e set local = true
  from resources r join businesses b on b.id = r.business_id left join locations l on l.id = r.location_id
 where r.id = e.resource_id
   and (e.starts_at at time zone coalesce(r.timezone, l.timezone, b.timezone))::time = '00:00'
   and (e.ends_at at time zone coalesce(r.timezone, l.timezone, b.timezone))::time = '00:00';
update availability_exceptions e set local = true
  from businesses b
 where b.id = e.business_id and e.resource_id is null
   and (e.starts_at at time zone b.timezone)::time = '00:00' and (e.ends_at at time zone b.timezone)::time = '00:00';
"""

BRANCH_COPIES = """
insert into availability_exceptions (business_id, resource_id, kind, starts_at, ends_at, reason, local, zone)
select e.business_id, null, e.kind, (e.starts_at at time zone b.timezone) at time zone z.zone,
       (e.ends_at at time zone b.timezone) at time zone z.zone, e.reason, true, z.zone
  from availability_exceptions e join businesses b on b.id = e.business_id
  join (select distinct r.business_id, coalesce(r.timezone, l.timezone) as zone
          from resources r left join locations l on l.id = r.location_id) z
    on z.business_id = e.business_id and z.zone <> b.timezone
 where e.resource_id is null and e.local and e.zone is null
   and z.zone in (select name from pg_timezone_names);
"""


def upgrade() -> None:
    op.add_column("availability_exceptions",
                  sa.Column("local", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column("availability_exceptions", sa.Column("zone", sa.String(length=64), nullable=True))
    op.execute(WHOLE_DAYS)
    op.execute(BRANCH_COPIES)


def downgrade() -> None:
    op.execute("delete from availability_exceptions where zone is not null")
    op.drop_column("availability_exceptions", "zone")
    op.drop_column("availability_exceptions", "local")
