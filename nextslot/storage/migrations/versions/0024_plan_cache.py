"""Plan cache: businesses.config_version, moved by triggers in the same transaction as every edit of what a
booking plan is made of (the business row, locations, resources, working hours, services, requirements and their
members, webhook endpoints), so a process may keep plans in memory and check them with one cheap read.

The version is the editing transaction's id (txid_current()): it only grows within a PostgreSQL cluster and is
never reused, even by a database dropped and created again under the same name, so a cached plan can never be
mistaken for a fresh one.

Revision ID: 0024_plan_cache
Revises: 0023_operations
"""
import sqlalchemy as sa
from alembic import op

revision = "0024_plan_cache"
down_revision = "0023_operations"
branch_labels = None
depends_on = None

# (table, how to find the business of a row r); each row change moves its business's version
CONFIG_TABLES = (
    ("locations", "r.business_id"),
    ("resources", "r.business_id"),
    ("services", "r.business_id"),
    ("working_hours", "(select business_id from resources where id = r.resource_id)"),
    ("service_requirements", "(select business_id from services where id = r.service_id)"),
    ("requirement_members", "(select business_id from resources where id = r.resource_id)"),
    ("webhook_endpoints", "r.business_id"),
)


def bump_function(table: str, business_of: str) -> str:
    def bump(row: str) -> str:
        return (f"update businesses set config_version = txid_current() "
                f"where id = {business_of.replace('r.', row + '.')} and config_version <> txid_current();")
    return f"""
create function bump_config_version_{table}() returns trigger language plpgsql as $$
begin
    if tg_op <> 'INSERT' then {bump('old')} end if;
    if tg_op <> 'DELETE' then {bump('new')} end if;
    return null;
end $$;
create trigger bump_config_version after insert or update or delete on {table}
    for each row execute function bump_config_version_{table}();
"""


def upgrade() -> None:
    op.add_column("businesses", sa.Column("config_version", sa.BigInteger(), nullable=False,
                                          server_default=sa.text("txid_current()")))
    # any edit of the business row itself (zone, country, details) moves its version too
    op.execute("""
create function bump_own_config_version() returns trigger language plpgsql as $$
begin
    if new.config_version = old.config_version then
        new.config_version := txid_current();
    end if;
    return new;
end $$;
create trigger bump_config_version before update on businesses
    for each row execute function bump_own_config_version();
""")
    for table, business_of in CONFIG_TABLES:
        op.execute(bump_function(table, business_of))


def downgrade() -> None:
    for table, _ in reversed(CONFIG_TABLES):
        op.execute(f"drop trigger bump_config_version on {table}")
        op.execute(f"drop function bump_config_version_{table}()")
    op.execute("drop trigger bump_config_version on businesses")
    op.execute("drop function bump_own_config_version()")
    op.drop_column("businesses", "config_version")
