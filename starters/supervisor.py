"""What supervisors ask: stuck cases (Temporal visibility), overdue tasks and workload (the
work queue and case read model in PostgreSQL). The API serves these; `ccs stuck`, `ccs overdue`
and `ccs workload` call the API (starters/api/cli_verbs.py)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select
from temporalio.client import Client

from activities.db import reach_embedded
from activities.tables import CaseRow, TaskRow
from models import search
from models.case import STAGES
from models.counties import find_county
from models.policy import Policy
from models.settings import Settings
from starters.client import CcsError

_ID = re.compile(r"^[A-Za-z0-9._@:-]{1,64}$")
_DURATION = TypeAdapter(timedelta)


def duration(text: str) -> timedelta:
    """``P30D``, ``PT12H`` or a plain number of days."""
    try:
        return timedelta(days=float(text)) if re.fullmatch(r"\d+(\.\d+)?", text) else _DURATION.validate_python(text)
    except (ValidationError, ValueError):
        raise CcsError(f"{text!r} is not a duration: use days (30) or ISO 8601 (P30D, PT12H)") from None


def _county(name: str | None, policy: Policy) -> str | None:
    if name is None:
        return None
    county = find_county(name, policy.counties)
    if county is None:
        raise CcsError(f"unknown California county {name!r}")
    return county.name


def _ident(value: str | None, what: str) -> str | None:
    if value is not None and not _ID.match(value):
        raise CcsError(f"{what} {value!r} is not a valid ID (letters, digits, . _ @ : -)")
    return value


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stuck_query(policy: Policy, now: datetime, stage: str | None = None, county: str | None = None,
                case_manager: str | None = None, min_in_stage: timedelta | None = None) -> str:
    """The visibility query for cases whose stage has not changed for too long."""
    if stage is not None and (stage not in STAGES or stage == "closed"):
        raise CcsError(f"unknown stage {stage!r}; stages: {', '.join(s for s in STAGES if s != 'closed')}")
    thresholds = policy.supervision.stuck_after
    stages = [stage] if stage else [s for s in STAGES if s != "closed"]
    parts = []
    for st in stages:
        limit = min_in_stage if min_in_stage is not None else thresholds.get(st)
        if limit is None:
            continue
        parts.append(f"({search.STAGE.name} = '{st}' AND {search.STAGE_SINCE.name} < '{_iso(now - limit)}')")
    query = f"WorkflowType = 'ChildCaseWorkflow' AND ExecutionStatus = 'Running' AND ({' OR '.join(parts)})"
    if county:
        query += f" AND {search.COUNTY.name} = '{county}'"
    if case_manager:
        query += f" AND {search.CASE_MANAGER.name} = '{case_manager}'"
    return query


async def stuck(client: Client, policy: Policy, *, stage: str | None = None, county: str | None = None,
                case_manager: str | None = None, min_in_stage: timedelta | None = None,
                limit: int = 200, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(timezone.utc)
    query = stuck_query(policy, now, stage, _county(county, policy), _ident(case_manager, "case manager"),
                        min_in_stage)
    total = (await client.count_workflows(query)).count
    rows = []
    async for wf in client.list_workflows(query, limit=limit, page_size=min(limit, 1000)):
        sa = wf.typed_search_attributes
        since = sa.get(search.STAGE_SINCE)
        rows.append({
            "case_id": wf.id,
            "stage": sa.get(search.STAGE),
            "since": since.isoformat() if since else None,
            "days_in_stage": round((now - since).total_seconds() / 86400, 1) if since else None,
            "county": sa.get(search.COUNTY),
            "case_manager": sa.get(search.CASE_MANAGER),
            "next_deadline": (d.isoformat() if (d := sa.get(search.NEXT_DEADLINE)) else None),
        })
    rows.sort(key=lambda r: r["since"] or "")
    return {"query": query, "total": total, "shown": len(rows), "cases": rows}


class WorkQueue:
    """Reads of the work queue and case read model."""

    def __init__(self, engine) -> None:
        self.engine = engine

    async def overdue(self, *, within: timedelta = timedelta(0), county: str | None = None,
                      assignee: str | None = None, limit: int = 500, now: datetime | None = None) -> dict:
        now = now or datetime.now(timezone.utc)
        cutoff = now + within
        q = select(TaskRow).where(TaskRow.status == "open", TaskRow.due <= cutoff)
        if county:
            q = q.where(TaskRow.county == county)
        if assignee:
            q = q.where(TaskRow.assignee == assignee)
        count_q = select(func.count()).select_from(q.subquery())
        async with self.engine.connect() as conn:
            total = (await conn.execute(count_q)).scalar_one()
            rows = (await conn.execute(q.order_by(TaskRow.due).limit(limit))).all()
        return {
            "as_of": now.isoformat(), "within_days": within.total_seconds() / 86400, "total": total,
            "tasks": [
                {"case_id": r.case_id, "task_id": r.task_id, "kind": r.kind, "title": r.title,
                 "assignee": r.assignee, "county": r.county, "due": r.due.isoformat(),
                 "overdue_days": round((now - r.due).total_seconds() / 86400, 1)}
                for r in rows
            ],
        }

    async def workload(self, *, county: str | None = None) -> dict:
        open_cases = select(CaseRow.case_manager, func.count()).where(CaseRow.stage != "closed")
        by_stage = select(CaseRow.county, CaseRow.stage, func.count()).where(CaseRow.stage != "closed")
        tasks = select(TaskRow.assignee, func.count(), func.min(TaskRow.due)).where(TaskRow.status == "open")
        if county:
            open_cases = open_cases.where(CaseRow.county == county)
            by_stage = by_stage.where(CaseRow.county == county)
            tasks = tasks.where(TaskRow.county == county)
        async with self.engine.connect() as conn:
            cases = (await conn.execute(open_cases.group_by(CaseRow.case_manager))).all()
            stages = (await conn.execute(by_stage.group_by(CaseRow.county, CaseRow.stage))).all()
            task_rows = (await conn.execute(tasks.group_by(TaskRow.assignee))).all()
        people: dict[str, dict] = {}
        for cm, n in cases:
            people.setdefault(cm or "(unassigned)", {"open_cases": 0, "open_tasks": 0, "next_due": None})["open_cases"] = n
        for who, n, due in task_rows:
            entry = people.setdefault(who, {"open_cases": 0, "open_tasks": 0, "next_due": None})
            entry["open_tasks"], entry["next_due"] = n, due.isoformat() if due else None
        return {
            "case_managers": [{"case_manager": k, **v} for k, v in sorted(people.items())],
            "by_county_stage": [{"county": c, "stage": s, "open_cases": n} for c, s, n in sorted(stages)],
        }


def database_url_for_cli(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    url = reach_embedded(settings.home_dir / "pg")
    if url is None:
        raise CcsError(f"no database: start `ccs up` (embedded PostgreSQL in {settings.home_dir / 'pg'}) "
                       "or set DATABASE_URL")
    return url


# ---- tables for the CLI --------------------------------------------------------------

def _table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(title), *(len(str(r.get(key) if r.get(key) is not None else "-")) for r in rows))
              for key, title in columns]
    out = ["  ".join(t.ljust(w) for (_, t), w in zip(columns, widths))]
    for r in rows:
        out.append("  ".join(str(r.get(k) if r.get(k) is not None else "-").ljust(w)
                             for (k, _), w in zip(columns, widths)))
    return "\n".join(out)
