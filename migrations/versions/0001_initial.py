"""Case read model, audit log, work queue, notification outbox, payments.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("stage", sa.String(32), nullable=False, index=True),
        sa.Column("stage_since", TZ, nullable=False),
        sa.Column("county", sa.String(64), nullable=False, index=True),
        sa.Column("jurisdiction", sa.String(16), nullable=False),
        sa.Column("case_manager", sa.String(64), index=True),
        sa.Column("next_deadline", TZ),
        sa.Column("conditions", JSONB, nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("closed_at", TZ),
        sa.Column("closure_reason", sa.String(32)),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False, index=True),
        sa.Column("source", sa.String(96), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("actor_role", sa.String(32), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("county", sa.String(64), nullable=False),
        sa.Column("detail", JSONB, nullable=False),
        sa.Column("recorded_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("source", "seq", name="uq_audit_source_seq"),
    )
    # Append-only: the database itself refuses to change or delete an audit row.
    op.execute(
        "CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )
    op.create_table(
        "tasks",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("task_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("assignee", sa.String(64), nullable=False, index=True),
        sa.Column("county", sa.String(64), nullable=False, index=True),
        sa.Column("due", TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("closed_at", TZ),
    )
    op.create_index("ix_tasks_open_due", "tasks", ["status", "due"])
    op.create_table(
        "outbox",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("address", sa.String(254)),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("channel", sa.String(16)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("sent_at", TZ),
    )
    op.create_table(
        "payments",
        sa.Column("request_id", sa.String(96), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False, index=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("paid_at", TZ, server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    for table in ("payments", "outbox", "tasks"):
        op.drop_table(table)
    op.execute("DROP TRIGGER audit_log_no_change ON audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_table("audit_log")
    op.drop_table("cases")
