"""The product's PostgreSQL tables (typed SQLAlchemy 2 ORM). Changes go through migrations/."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (BigInteger, DateTime, Index, Integer, LargeBinary, Numeric, String, Text, UniqueConstraint,
                        func)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSONB, list[str]: JSONB}


class CaseRow(Base):
    """Read model of each case: no names, dates of birth or Medi-Cal numbers."""

    __tablename__ = "cases"
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), index=True)
    stage_since: Mapped[datetime]
    county: Mapped[str] = mapped_column(String(64), index=True)
    jurisdiction: Mapped[str] = mapped_column(String(16))
    case_manager: Mapped[str | None] = mapped_column(String(64), index=True)
    next_deadline: Mapped[datetime | None]
    conditions: Mapped[list[str]]
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    closure_reason: Mapped[str | None] = mapped_column(String(32))
    last_seq: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AuditRow(Base):
    """Append-only: who did what, when, on which case. One row per workflow step."""

    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("source", "seq", name="uq_audit_source_seq"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(96))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(32))
    county: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TaskRow(Base):
    """The human work queue."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_open_due", "status", "due"),)
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    assignee: Mapped[str] = mapped_column(String(64), index=True)
    county: Mapped[str] = mapped_column(String(64), index=True)
    due: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class OutboxRow(Base):
    """Notification outbox: one row per idempotency key, ever."""

    __tablename__ = "outbox"
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    channel: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]


class PaymentRow(Base):
    """Meals-and-lodging reimbursements: paid once per request."""

    __tablename__ = "payments"
    request_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    paid_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LetterRow(Base):
    """A rendered letter (PDF) per notice key: sealed with the keyring, since it names the child."""

    __tablename__ = "letters"
    key: Mapped[str] = mapped_column(String(160), primary_key=True)  # the notice's idempotency key
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    key_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)  # nonce + AES-GCM(template data), bound to the key
    # The PDF, rendered once after the step is recorded (off the case's path), sealed the same way.
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the PDF: the same data renders the same bytes
    size: Mapped[int | None] = mapped_column(Integer)
    print_status: Mapped[str | None] = mapped_column(String(16), index=True)  # queued, printed
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    printed_at: Mapped[datetime | None]
