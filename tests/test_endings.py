"""Endings the program has (issue 15), on the time-skipping server through the client and the
case status: an application never returned and a renewal never completed each close the case
with a Notice of Action. The periods are policy: the second notice at 20 days is 22 CCR 41514,
the renewal notice 30 days ahead is 22 CCR 41610; the closing periods after them are county
practice (models/policy.py IntakePolicy.close_unreturned_after, ActivePolicy.renewal_close_after)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from activities.letters import LetterStore
from activities.tables import OutboxRow
from models.policy import Policy
from rules.ages import start_of_day
from sqlalchemy import select
from tests.conftest import INTAKE, KEYRING
from tests.helpers import CM, act, kinds, letter_text, referral
from tests.test_lifecycle import FULL_SCOPE, sleep_until, to_active

POLICY = Policy()


async def noa_text(sessions, case_id: str) -> str:
    async with sessions() as s:
        keys = (await s.execute(select(OutboxRow.key).where(
            OutboxRow.case_id == case_id, OutboxRow.kind == "notice_of_action"))).scalars().all()
    assert len(keys) == 1
    for _ in range(200):  # rendered in the background just after its step is recorded
        _, document = await LetterStore(sessions, KEYRING).get(keys[0])
        if document is not None:
            return letter_text(document)
        await asyncio.sleep(0.05)
    raise AssertionError("the Notice of Action was never rendered")


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
