"""The product's PostgreSQL tables (typed SQLAlchemy 2 ORM). Changes go through migrations/."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (BigInteger, DateTime, Index, Integer, LargeBinary, Numeric, String, Text, UniqueConstraint,
                        func, text)
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
    # A case's later life (referred again after closure) numbers its steps from 1 again: the
    # step time tells the lives apart, and a retry repeats it (migration 0007).
    __table_args__ = (UniqueConstraint("source", "seq", "at", name="uq_audit_source_seq_at"),)
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


class IdentityKeyRow(Base):
    """The identity index: keyed hashes (HMAC) that locate a child's case, never plaintext.
    A CIN belongs to one case (partial unique index); a name + DOB may locate several."""

    __tablename__ = "identity_keys"
    __table_args__ = (
        Index("uq_identity_keys_cin", "key_hash", unique=True, postgresql_where=text("kind = 'cin'")),
        Index("ix_identity_keys_case", "case_id"),
    )
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    dob_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class CaseRecordRow(Base):
    """A case as a record: when it closed, when its PHI was purged; outlives the workflow."""

    __tablename__ = "case_records"
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    closed_at: Mapped[datetime | None] = mapped_column(index=True)
    purged_at: Mapped[datetime | None]
    events: Mapped[int] = mapped_column(Integer, default=0)  # audit seq of record events (holds, purge)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SnapshotRow(Base):
    """The last status of a case or request workflow, AES-GCM encrypted (PHI)."""

    __tablename__ = "record_snapshots"
    source: Mapped[str] = mapped_column(String(96), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    # When this life of the workflow began: a child referred again after closure starts a new
    # workflow under the same ID, whose steps count from 1 again.
    started_at: Mapped[datetime]
    last_seq: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LegalHoldRow(Base):
    """A legal hold stops the purge of a case's record until released."""

    __tablename__ = "legal_holds"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    matter: Mapped[str] = mapped_column(String(64))
    placed_by: Mapped[str] = mapped_column(String(64))
    placed_at: Mapped[datetime]
    released_by: Mapped[str | None] = mapped_column(String(64))
    released_at: Mapped[datetime | None]
# ---- HTTP API (starters/api): people, sign-in throttling, reads of case records ------------

class UserRow(Base):
    """An embedded user (the default when no OpenID Connect issuer is configured)."""

    __tablename__ = "users"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    county: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    password_set_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SignInFailureRow(Base):
    """One failed sign-in: counted per user and per address to throttle guessing."""

    __tablename__ = "sign_in_failures"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


class AccessRow(Base):
    """Append-only: a person read a case, its audit trail or a request. No PHI."""

    __tablename__ = "access_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    user_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    what: Mapped[str] = mapped_column(String(96))


class IdempotencyRow(Base):
    """A referral submitted with an Idempotency-Key: a retry returns the same case."""

    __tablename__ = "idempotency_keys"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    # HMAC of the request body (never the body: it holds PHI), to refuse a reused key.
    body_mac: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


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


class PolicyVersionRow(Base):
    """Every policy the deployment has published, named by its content hash; never changed."""

    __tablename__ = "policy_versions"
    version: Mapped[str] = mapped_column(String(16), primary_key=True)
    body: Mapped[str] = mapped_column(Text)  # the policy's JSON, exactly as hashed
    stored_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PolicyPublicationRow(Base):
    """Each publication, in order: the last one names the deployment's current policy."""

    __tablename__ = "policy_publications"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(16))
    published_at: Mapped[datetime] = mapped_column(server_default=func.now())
