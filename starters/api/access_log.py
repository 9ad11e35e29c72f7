"""The access log: every read of a case, its audit trail or a request by a person is one
append-only row (who, role, which case, what, when). No PHI: IDs and a route name only."""

from __future__ import annotations


from sqlalchemy import select

from activities.tables import AccessRow, CaseRow
from starters.api.auth import Principal


async def record_access(sessions, who: Principal, case_id: str, what: str) -> None:
    """Write one row; ``what`` names the read (e.g. ``case``, ``audit_trail``, ``request:CASE-ml-1``)."""
    async with sessions.begin() as s:
        s.add(AccessRow(user_id=who.user_id, role=who.role, case_id=case_id, what=what[:96]))


async def read_access(sessions, case_id: str | None, user_id: str | None, after: int, limit: int,
                      county: str | None = None) -> list[dict]:
    q = select(AccessRow).where(AccessRow.id > after)
    if county is not None:  # a county auditor: reads of that county's cases
        q = q.where(AccessRow.case_id.in_(select(CaseRow.case_id).where(CaseRow.county == county)))
    if case_id:
        q = q.where(AccessRow.case_id == case_id)
    if user_id:
        q = q.where(AccessRow.user_id == user_id)
    async with sessions() as s:
        rows = (await s.execute(q.order_by(AccessRow.id).limit(limit))).scalars().all()
    return [{"id": r.id, "at": r.at, "user_id": r.user_id, "role": r.role, "case_id": r.case_id, "what": r.what}
            for r in rows]


