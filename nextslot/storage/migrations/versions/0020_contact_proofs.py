"""contact proofs for the public MCP endpoint (a one-time code, then a short-lived proof, kept as hashes),
OAuth client ids long enough for client ID metadata documents (an HTTPS URL), and an ElevenLabs voice secret

Revision ID: 0020_contact_proofs
Revises: 0018_conversation_handoff
"""
import sqlalchemy as sa
from alembic import op

revision = "0020_contact_proofs"
down_revision = "0019_whatsapp_windows"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contact_proofs",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False, index=True),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("known", sa.Boolean(), nullable=False),
        sa.Column("challenge_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("tries", sa.SmallInteger(), nullable=False),
        sa.Column("code_expires_at", TZ, nullable=False),
        sa.Column("proof_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("proof_expires_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("contact_proofs_contact", "contact_proofs", ["business_id", "contact", "created_at"])
    for table in ("oauth_clients", "oauth_grants"):
        op.alter_column(table, "client_id", type_=sa.String(2048), existing_type=sa.String(64), existing_nullable=False)
    op.drop_constraint("known_platform", "voice_integrations", type_="check")
    op.create_check_constraint("known_platform", "voice_integrations", "platform in ('vapi', 'retell', 'elevenlabs')")


def downgrade() -> None:
    op.execute("delete from voice_integrations where platform = 'elevenlabs'")
    op.drop_constraint("known_platform", "voice_integrations", type_="check")
    op.create_check_constraint("known_platform", "voice_integrations", "platform in ('vapi', 'retell')")
    op.execute("delete from oauth_clients where length(client_id) > 64")  # document clients, and their grants
    for table in ("oauth_grants", "oauth_clients"):
        op.alter_column(table, "client_id", type_=sa.String(64), existing_type=sa.String(2048), existing_nullable=False)
    op.drop_index("contact_proofs_contact", table_name="contact_proofs")
    op.drop_table("contact_proofs")
