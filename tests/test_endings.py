"""Endings the program has (issue 15), on the time-skipping server through the client and the
case status: an application never returned and a renewal never completed each close the case
with a Notice of Action; a condition denied on an active case is appealed on its own, on the
case-level clocks (22 CCR 42160, 42180: 30 days to appeal, 21 to answer, 14 to ask for a hearing). The periods are policy: the second notice at 20 days is 22 CCR 41514,
the renewal notice 30 days ahead is 22 CCR 41610; the closing periods after them are county
practice (models/policy.py IntakePolicy.close_unreturned_after, ActivePolicy.renewal_close_after)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from activities.letters import LetterStore
from activities.tables import OutboxRow
from models.policy import Policy
from rules.ages import start_of_day
from sqlalchemy import select
from tests.conftest import INTAKE, KEYRING
from starters.client import CcsError
from tests.helpers import CM, MC, SUP, act, kinds, letter_text, referral
from tests.test_lifecycle import FULL_SCOPE, sleep_until, to_active

POLICY = Policy()


async def noa_text(sessions, case_id: str, kind: str = "notice_of_action") -> str:
    """The text of the case's one letter of this kind, as the family reads it (recorded and
    rendered just after the step that sent it)."""
    for _ in range(200):
        async with sessions() as s:
            keys = (await s.execute(select(OutboxRow.key).where(
                OutboxRow.case_id == case_id, OutboxRow.kind == kind))).scalars().all()
        assert len(keys) <= 1
        if keys:
            _, document = await LetterStore(sessions, KEYRING).get(keys[0])
            if document is not None:
                return letter_text(document)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {kind} letter rendered")


async def test_application_never_returned_closes_with_a_notice_of_action(ts_worker, sessions):
    env, cases = ts_worker
    lapsed = await cases.refer(referral(first_name="Lapse"), INTAKE)
    returned = await cases.refer(referral(first_name="Returns"), INTAKE)
    cid = lapsed.case_id
    status = await sleep_until(env, cases, cid, lapsed.deadlines["second_notice"],
                               lambda s: "second_notice" in kinds(s))
    assert status.stage == "intake"
    close_at = status.deadlines["application_lapsed"]
    assert close_at - lapsed.deadlines["second_notice"] == POLICY.intake.close_unreturned_after

    # The other family returns the application after the second notice: nothing closes.
    other = await cases.show(returned.case_id)
    assert "second_notice" in kinds(other)
    other = await cases.act(returned.case_id, "record_application", act(CM))  # received today
    assert other.stage == "records" and "application_lapsed" not in other.deadlines

    status = await sleep_until(env, cases, cid, close_at - timedelta(days=1))
    assert status.stage == "intake"  # not a day early
    status = await sleep_until(env, cases, cid, close_at, lambda s: s.stage == "closed")
    assert status.closure.reason == "application_not_returned" and not status.open_tasks
    assert kinds(status).count("notice_of_action") == 1 and "case_closed" in kinds(status)
    text = await noa_text(sessions, cid)
    assert "did not get the signed application back" in text and "22 CCR 41514" in text
    assert "you have the right to appeal" in text
    assert (await cases.show(returned.case_id)).stage == "records"


async def test_renewal_never_completed_closes_at_the_end_of_its_notice_period(ts_worker, sessions):
    env, cases = ts_worker
    lapsed = await cases.refer(referral(first_name="Renew"), INTAKE)
    renewed = await cases.refer(referral(first_name="Renewed"), INTAKE)
    for case in (lapsed, renewed):
        await to_active(cases, case.case_id)
    cid = lapsed.case_id
    status = await cases.show(cid)
    status = await sleep_until(env, cases, cid, status.deadlines["renewal_notice"],
                               lambda s: any(t.kind == "renewal" for t in s.open_tasks))
    close_at = start_of_day(status.renewal_due, POLICY.timezone) + POLICY.active.renewal_close_after
    assert status.deadlines["renewal_lapsed"] == close_at

    # The other family's renewal is completed: its case stays open past the date.
    other = await cases.show(renewed.case_id)
    assert any(t.kind == "renewal" for t in other.open_tasks) and "renewal_lapsed" in other.deadlines
    other = await cases.act(renewed.case_id, "record_renewal", act(CM, finances=FULL_SCOPE))
    assert "renewal_lapsed" not in other.deadlines and other.renewal_due > status.renewal_due

    status = await sleep_until(env, cases, cid, close_at, lambda s: s.stage == "closed")
    assert status.closure.reason == "renewal_not_completed" and not status.open_tasks
    assert kinds(status).count("notice_of_action") == 1
    text = await noa_text(sessions, cid)
    assert "yearly renewal was not done" in text and "22 CCR 41610" in text
    assert (await cases.show(renewed.case_id)).stage == "active"


async def _condition_denied(cases, name: str) -> str:
    """An active case (C1 eligible) whose second condition, C2, is denied: its own Notice of Action."""
    status = await cases.refer(referral(first_name=name), INTAKE)
    await to_active(cases, status.case_id)
    more = referral(first_name=name)
    more["conditions"] = [{"icd10": "G80.9", "description": "Cerebral palsy"}]
    await cases.refer(more, INTAKE)
    status = await cases.act(status.case_id, "record_medical_determination",
                             act(MC, condition_id="C2", eligible=False, reason="not a CCS condition"))
    assert status.stage == "active" and kinds(status).count("notice_of_action") == 1
    return status.case_id


async def test_a_condition_denied_on_an_active_case_is_appealed_on_its_own(ts_worker, sessions):
    env, cases = ts_worker
    won, lost, late = [await _condition_denied(cases, n) for n in ("Won", "Lost", "Late")]
    status = await cases.show(won)
    c2 = status.conditions[1]
    window = POLICY.notices
    assert c2.appeal_until - status.stage_since > timedelta(0) and c2.appeal is None
    with pytest.raises(CcsError, match="no denial of its own"):
        await cases.act(won, "file_condition_appeal", act(CM, condition_id="C1", grounds="x"))
    with pytest.raises(CcsError, match="does not fit a case in stage 'active'"):
        await cases.act(won, "file_appeal", act(CM, grounds="x"))

    before = await env.get_current_time()
    status = await cases.act(won, "file_condition_appeal", act(CM, condition_id="C2", grounds="neurologist's report"))
    ap = status.conditions[1].appeal
    assert status.stage == "active" and ap.answer_due - before >= window.appeal_answer_within
    task = next(t for t in status.open_tasks if t.kind == "condition_appeal:C2")
    assert (task.assignee, task.due) == ("supervisor", ap.answer_due)
    with pytest.raises(CcsError, match="already appealed"):
        await cases.act(won, "file_condition_appeal", act(CM, condition_id="C2", grounds="again"))
    with pytest.raises(CcsError, match="supervisor"):
        await cases.act(won, "decide_condition_appeal", act(CM, condition_id="C2", outcome="overturned", reason="x"))
    status = await cases.act(won, "decide_condition_appeal",
                             act(SUP, condition_id="C2", outcome="overturned", reason="report supports it"))
    assert status.conditions[1].status == "eligible" and status.stage == "active"
    assert not any(t.kind == "condition_appeal:C2" for t in status.open_tasks)
    assert "CCS now covers the health problem you asked about: Cerebral palsy" in await noa_text(
        sessions, won, "appeal_decision")

    await cases.act(lost, "file_condition_appeal", act(CM, condition_id="C2", grounds="second opinion"))
    status = await cases.act(lost, "decide_condition_appeal",
                             act(SUP, condition_id="C2", outcome="upheld", reason="no new findings"))
    c2 = status.conditions[1]
    assert c2.status == "not_eligible" and c2.appeal.hearing_until is not None
    assert c2.appeal.hearing_until - await env.get_current_time() <= window.fair_hearing_window
    assert "State fair hearing" in await noa_text(sessions, lost, "appeal_decision")
    # The hearing, asked for within its 14 days, overturns the denial (22 CCR 42180).
    asked = (await cases.show(lost)).conditions[1].appeal.decided_on.isoformat()
    with pytest.raises(CcsError, match="no upheld appeal"):
        await cases.act(won, "record_condition_fair_hearing",
                        act(CM, condition_id="C2", requested_on=asked, outcome="overturned"))
    await env.sleep(window.fair_hearing_window + timedelta(days=2))
    late_day = (await cases.show(lost)).conditions[1].appeal.hearing_until + timedelta(days=1)
    with pytest.raises(CcsError, match="after its window ended"):
        await cases.act(lost, "record_condition_fair_hearing", act(
            CM, condition_id="C2", requested_on=late_day.date().isoformat(), outcome="overturned"))
    status = await cases.act(lost, "record_condition_fair_hearing",
                             act(CM, condition_id="C2", requested_on=asked, outcome="overturned"))
    assert status.conditions[1].status == "eligible" and status.conditions[1].appeal.hearing_outcome == "overturned"

    # Past its 30 days the denial stands; the case goes on.
    status = await cases.show(late)
    await env.sleep(status.conditions[1].appeal_until - await env.get_current_time() + timedelta(hours=1))
    with pytest.raises(CcsError, match="appeal window for condition C2 ended"):
        await cases.act(late, "file_condition_appeal", act(CM, condition_id="C2", grounds="too late"))
    assert (await cases.show(late)).stage == "active"
