"""My work, the supervisors' three questions, and the access log for auditors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import or_, select

from activities.tables import TaskRow
from starters.api.access_log import read_access
from starters.api.auth import Principal, require_roles
from starters.api.problems import ApiProblem, problem_responses
from starters.api.routes.cases import CASE_READERS, PERSON_ID
from starters.api.scope import CASE_ID
from starters.supervisor import _ident, stuck

router = APIRouter(tags=["work"])
ERRORS = problem_responses(401, 403, 422, 502)


class TaskOut(BaseModel):
    case_id: str
    task_id: str
    kind: str
    title: str
    assignee: str
    county: str
    due: datetime
    overdue: bool


class AccessEntry(BaseModel):
    id: int
    at: datetime
    user_id: str
    role: str
    case_id: str
    what: str


def queues_of(who: Principal) -> list[str]:
    """The work queues a person answers for, besides tasks assigned to them by name."""
    county = who.county or ""
    return {
        "intake_clerk": [f"{county}:unassigned"],
        "case_manager": [f"{county}:unassigned"],
        "supervisor": ["supervisor", f"{county}:unassigned"],
        "medical_consultant": [f"{county}:medical_consultant"],
        "state_reviewer": ["state:ccs_medical", "state:ccs_regional_office", "state:ccs_sar"],
    }.get(who.role, [])


@router.get("/my-work", response_model=list[TaskOut], responses=ERRORS)
async def my_work(request: Request, who: Principal = Depends(require_roles(*CASE_READERS)),
                  limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[TaskOut]:
    """Open tasks for you and your queues, most overdue first."""
    q = select(TaskRow).where(TaskRow.status == "open",
                              or_(TaskRow.assignee == who.user_id, TaskRow.assignee.in_(queues_of(who))))
    if who.county is not None:
        q = q.where(TaskRow.county == who.county)
    async with request.app.state.services.sessions() as s:
        rows = (await s.execute(q.order_by(TaskRow.due).limit(limit))).scalars().all()
    now = datetime.now(timezone.utc)
    return [TaskOut(case_id=r.case_id, task_id=r.task_id, kind=r.kind, title=r.title, assignee=r.assignee,
                    county=r.county, due=r.due, overdue=r.due < now) for r in rows]


def _own_county(who: Principal, county: str | None) -> str | None:
    """Supervisors see their county; a statewide supervisor token may name one."""
    if who.county is not None and county is not None and county.strip().lower() != who.county.lower():
        raise ApiProblem(403, f"you supervise {who.county} only", {"county": f"not {who.county}"})
    return who.county or county


@router.get("/supervision/stuck", response_model=dict[str, Any], responses=ERRORS)
async def stuck_cases(request: Request, who: Principal = Depends(require_roles("supervisor")),
                      stage: Annotated[str | None, Query(max_length=32)] = None,
                      county: Annotated[str | None, Query(max_length=60)] = None,
                      case_manager: Annotated[str | None, Query(pattern=PERSON_ID)] = None,
                      min_days: Annotated[float | None, Query(ge=0, le=36500)] = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
    """Cases whose stage has not changed for too long (`ccs stuck`)."""
    cases = request.app.state.services.cases
    return await stuck(cases.client, cases.policy, stage=stage, county=_own_county(who, county),
                       case_manager=case_manager, limit=limit,
                       min_in_stage=timedelta(days=min_days) if min_days is not None else None)


@router.get("/supervision/overdue", response_model=dict[str, Any], responses=ERRORS)
async def overdue(request: Request, who: Principal = Depends(require_roles("supervisor")),
                  within_days: Annotated[float, Query(ge=0, le=3650)] = 0,
                  assignee: Annotated[str | None, Query(pattern=PERSON_ID)] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> dict[str, Any]:
    """Open tasks past due, or due within `within_days` (`ccs overdue`)."""
    queue = request.app.state.services.queue
    return await queue.overdue(within=timedelta(days=within_days), county=who.county,
                               assignee=_ident(assignee, "assignee"), limit=limit)


@router.get("/supervision/workload", response_model=dict[str, Any], responses=ERRORS)
async def workload(request: Request, who: Principal = Depends(require_roles("supervisor"))) -> dict[str, Any]:
    """Open cases and tasks per case manager and queue, then per county and stage (`ccs workload`)."""
    return await request.app.state.services.queue.workload(county=who.county)


@router.get("/access-log", response_model=list[AccessEntry], responses=ERRORS)
async def access_log(request: Request, who: Principal = Depends(require_roles("auditor")),
                     case: Annotated[str | None, Query(pattern=CASE_ID, max_length=80)] = None,
                     user: Annotated[str | None, Query(pattern=PERSON_ID)] = None,
                     after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AccessEntry]:
    """Who read which case, when: for auditors. Page with `after` (the last `id` seen)."""
    rows = await read_access(request.app.state.services.sessions, case, user, after, limit, who.county)
    return [AccessEntry(**r) for r in rows]
