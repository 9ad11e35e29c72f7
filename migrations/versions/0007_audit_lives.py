"""Audit rows of a case's second life: a child referred again after the case closed gets a
new workflow under the same case ID whose steps count from 1 again. A step is one row per
(workflow, step number, step time): a retry repeats all three, a new life never does.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("uq_audit_source_seq", "audit_log", type_="unique")
    op.create_unique_constraint("uq_audit_source_seq_at", "audit_log", ["source", "seq", "at"])


def downgrade() -> None:
    op.drop_constraint("uq_audit_source_seq_at", "audit_log", type_="unique")
    op.create_unique_constraint("uq_audit_source_seq", "audit_log", ["source", "seq"])
