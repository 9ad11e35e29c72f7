"""Case storage activities: each workflow step becomes its audit row, task changes,
read-model update and notices, in one transaction that a retry cannot apply twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import bindparam, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notify import Notifier
from activities.records import write_snapshot
from activities.tables import AuditRow, CaseRow, LetterRow, OutboxRow, TaskRow
from models.case import StepRecord

T = TypeVar("T")
HEARTBEAT_EVERY = 2.0  # seconds; the workflow's heartbeat timeout is a few of these
# What an unreachable or restarting PostgreSQL raises (asyncpg's own errors arrive wrapped in DBAPIError).
DB_DOWN = (DBAPIError, InterfaceError, OperationalError, OSError, ConnectionError, asyncio.TimeoutError)


async def heartbeating(work: Awaitable[T]) -> T:
    """Await ``work`` while telling Temporal every few seconds that this worker is alive, so a
    killed worker's step is retried within the heartbeat timeout, not the minute-long one."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY)
            if done:
                return task.result()
            if activity.in_activity():  # (tests also call the activity's method directly)
                activity.heartbeat()
    finally:
        task.cancel()  # (a no-op once it is done) the activity was cancelled: so is its work


def database_error(e: BaseException) -> ApplicationError:
    """A short, retryable error naming only the error's class: the driver's own message carries
    the statement and its parameters (PHI), and encoded it exceeds the server's failure size."""
    cause = getattr(e, "orig", None) or e
    return ApplicationError(f"PostgreSQL unavailable or failing ({type(cause).__name__}); the step will be retried",
                            type="DatabaseUnavailable")


class CaseActivities:
    def __init__(self, sessions: async_sessionmaker, notifier: Notifier, codec=None) -> None:
        self.sessions = sessions
        self.notifier = notifier
        self.codec = codec  # seals the case record's snapshots (activities/records.py)

    @activity.defn(name="record_steps")
    async def record_steps(self, steps: list[StepRecord], status: dict[str, Any] | None = None) -> int:
        """Persist steps (idempotent: keyed by case and step number), then deliver their notices.
        ``status``: the workflow's status after the last step, kept as the case record."""
        store = self.notifier.letters
        letters = [row for step in steps for row in store.data_rows(step.case_id, step.notices)] if store else []
        try:
            await heartbeating(self._apply_all(steps, letters, status))
        except DB_DOWN as e:
            raise database_error(e) from None
        later = {row["key"] for row in letters}
        keys = [n.key for step in steps for n in step.notices if n.key not in later]
        self.notifier.deliver_later([n.key for step in steps for n in step.notices if n.key in later])
        try:
            return await heartbeating(self.notifier.deliver(keys))
        except Exception as e:
            # The steps are recorded; the notices wait in the outbox for the dispatcher, so a
            # mail outage never holds up the case's timers and actions.
            activity.logger.warning("notice delivery deferred: %s", type(e).__name__)
            return 0

    async def _apply_all(self, steps: list[StepRecord], letters: list[dict], status: dict[str, Any] | None) -> None:
        async with self.sessions.begin() as session:
            conn = await session.connection()
            if steps:
                await conn.execute(AUDIT, [_audit_row(step) for step in steps])
            for step in steps:  # in order: a step may close a task an earlier step of the batch opened
                await _apply_tasks(conn, step)
            outbox = [row for step in steps for row in Notifier.outbox_rows(step.case_id, step.notices)]
            if outbox:
                await conn.execute(OUTBOX, outbox)
            if letters:
                await conn.execute(insert(LetterRow).values(letters).on_conflict_do_nothing(index_elements=["key"]))
            # The read model keeps the newest record: the batch's last says all the earlier ones did.
            last = next((step for step in reversed(steps) if step.record is not None), None)
            if last is not None:
                await _upsert_case(conn, last)
            if status is not None and steps and self.codec is not None:
                last = steps[-1]
                await write_snapshot(conn, self.codec, last.case_id, last.source, last.seq, status)


# Statements built once with bind parameters, run with a list of rows (one round trip each):
# SQLAlchemy compiles each once per process instead of once per step.
AUDIT = insert(AuditRow.__table__).on_conflict_do_nothing(constraint="uq_audit_source_seq_at")
OUTBOX = insert(OutboxRow.__table__).on_conflict_do_nothing(index_elements=["key"])
_tasks = insert(TaskRow.__table__)
# A later life's T1 replaces the earlier life's (done) T1; a retry changes nothing.
OPEN_TASKS = _tasks.on_conflict_do_update(
    index_elements=["case_id", "task_id"], where=TaskRow.__table__.c.opened_at < _tasks.excluded.opened_at,
    set_={k: _tasks.excluded[k] for k in ("kind", "title", "assignee", "county", "due", "status", "opened_at",
                                          "closed_at")})
_t = TaskRow.__table__.c
CLOSE_TASKS = (update(TaskRow.__table__)
               .where(_t.case_id == bindparam("step_case"), _t.task_id.in_(bindparam("step_tasks", expanding=True)),
                      _t.status == "open", _t.opened_at <= bindparam("step_at"))  # not a later life's task
               .values(status="done", closed_at=bindparam("step_at")))


def _audit_row(step: StepRecord) -> dict:
    return dict(case_id=step.case_id, source=step.source, seq=step.seq, at=step.at, actor_id=step.actor_id,
                actor_role=step.actor_role, action=step.action, stage=step.stage, county=step.county,
                detail=step.model_dump(mode="json", include={"detail"})["detail"])


async def _apply_tasks(conn, step: StepRecord) -> None:
    if step.tasks_opened:
        await conn.execute(OPEN_TASKS, [
            dict(case_id=step.case_id, task_id=t.id, kind=t.kind, title=t.title, assignee=t.assignee,
                 county=step.county, due=t.due, status="open", opened_at=t.opened_at)
            for t in step.tasks_opened])
    if step.tasks_closed:
        await conn.execute(CLOSE_TASKS, dict(step_case=step.case_id, step_tasks=step.tasks_closed, step_at=step.at))


async def _upsert_case(conn, step: StepRecord) -> None:
    await conn.execute(UPSERT_CASE, dict(step.record.model_dump(), last_seq=step.seq,
                                         updated_at=datetime.now(timezone.utc)))


_case = insert(CaseRow.__table__)
UPSERT_CASE = _case.on_conflict_do_update(
    index_elements=["case_id"], set_={c.name: _case.excluded[c.name] for c in CaseRow.__table__.c if c.name != "case_id"},
    # A later life (referred again after closure) counts its steps from 1 again.
    where=tuple_(CaseRow.opened_at, CaseRow.last_seq) < tuple_(_case.excluded.opened_at, _case.excluded.last_seq),
)
