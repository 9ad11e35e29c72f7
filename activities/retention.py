"""The purge: a closed case's record past retention and not on legal hold loses every row
that holds the child's PHI; the non-PHI skeleton (audit log, case summary without
conditions, payments) stays, and the purge itself is audited."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio import activity

from activities.records import audit_record_event
from activities.tables import (CaseRecordRow, CaseRow, IdempotencyRow, IdentityKeyRow, LegalHoldRow, LetterRow, OutboxRow,
                               SignInFailureRow, SnapshotRow, TaskRow)
from models.records import PurgeRequest, PurgeResult

# Every table that holds a child's PHI in rows keyed by ``case_id``: the purge deletes the
# case's rows from each. A new table with PHI goes here. The identity index's keyed hashes
# locate a child; letters name the child.
PHI_TABLES = (SnapshotRow, OutboxRow, TaskRow, IdentityKeyRow, LetterRow)
PURGE_ACTOR = "ccs-retention"
# Sign-in failures name a staff account and an address: kept a month for security review
# (the throttle itself looks back minutes). An Idempotency-Key answers retries for a week;
# after that a resent referral is judged by the identity rules alone.
KEEP_SIGN_IN_FAILURES = timedelta(days=30)
KEEP_IDEMPOTENCY_KEYS = timedelta(days=7)


def on_hold(case_id):
    return exists().where(LegalHoldRow.case_id == case_id, LegalHoldRow.released_at.is_(None))


async def purge_case(session, case_id: str, kept_for: timedelta) -> dict[str, int]:
    """Delete one case's PHI everywhere; the caller holds the record's row lock."""
    deleted = {}
    for table in PHI_TABLES:
        result = await session.execute(delete(table).where(table.case_id == case_id))
        deleted[table.__tablename__] = result.rowcount
    # The conditions (diagnosis codes) of a case ID that can be recomputed from a name and a
    # date of birth are PHI too; stage, county and closure reason stay.
    await session.execute(update(CaseRow).where(CaseRow.case_id == case_id).values(conditions=[]))
    await session.execute(update(CaseRecordRow).where(CaseRecordRow.case_id == case_id)
                          .values(purged_at=datetime.now(timezone.utc)))
    await audit_record_event(session, case_id, PURGE_ACTOR, "system", "record_purged",
                             {"kept_for_days": kept_for.days, "rows_deleted": deleted})
    return deleted


async def purge_due(sessions: async_sessionmaker, keep_for: timedelta, now: datetime,
                    batch: int = 200) -> PurgeResult:
    """Purge every record closed before ``now - keep_for`` and not on hold, a batch per transaction."""
    cutoff = now - keep_for
    due = (CaseRecordRow.purged_at.is_(None), CaseRecordRow.closed_at.is_not(None), CaseRecordRow.closed_at <= cutoff)
    purged = 0
    while True:
        async with sessions.begin() as session:
            ids = (await session.execute(
                select(CaseRecordRow.case_id).where(*due, ~on_hold(CaseRecordRow.case_id))
                .order_by(CaseRecordRow.closed_at).limit(batch).with_for_update(skip_locked=True))).scalars().all()
            for case_id in ids:
                # A hold committed while this statement waited for the lock still counts.
                if (await session.execute(select(on_hold(case_id)))).scalar():
                    continue
                await purge_case(session, case_id, keep_for)
                purged += 1
        if len(ids) < batch:
            break
    async with sessions.begin() as session:
        held = (await session.execute(select(CaseRecordRow.case_id).where(*due, on_hold(CaseRecordRow.case_id))))
        expired = await expire_service_rows(session, now)
        return PurgeResult(purged=purged, held=len(held.all()), expired=expired)


async def expire_service_rows(session, now: datetime) -> int:
    """The service's own bookkeeping past its use: old sign-in failures and Idempotency-Keys."""
    expired = 0
    for row, column, keep in ((SignInFailureRow, SignInFailureRow.at, KEEP_SIGN_IN_FAILURES),
                              (IdempotencyRow, IdempotencyRow.created_at, KEEP_IDEMPOTENCY_KEYS)):
        expired += (await session.execute(delete(row).where(column < now - keep))).rowcount
    return expired


class RetentionActivities:
    def __init__(self, sessions: async_sessionmaker, keep_closed_for: timedelta) -> None:
        self.sessions = sessions
        self.keep_closed_for = keep_closed_for

    @activity.defn(name="purge_records")
    async def purge_records(self, req: PurgeRequest) -> PurgeResult:
        """Idempotent: a purged record is never due again."""
        result = await purge_due(self.sessions, self.keep_closed_for, req.now, req.batch)
        activity.logger.info("purged %d case record(s); %d held; %d expired sign-in/idempotency row(s)",
                             result.purged, result.held, result.expired)
        return result
