"""Case records: encrypted status snapshots of cases and requests, the record of each case
(closure, purge), and legal holds.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_records",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("closed_at", TZ, index=True),
        sa.Column("purged_at", TZ),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "record_snapshots",
        sa.Column("source", sa.String(96), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False, index=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False, index=True),
        sa.Column("matter", sa.String(64), nullable=False),
        sa.Column("placed_by", sa.String(64), nullable=False),
        sa.Column("placed_at", TZ, nullable=False),
        sa.Column("released_by", sa.String(64)),
        sa.Column("released_at", TZ),
    )


def downgrade() -> None:
    for table in ("legal_holds", "record_snapshots", "case_records"):
        op.drop_table(table)
