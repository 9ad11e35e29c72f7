"""Case records: the last status of every case and request workflow, sealed with the
payload codec (AES-GCM, key ID kept beside the ciphertext), so a case still reads after
Temporal has deleted its workflow. Record events (holds, purge) are audited here too."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from activities.tables import AuditRow, CaseRecordRow, CaseRow, SnapshotRow
from models.converter import ENCODING, KEY_ID, EncryptionCodec
from models.request_kinds import request_kind


def kind_of(source: str) -> str:
    """``case``, or the request kind of a request workflow ID (``CASE-ml-1``, ``CASE-sar-2``)."""
    spec = request_kind(source)
    return spec.kind if spec else "case"


async def seal(codec: EncryptionCodec, status: dict[str, Any]) -> tuple[str, bytes]:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(status, separators=(",", ":")).encode())
    [sealed] = await codec.encode_uncompressed([plain])  # the row keeps only the key ID beside it
    return sealed.metadata[KEY_ID].decode(), sealed.data


async def unseal(codec: PayloadCodec, key_id: str, ciphertext: bytes) -> dict[str, Any]:
    sealed = Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=ciphertext)
    [plain] = await codec.decode([sealed])
    return json.loads(plain.data)


async def write_snapshot(session, codec: EncryptionCodec, case_id: str, source: str, seq: int,
                         status: dict[str, Any]) -> None:
    """Keep the status as of step ``seq``; an older or repeated batch changes nothing."""
    key_id, ciphertext = await seal(codec, status)
    now = datetime.now(timezone.utc)
    started_at = _time(status["stage_history"][0]["at"] if status.get("stage_history") else status["received_at"])
    written = await session.execute(UPSERT_SNAPSHOT, dict(
        source=source, case_id=case_id, kind=kind_of(source), key_id=key_id, ciphertext=ciphertext,
        started_at=started_at, last_seq=seq, updated_at=now))
    if written.first() is None or source != case_id:
        return
    # A case open again (a new referral after closure) is not due for the purge.
    closed_at = _time(status["stage_since"]) if status.get("stage") == "closed" else None
    await session.execute(UPSERT_RECORD, dict(case_id=case_id, closed_at=closed_at, events=0, updated_at=now))


# Built once (bind parameters): compiled once per process, not once per batch.
_snapshot = insert(SnapshotRow.__table__)
UPSERT_SNAPSHOT = _snapshot.on_conflict_do_update(
    index_elements=["source"],
    set_={k: _snapshot.excluded[k] for k in ("key_id", "ciphertext", "started_at", "last_seq", "updated_at")},
    where=tuple_(SnapshotRow.started_at, SnapshotRow.last_seq) < tuple_(_snapshot.excluded.started_at,
                                                                       _snapshot.excluded.last_seq),
).returning(SnapshotRow.source)
_record = insert(CaseRecordRow.__table__)
UPSERT_RECORD = _record.on_conflict_do_update(
    index_elements=["case_id"],
    set_={"closed_at": _record.excluded.closed_at, "purged_at": None, "updated_at": _record.excluded.updated_at})


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def audit_record_event(session, case_id: str, actor_id: str, actor_role: str, action: str,
                             detail: dict[str, Any]) -> None:
    """One audit row for an event on the record (a hold, the purge); the caller has the record locked."""
    seq = (await session.execute(
        update(CaseRecordRow).where(CaseRecordRow.case_id == case_id)
        .values(events=CaseRecordRow.events + 1).returning(CaseRecordRow.events))).scalar_one()
    case = (await session.execute(select(CaseRow.stage, CaseRow.county).where(CaseRow.case_id == case_id))).first()
    await session.execute(insert(AuditRow).values(
        case_id=case_id, source=f"{case_id}-record", seq=seq, at=datetime.now(timezone.utc), actor_id=actor_id,
        actor_role=actor_role, action=action, stage=case.stage if case else "closed",
        county=case.county if case else "-", detail=detail))
