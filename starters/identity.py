"""`ccs reindex`: put the cases opened before the identity index existed into it, so a new
referral of those children reaches their case. Safe to run again: keys already there stay."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker

from activities.identity import claim_for_case, keys_of
from models.case import CaseStatus
from starters.client import Cases

OPEN_CASES = "WorkflowType = 'ChildCaseWorkflow' AND ExecutionStatus = 'Running'"


async def reindex(cases: Cases, sessions: async_sessionmaker) -> dict[str, int]:
    counts = {"cases": 0, "keys_added": 0}
    async for execution in cases.client.list_workflows(f"{OPEN_CASES} AND TaskQueue = '{cases.task_queue}'"):
        status = await cases.show(execution.id)
        if not isinstance(status, CaseStatus):
            continue
        counts["cases"] += 1
        counts["keys_added"] += await claim_for_case(sessions, keys_of(status.child, cases.secret), execution.id)
    return counts
