"""Identity index: keyed hashes that locate a child's case (CIN; folded name + DOB; last name + DOB).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_keys",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("dob_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    # One CIN, one case: the database refuses a second case for the same CIN.
    op.create_index("uq_identity_keys_cin", "identity_keys", ["key_hash"], unique=True,
                    postgresql_where=sa.text("kind = 'cin'"))
    op.create_index("ix_identity_keys_case", "identity_keys", ["case_id"])


def downgrade() -> None:
    op.drop_table("identity_keys")
