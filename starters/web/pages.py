"""What the web pages read: the case (workflow status, audit timeline, notices) and the
work queue. Reads only; every action goes through ``Cases`` like the CLI and the API."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import or_, select

from activities.tables import AuditRow, OutboxRow, TaskRow
from starters.api.auth import Principal
from starters.web.humane import urgency
from starters.api.routes.work import queues_of  # one definition of whose queue is whose

TIMELINE_ROWS = 200
MY_WORK_ROWS = 300


async def my_work(sessions, who: Principal, now: datetime | None = None) -> dict[str, list]:
    """Open tasks of mine and my queues, in bands: overdue first, then today, this week, later."""
    now = now or datetime.now(timezone.utc)
    q = select(TaskRow).where(TaskRow.status == "open", TaskRow.assignee.in_([who.user_id, *queues_of(who)]))
    if who.county and who.role != "state_reviewer":
        q = q.where(TaskRow.county == who.county)
    async with sessions() as s:
        rows = (await s.execute(q.order_by(TaskRow.due).limit(MY_WORK_ROWS))).scalars().all()
    bands: dict[str, list] = {"overdue": [], "today": [], "this week": [], "later": []}
    for row in rows:
        bands[urgency(row.due, now)].append(row)
    return bands


async def timeline(sessions, case_id: str) -> list[AuditRow]:
    """Every audited step of the case and of its requests, newest first."""
    async with sessions() as s:
        q = (select(AuditRow).where(AuditRow.case_id == case_id)
             .order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(TIMELINE_ROWS))
        return list((await s.execute(q)).scalars().all())


async def notices(sessions, case_id: str) -> list[OutboxRow]:
    async with sessions() as s:
        q = select(OutboxRow).where(or_(OutboxRow.case_id == case_id)).order_by(OutboxRow.created_at.desc())
        return list((await s.execute(q.limit(100))).scalars().all())
