"""A child referred again after the case closed: a new workflow under the same case ID,
its steps (and tasks) numbered from 1 again. Its audit rows, read-model row and tasks must
be recorded beside the first life's, and a retry of either life must change nothing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.tables import AuditRow, CaseRow, TaskRow
from models.case import CaseRecord, StepRecord, TaskRef

FIRST = datetime(2025, 1, 6, 17, 0, tzinfo=timezone.utc)
AGAIN = datetime(2026, 3, 2, 17, 0, tzinfo=timezone.utc)


def step(cid: str, seq: int, at: datetime, action: str, stage: str, opened: datetime, task: str | None = None,
         closed: list[str] | None = None) -> StepRecord:
    record = CaseRecord(case_id=cid, stage=stage, stage_since=at, county="Kern", jurisdiction="county",
                        case_manager=None, next_deadline=None, conditions=["E84.0"], opened_at=opened,
                        closed_at=at if stage == "closed" else None)
    tasks = [TaskRef(id="T1", kind="application", title=task, assignee="Kern:unassigned", due=at + timedelta(days=30),
                     opened_at=at)] if task else []
    return StepRecord(case_id=cid, source=cid, seq=seq, at=at, actor_id="clerk.intake", actor_role="intake_clerk",
                      action=action, stage=stage, county="Kern", record=record, tasks_opened=tasks,
                      tasks_closed=closed or [])


async def test_a_second_life_is_recorded_beside_the_first(activities, sessions):
    cid = f"case-{uuid.uuid4().hex[:20]}"
    first = [step(cid, 1, FIRST, "refer", "intake", FIRST, task="Receive the application (first life)"),
             step(cid, 2, FIRST + timedelta(days=40), "close_case", "closed", FIRST, closed=["T1"])]
    again = [step(cid, 1, AGAIN, "refer", "intake", AGAIN, task="Receive the application (second life)")]
    env = ActivityEnvironment()
    for batch in (first, again, again, first):  # each retried; the last a late retry of the first life
        await env.run(activities.record_steps, batch)

    async with sessions() as s:
        audit = (await s.execute(select(AuditRow.seq, AuditRow.at, AuditRow.action).where(AuditRow.case_id == cid)
                                 .order_by(AuditRow.at))).all()
        case = await s.get(CaseRow, cid)
        task = await s.get(TaskRow, (cid, "T1"))
    assert [tuple(a) for a in audit] == [(1, FIRST, "refer"), (2, FIRST + timedelta(days=40), "close_case"),
                                         (1, AGAIN, "refer")]
    # The case list shows the case open again, and the work queue holds the new life's task.
    assert (case.stage, case.opened_at, case.closed_at) == ("intake", AGAIN, None)
    assert (task.status, task.title, task.opened_at) == ("open", "Receive the application (second life)", AGAIN)


async def test_a_child_referred_again_after_closure_gets_the_new_life_s_letters(ts_worker, sessions):
    """The family withdrew; months later the child is referred again. The new life's
    application packet is a notice of its own: queued and delivered, not taken for the first
    life's packet (both lives number their steps from 1)."""
    import asyncio

    from activities.tables import OutboxRow
    from tests.conftest import INTAKE
    from tests.helpers import CM, act, referral

    env, cases = ts_worker
    child = referral(first_name="Second", last_name="Lifetest")
    first = await cases.submit_referral(child, INTAKE)
    await cases.act(first.case_id, "close_case", act(CM, reason="family_withdrew"))
    await env.sleep(timedelta(days=90))
    for _ in range(100):  # the first life's workflow finishes its last steps
        closed = await cases.show(first.case_id)
        if closed.stage == "closed":
            break
        await asyncio.sleep(0.05)
    again = await cases.submit_referral(child, INTAKE)
    assert again.case_id == first.case_id and again.stage == "intake"

    for _ in range(200):
        async with sessions() as s:
            packets = (await s.execute(select(OutboxRow.key, OutboxRow.status).where(
                OutboxRow.case_id == first.case_id, OutboxRow.kind == "application_packet"))).all()
        if len(packets) == 2 and all(st in ("sent", "postal") for _, st in packets):
            break
        await asyncio.sleep(0.05)
    assert len(packets) == 2, packets  # one application packet per life, each delivered
    assert all(st in ("sent", "postal") for _, st in packets), packets
