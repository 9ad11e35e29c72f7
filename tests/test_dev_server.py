"""Against the real Temporal dev server (with the SPEC's search attributes) and real
PostgreSQL: timers shortened by policy fire on their own; supervisors' questions."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from activities.tables import AuditRow
from models import search
from models.policy import Policy
from starters.client import CcsError
from starters.supervisor import WorkQueue, stuck
from tests.conftest import INTAKE, cases_for
from tests.helpers import CM, SUP, act, kinds, referral, settle
from workers.worker import build_worker

FAST = Policy.model_validate({
    "intake": {"second_notice_after": "PT3S"},
    "records": {"reminder_every": "PT2S", "escalate_after": "PT5S"},
    "supervision": {"escalation_grace": "PT2S", "stuck_after": {"intake": "PT1S", "records": "PT1H"}},
})


@pytest.fixture
async def fast_cases(dev_env, activities):
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_env.client, queue, activities):
        yield cases_for(dev_env, queue, FAST)


async def test_short_timers_fire_by_themselves(fast_cases, sessions):
    cases = fast_cases
    status = await cases.refer(referral(first_name="Quick"), INTAKE)
    cid = status.case_id
    status = await settle(cases, cid, lambda s: "second_notice" in kinds(s), timeout=20)
    # The application task was due with the second notice: its assignee hears, then the supervisor.
    status = await settle(cases, cid, lambda s: "task_escalation" in kinds(s), timeout=20)
    status = await cases.act(cid, "record_application", act(CM))
    status = await settle(cases, cid, lambda s: "records_escalation" in kinds(s) and
                          kinds(s).count("records_reminder") >= 2, timeout=30)

    async def audited():
        async with sessions() as s:
            rows = (await s.scalars(select(AuditRow.action).where(AuditRow.case_id == cid))).all()
        return rows if "timer:records_escalation" in rows else None

    actions = await _until(audited)  # steps reach the database just after the workflow takes them
    for timer in ("timer:second_notice", "timer:records_reminder", "timer:records_escalation",
                  "timer:task_due", "timer:task_grace"):
        assert timer in actions
    assert actions.count("timer:second_notice") == 1 and actions.count("timer:records_escalation") == 1


async def _until(predicate, timeout=20.0):
    for _ in range(int(timeout / 0.25)):
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.25)
    raise AssertionError("visibility never caught up")


async def test_stuck_cases_from_visibility(fast_cases):
    cases = fast_cases
    tag = uuid.uuid4().hex[:6]
    a = await cases.refer(referral(first_name=f"Stuck{tag}", county="Fresno"), INTAKE)
    b = await cases.refer(referral(first_name=f"Moving{tag}", county="Fresno"), INTAKE)
    c = await cases.refer(referral(first_name=f"Far{tag}", county="Alpine"), INTAKE)
    await cases.act(b.case_id, "record_application", act(CM))  # b moved on to records
    await cases.act(a.case_id, "assign_case_manager", act(SUP, case_manager=f"cm.{tag}"))
    client, policy = cases.client, cases.policy

    async def fresno_intake():
        r = await stuck(client, policy, county="fresno", stage="intake")
        rows = {row["case_id"]: row for row in r["cases"]}
        settled = a.case_id in rows and b.case_id not in rows and rows[a.case_id]["case_manager"]
        return r if settled else None  # visibility lags the workflow a little

    result = await _until(fresno_intake)
    ids = {row["case_id"] for row in result["cases"]}
    assert b.case_id not in ids and c.case_id not in ids  # b is in records (threshold 1 h); c elsewhere
    row = next(r for r in result["cases"] if r["case_id"] == a.case_id)
    assert row["county"] == "Fresno" and row["stage"] == "intake" and row["case_manager"] == f"cm.{tag}"
    assert row["next_deadline"] and row["since"]
    mine = await stuck(client, policy, case_manager=f"cm.{tag}")
    assert [r["case_id"] for r in mine["cases"]] == [a.case_id]
    assert (await stuck(client, policy, stage="records", county="Fresno"))["total"] == 0
    longer = await stuck(client, policy, county="Fresno", min_in_stage=timedelta(days=30))
    assert a.case_id not in {r["case_id"] for r in longer["cases"]}
    for bad in (dict(stage="limbo"), dict(county="Atlantis"), dict(case_manager="x' OR '1'='1")):
        with pytest.raises(CcsError):
            await stuck(client, policy, **bad)


async def test_overdue_and_workload_from_the_work_queue(fast_cases, engine, clean_db):
    cases = fast_cases
    a = await cases.refer(referral(first_name="Load", county="Kern"), INTAKE)
    await cases.act(a.case_id, "assign_case_manager", act(SUP, case_manager="cm.load"))
    b = await cases.refer(referral(first_name="Other", county="Tulare"), INTAKE)
    queue = WorkQueue(engine)

    async def overdue_now():
        r = await queue.overdue(county="Kern")
        return r if r["total"] and r["tasks"][0]["assignee"] == "cm.load" else None

    result = await _until(overdue_now)  # the application task is due after 3 s
    assert [t["case_id"] for t in result["tasks"]] == [a.case_id]
    assert result["tasks"][0]["assignee"] == "cm.load"
    soon = await queue.overdue(within=timedelta(days=1), assignee="cm.load")
    assert soon["total"] == 1
    work = await queue.workload()
    people = {p["case_manager"]: p for p in work["case_managers"]}
    assert people["cm.load"]["open_cases"] == 1 and people["cm.load"]["open_tasks"] == 1
    assert {"county": "Tulare", "stage": "intake", "open_cases": 1} in work["by_county_stage"]
    assert (await queue.workload(county="Kern"))["by_county_stage"] == [
        {"county": "Kern", "stage": "intake", "open_cases": 1}]


async def test_search_attributes_follow_quick_successive_actions(fast_cases):
    """Steps taken while the case records earlier ones still reach visibility at once
    (not at the next timer, which here is weeks away)."""
    cases = fast_cases
    status = await cases.refer(referral(first_name="Brisk", county="Fresno"), INTAKE)
    cid = status.case_id
    for name, data in (("record_application", act(CM)), ("record_records", act(CM)),
                       ("record_eligibility", act(CM, finances={"residential_in_county": True,
                                                                "full_scope_medi_cal": True}))):
        await cases.act(cid, name, data)

    async def stage_visible():
        desc = await cases.client.get_workflow_handle(cid).describe()
        return desc.typed_search_attributes.get(search.STAGE) == "medical_review" or None

    await _until(stage_visible, timeout=10)
