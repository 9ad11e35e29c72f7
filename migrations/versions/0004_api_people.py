"""HTTP API: embedded users, failed sign-ins, the access log, referral idempotency keys.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("county", sa.String(64)),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("password_set_at", TZ, server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("address", sa.String(64), nullable=False, index=True),
        sa.Column("at", TZ, server_default=sa.func.now(), nullable=False, index=True),
    )
    op.create_table(
        "access_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False, index=True),
        sa.Column("what", sa.String(96), nullable=False),
    )
    # Append-only, like audit_log: the database refuses to change or delete a row.
    op.execute(
        "CREATE FUNCTION access_log_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'access_log is append-only'; END; $$ LANGUAGE plpgsql"
    )
    op.execute(
        "CREATE TRIGGER access_log_no_change BEFORE UPDATE OR DELETE ON access_log "
        "FOR EACH ROW EXECUTE FUNCTION access_log_append_only()"
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("body_mac", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.execute("DROP TRIGGER access_log_no_change ON access_log")
    op.execute("DROP FUNCTION access_log_append_only()")
    op.drop_table("access_log")
    op.drop_table("sign_in_failures")
    op.drop_table("users")
