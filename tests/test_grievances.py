"""Grievances: a family's complaint as a request of its own, through the client (`ccs act`)
and the statuses, on the time-skipping server. The clocks are the managed-care standard cited
in models/policy.py GrievancePolicy: acknowledged in writing within 5 calendar days (at once
here), resolved within 30 days (HSC 1368.01(a)), 72 hours when health is at risk (HSC
1368.01(b), 28 CCR 1300.68.01(a)(2))."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from activities.tables import OutboxRow
from models.policy import Policy
from rules.ages import local_today
from starters.client import CcsError
from tests.conftest import INTAKE
from tests.helpers import CM, act, referral, settle
from tests.test_case_requests import example
from tests.test_endings import noa_text as letter_of

POLICY = Policy()


async def sent(sessions, case_id: str, kind: str, at_least: int = 0) -> list[OutboxRow]:
    """The case's notices of this kind, once there are ``at_least`` (steps are recorded just after)."""
    for _ in range(200):
        async with sessions() as s:
            rows = list((await s.execute(select(OutboxRow).where(
                OutboxRow.case_id == case_id, OutboxRow.kind == kind))).scalars().all())
        if len(rows) >= at_least:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} {kind} notices")


async def test_grievance_acknowledged_at_once_escalated_when_late_and_resolved_in_writing(ts_worker, sessions):
    env, cases = ts_worker
    cid = (await cases.refer(referral(first_name="Complains"), INTAKE)).case_id
    status = await cases.act(cid, "file_grievance", example("file_grievance") | {"actor": INTAKE.model_dump()})
    rid = status.requests[0].request_id
    assert rid == f"{cid}-grv-1" and status.requests[0].kind == "grievance"
    g = await settle(cases, rid, lambda r: r.state == "open")
    assert g.acknowledged_at == g.received_at
    assert g.decision_due - g.received_at == POLICY.grievance.resolve_within == timedelta(days=30)
    assert [(t.id, t.kind, t.due) for t in g.open_tasks] == [("GRV1-T1", "grievance_resolution", g.decision_due)]
    due = local_today(g.decision_due, POLICY.timezone)
    ack = await letter_of(sessions, cid, "grievance_acknowledged")
    assert f"answer by {due:%B} {due.day}, {due.year}" in ack
    await settle(cases, cid, lambda s: s.requests[0].state == "open" and s.requests[0].next_deadline == g.decision_due)

    with pytest.raises(CcsError, match="case_manager, supervisor"):
        await cases.act(cid, "resolve_grievance", example("resolve_grievance", request_id=rid,
                                                          actor=INTAKE.model_dump()))
    await env.sleep(g.decision_due - POLICY.grievance.reminder_before + timedelta(hours=1) - await env.get_current_time())
    assert len(await sent(sessions, cid, "grievance_reminder", 1)) == 1
    assert not await sent(sessions, cid, "grievance_escalation")
    await env.sleep(timedelta(days=POLICY.grievance.reminder_before.days + 3))
    for kind in ("grievance_reminder", "grievance_escalation", "grievance_overdue"):
        assert len(await sent(sessions, cid, kind, 1)) == 1, kind
    assert [n.recipient for n in await sent(sessions, cid, "grievance_overdue")] == ["supervisor"]
    assert (await cases.show(rid)).open_tasks[0].id == "GRV1-T1"  # still open, overdue

    g = await cases.act(cid, "resolve_grievance", example("resolve_grievance", request_id=rid) | {
        "actor": CM.model_dump(), "resolution": "We found an earlier visit at another clinic."})
    assert g.state == "resolved" and g.resolved_by == CM.id and not g.open_tasks
    assert "We found an earlier visit at another clinic." in await letter_of(sessions, cid, "grievance_resolved")
    status = await settle(cases, cid, lambda s: s.requests[0].closed)
    assert status.requests[0].state == "resolved"
    with pytest.raises(CcsError, match="resolved"):
        await cases.act(cid, "resolve_grievance", example("resolve_grievance", request_id=rid))


async def test_expedited_grievance_due_in_72_hours_and_outlives_the_case(ts_worker, sessions):
    env, cases = ts_worker
    cid = (await cases.refer(referral(first_name="Urgent"), INTAKE)).case_id
    data = example("file_grievance")
    data["request"] |= {"about": "provider", "expedited": True}
    rid = (await cases.act(cid, "file_grievance", data)).requests[0].request_id
    g = await settle(cases, rid, lambda r: r.state == "open")
    assert g.decision_due - g.received_at == timedelta(hours=72)
    assert [n.recipient for n in await sent(sessions, cid, "grievance_expedited", 1)] == ["supervisor"]
    assert "we will answer fast" in await letter_of(sessions, cid, "grievance_acknowledged")

    await cases.act(cid, "close_case", act(CM, reason="family_withdrew"))
    g = await settle(cases, rid, lambda r: r.case_closed)
    assert g.state == "open"  # the family's complaint is still answered
    await env.sleep(timedelta(hours=73))
    assert len(await sent(sessions, cid, "grievance_overdue", 1)) == 1
    g = await cases.act(cid, "resolve_grievance", example("resolve_grievance", request_id=rid))
    assert g.state == "resolved"
