"""Meals-and-lodging and service authorization request workflows on the time-skipping server
(and once end to end on the dev server).

Each test starts the request workflows directly, as the case would, under a made-up case
ID; most have no parent at all (telling a missing case must not hurt), one has a stand-in
case that records what it is told. Assertions go through the status query and the tables."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal as D

import holidays
import pytest
import pytest_asyncio
from sqlalchemy import select
from temporalio import workflow
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Replayer, Worker

from activities.letters import LetterStore
from activities.payments import PaymentActivities
from activities.tables import OutboxRow, PaymentRow, TaskRow
from models.case import Actor, Condition
from models.policy import Policy
from models.requests import (
    AuthorizationInput,
    AuthorizationRequest,
    AuthorizationStatus,
    MealsLodgingInput,
    MealsLodgingRequest,
    MealsLodgingStatus,
    PaymentInput,
    RequestSummary,
)
from rules.ages import local_today, start_of_day
from rules.reimbursement import meals_lodging_problems
from tests.conftest import KEYRING
from tests.helpers import CM, MC, SUP, act, letter_text
from workflows.authorization import ServiceAuthorizationWorkflow
from workflows.meals_lodging import MealsLodgingWorkflow

POLICY = Policy()
TZ = POLICY.timezone
CLERK = Actor(id="clerk.front", role="intake_clerk")
ELIGIBLE = [Condition(id="C1", icd10="E84.0", description="Cystic fibrosis", referred_on=date(2026, 1, 5),
                      referrer_kind="specialist", status="eligible")]


@workflow.defn(sandboxed=False)  # the sandbox would re-import this test module and its database imports
class StandInCase:
    """Records what its requests tell it, like the case workflow will."""

    def __init__(self) -> None:
        self.told: list[RequestSummary] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name="request_changed")
    def request_changed(self, summary: RequestSummary) -> None:
        self.told.append(summary)

    @workflow.query
    def summaries(self) -> list[RequestSummary]:
        return self.told


WORKFLOWS = [MealsLodgingWorkflow, ServiceAuthorizationWorkflow]


class Env:
    def __init__(self, env, queue: str, sessions) -> None:
        self.env, self.client, self.queue, self.sessions = env, env.client, queue, sessions
        self.case_id = f"case-t{uuid.uuid4().hex[:12]}"

    async def today(self) -> date:
        return local_today(await self.env.get_current_time(), TZ)

    async def start_ml(self, n: int = 1, family: dict | None = None, **request):
        rid = f"{self.case_id}-ml-{n}"
        inp = MealsLodgingInput(request_id=rid, case_id=self.case_id, county="Kern", case_manager="cm.rivera",
                                family_address="family@example.org", policy=POLICY, conditions=ELIGIBLE,
                                request=MealsLodgingRequest.model_validate(request), requested_by=CM, **(family or {}))
        return await self.client.start_workflow(MealsLodgingWorkflow.run, inp, id=rid, task_queue=self.queue)

    async def start_sar(self, n: int = 1, **request):
        rid = f"{self.case_id}-sar-{n}"
        req = dict(provider="Valley Children's Hospital", service="Pulmonary function testing", code="94010",
                   condition_id="C1", **request)
        inp = AuthorizationInput(request_id=rid, case_id=self.case_id, county="Kern", case_manager="cm.rivera",
                                 family_address="family@example.org", policy=POLICY, conditions=ELIGIBLE,
                                 request=AuthorizationRequest.model_validate(req), requested_by=CM)
        return await self.client.start_workflow(ServiceAuthorizationWorkflow.run, inp, id=rid, task_queue=self.queue)

    async def rows(self, model, **where) -> list:
        async with self.sessions() as session:
            return list((await session.execute(select(model).filter_by(**where))).scalars().all())

    async def notices(self, kind: str | None = None) -> list[OutboxRow]:
        return [r for r in await self.rows(OutboxRow, case_id=self.case_id) if kind in (None, r.kind)]

    async def tasks(self) -> dict[str, str]:
        return {t.task_id: t.status for t in await self.rows(TaskRow, case_id=self.case_id)}

    async def letter(self, notice: OutboxRow) -> str:
        """The text of the notice's letter, as the family reads it (the PDF, read back)."""
        for _ in range(200):  # rendered and sent just after its step is recorded
            _, document = await LetterStore(self.sessions, KEYRING).get(notice.key)
            if document is not None:
                return letter_text(document)
            await asyncio.sleep(0.05)
        raise AssertionError(f"letter {notice.key} never rendered")


@pytest_asyncio.fixture
async def reqs(ts_env, activities, sessions):
    queue = f"tq-req-{uuid.uuid4().hex[:8]}"
    async with Worker(ts_env.client, task_queue=queue, workflows=[*WORKFLOWS, StandInCase],
                      activities=[activities.record_steps, PaymentActivities(sessions).pay_reimbursement]):
        yield Env(ts_env, queue, sessions)


async def eventually(check, timeout: float = 30.0):
    """Poll ``check`` (async, returns a truthy value when done): the worker catches up in real time."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await check()
        if value or loop.time() > end:
            assert value, "condition not reached"
            return value
        await asyncio.sleep(0.1)


async def status(handle):
    return await handle.query("status", result_type=MealsLodgingStatus if "-ml-" in handle.id else AuthorizationStatus)


async def finished(handle):
    """The final status, once the workflow completed. Not ``handle.result()``: waiting on a result
    lets the test server skip time to the next timer of any workflow in the session."""
    await eventually(lambda: _completed(handle))
    return await status(handle)


async def _completed(handle) -> bool:
    return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def in_state(handle, state: str):
    return await eventually(lambda: _state_is(handle, state))


async def _state_is(handle, state):
    s = await status(handle)
    return s if s.state == state else None


async def update(handle, name: str, actor: Actor, **data):
    kind = MealsLodgingStatus if "-ml-" in handle.id else AuthorizationStatus
    return await handle.execute_update(name, act(actor, **{"request_id": handle.id, **data}), result_type=kind)


async def rejected(handle, name: str, actor: Actor, **data) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as e:
        await update(handle, name, actor, **data)
    assert isinstance(e.value.cause, ApplicationError) and e.value.cause.type == "InvalidAction"
    return e.value.cause.message


def trip(start: date, days: int = 2, **kw) -> dict:
    data = dict(travel_start=start.isoformat(), travel_end=(start + timedelta(days=days - 1)).isoformat(),
                nights=days - 1, round_trip_miles="300", condition_id="C1", treatment="pulmonology clinic",
                travellers=[{"relationship": "child"}, {"relationship": "parent"}],
                estimated={"meals": "60", "lodging": "150", "mileage": "63", "parking": "20"})
    data.update(kw)
    return data


async def sleep_past(reqs: Env, when: datetime, extra: timedelta = timedelta(hours=1)) -> None:
    await reqs.env.sleep(when + extra - await reqs.env.get_current_time())


# ---- meals and lodging ------------------------------------------------------------


async def test_on_time_request_approved_receipted_and_paid_once(reqs):
    case = await reqs.client.start_workflow(StandInCase.run, id=reqs.case_id, task_queue=reqs.queue)
    today = await reqs.today()
    start = today + timedelta(days=10)
    h = await reqs.start_ml(**trip(start))
    s = await status(h)
    assert (s.state, s.route) == ("awaiting_decision", "prior_approval")
    assert s.decision_due <= start_of_day(start, TZ)
    assert [t.id for t in s.open_tasks] == ["ML1-T1"]
    assert await eventually(lambda: _has_task(reqs, "ML1-T1", "open"))

    s = await update(h, "decide_meals_lodging", CM, decision="approve")
    assert s.state == "approved" and s.decision.approved.total() == D("293")
    assert [t.id for t in s.open_tasks] == ["ML1-T2"]
    # Receipts are dated on the trip, so none can be sent before it.
    msg = await rejected(h, "submit_receipts", CM, items=[{"category": "meals", "amount": "10",
                                                            "spent_on": start.isoformat()}])
    assert "in the future" in msg

    await sleep_past(reqs, start_of_day(start + timedelta(days=2), TZ))
    items = [{"category": "meals", "amount": "28.40", "spent_on": start.isoformat()},
             {"category": "meals", "amount": "21.60", "spent_on": (start + timedelta(days=1)).isoformat()},
             {"category": "lodging", "amount": "140", "spent_on": start.isoformat()},
             {"category": "mileage", "amount": "63", "spent_on": start.isoformat()},
             {"category": "parking", "amount": "25", "spent_on": start.isoformat()}]
    s = await update(h, "submit_receipts", CM, items=items)
    assert s.state == "paying" and s.reimbursement.total == D("273.00")  # parking capped at the approved $20
    final = await finished(h)
    assert final.state == "paid" and final.payment.amount == D("273.00") and final.open_tasks == []

    paid = await reqs.rows(PaymentRow, request_id=h.id)
    assert [(p.case_id, p.amount) for p in paid] == [(reqs.case_id, D("273.00"))]
    # A retried payment (even with another amount) pays nothing more and reports what was paid.
    again = await ActivityEnvironment().run(PaymentActivities(reqs.sessions).pay_reimbursement,
                                            PaymentInput(request_id=h.id, case_id=reqs.case_id, amount=D("999")))
    assert again == D("273.00") and len(await reqs.rows(PaymentRow, request_id=h.id)) == 1

    assert [n.kind for n in await reqs.notices()].count("reimbursement") == 1
    assert not await reqs.notices("notice_of_action")
    assert await reqs.tasks() == {"ML1-T1": "done", "ML1-T2": "done"}
    told = await eventually(lambda: _told_closed(case))
    # The case hears each change in order; changes quicker than a signal may coalesce.
    order = ["awaiting_decision", "approved", "paying", "paid"]
    states = [t.state for t in told]
    assert states[-1] == "paid" and states == sorted(set(states), key=order.index)
    assert told[-1].kind == "meals_lodging" and told[-1].next_deadline is None
    await case.terminate()
    await replays(reqs, h)


async def replays(reqs: Env, *handles) -> None:
    """The recorded histories replay on the current code: no nondeterminism."""
    replayer = Replayer(workflows=WORKFLOWS, data_converter=reqs.client.data_converter)
    for h in handles:
        await replayer.replay_workflow(await h.fetch_history())


async def _has_task(reqs, task_id, state):
    return (await reqs.tasks()).get(task_id) == state


async def _told_closed(case):
    told = await case.query(StandInCase.summaries)
    return told if told and told[-1].closed else None


async def test_late_request_goes_to_exception_review_and_expires_without_receipts(reqs):
    today = await reqs.today()
    start = today + timedelta(days=2)
    h = await reqs.start_ml(**trip(start))
    s = await status(h)
    assert s.route == "exception_review"
    assert s.decision_due == s.received_at + POLICY.meals_lodging.decision_within
    # Undecided at the due time: the case manager and a supervisor hear of it once; the task stays open.
    await sleep_past(reqs, s.decision_due, extra=timedelta(days=1))
    overdue = await eventually(lambda: reqs.notices("decision_overdue"))
    assert sorted(n.recipient for n in overdue) == ["case_manager", "supervisor"]
    assert (await status(h)).open_tasks[0].id == "ML1-T1"
    # Modify: amounts above the cap are refused with the cap; within it, a Notice of Action goes out.
    msg = await rejected(h, "decide_meals_lodging", SUP, decision="modify", reason="one night only",
                         approved={"meals": "90", "lodging": "150"})
    assert "$60.00" in msg and "2 people x 2 days" in msg
    s = await update(h, "decide_meals_lodging", SUP, decision="modify", reason="meals at the clinic are free",
                     approved={"meals": "0", "lodging": "150", "mileage": "63"})
    assert s.state == "approved" and s.decision.outcome == "modify"
    assert len(await eventually(lambda: reqs.notices("notice_of_action"))) == 1

    final_s = await status(h)
    await sleep_past(reqs, final_s.receipts_due)
    final = await finished(h)
    assert final.state == "expired" and final.payment is None and "no receipts" in final.outcome_note
    reminders = await reqs.notices("receipts_reminder")
    assert len(reminders) == 4  # every 14 days within the 60
    assert not await reqs.rows(PaymentRow, request_id=h.id)


async def test_emergency_requested_after_travel(reqs):
    today = await reqs.today()
    start = today - timedelta(days=1)
    request = trip(start, emergency=True)
    assert meals_lodging_problems(MealsLodgingRequest.model_validate(request), today, POLICY) == {}
    late = MealsLodgingRequest.model_validate(trip(start))
    assert "only an emergency" in meals_lodging_problems(late, today, POLICY)["travel_start"]

    h = await reqs.start_ml(**request)
    assert (await status(h)).route == "exception_review"
    await update(h, "decide_meals_lodging", SUP, decision="approve")
    s = await update(h, "submit_receipts", CLERK, items=[{"category": "mileage", "amount": "63",
                                                           "spent_on": start.isoformat()}])
    assert s.reimbursement.total == D("63.00")  # gas: no receipt needed
    final = await finished(h)
    assert final.state == "paid" and "no receipts for meals, lodging, parking" in final.outcome_note


async def test_denied_request_sends_notice_and_takes_no_receipts(reqs):
    today = await reqs.today()
    h = await reqs.start_ml(**trip(today + timedelta(days=8)))
    msg = await rejected(h, "decide_meals_lodging", CLERK, decision="approve")
    assert "case_manager, supervisor" in msg and "intake_clerk" in msg
    msg = await rejected(h, "decide_meals_lodging", CM, decision="approve", request_id=f"{reqs.case_id}-ml-9")
    assert "not " in msg
    assert (await status(h)).state == "awaiting_decision"  # rejected actions change nothing

    s = await update(h, "decide_meals_lodging", CM, decision="deny", reason="another resource covers the trip")
    assert s.state == "denied" and s.open_tasks == []
    final = await finished(h)
    assert final.state == "denied"
    noa = await reqs.notices("notice_of_action")
    text = await reqs.letter(noa[0])
    assert len(noa) == 1 and "another resource" in text and "right to appeal" in text
    assert noa[0].address == "family@example.org"
    # The request is over: receipts cannot land, and its status says why.
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await update(h, "submit_receipts", CM, items=[{"category": "meals", "amount": "10",
                                                        "spent_on": today.isoformat()}])
    assert (await status(h)).outcome_note.startswith("denied: another resource")
    assert await reqs.tasks() == {"ML1-T1": "done"}


async def test_a_request_letter_names_the_child_in_the_family_language(reqs):
    """The case hands the request the child's name and the family's language: the Notice of
    Action for a denied trip is in Spanish and says whose trip it was."""
    today = await reqs.today()
    h = await reqs.start_ml(family={"child_name": "Lupita Sintetica", "preferred_language": "es"},
                            **trip(today + timedelta(days=8)))
    await update(h, "decide_meals_lodging", CM, decision="deny", reason="otro recurso cubre el viaje")
    await finished(h)
    text = await reqs.letter((await reqs.notices("notice_of_action"))[0])
    assert "Lupita Sintetica" in text and "Aviso de Acción" in text


async def test_partly_receipted_at_the_deadline_pays_what_was_receipted(reqs):
    today = await reqs.today()
    start = today + timedelta(days=6)
    h = await reqs.start_ml(**trip(start))
    await update(h, "decide_meals_lodging", CM, decision="approve")
    await sleep_past(reqs, start_of_day(start + timedelta(days=2), TZ))
    s = await update(h, "submit_receipts", CM, final=False,
                     items=[{"category": "meals", "amount": "45", "spent_on": start.isoformat()}])
    assert s.state == "approved" and len(s.receipts) == 1
    await sleep_past(reqs, s.receipts_due)
    final = await finished(h)
    assert final.state == "expired" and final.payment.amount == D("30.00")  # 2 people x $15 that day
    assert "no receipts for lodging, mileage, parking" in final.outcome_note
    text = await reqs.letter((await reqs.notices("reimbursement"))[0])
    assert "$30.00" in text and "deadline passed" in text
    assert [p.amount for p in await reqs.rows(PaymentRow, request_id=h.id)] == [D("30.00")]


# ---- service authorization requests ---------------------------------------------------


def _next_holiday_weekend_eve(today: date) -> tuple[date, date]:
    """The last working day before the next holiday that joins a weekend, and that holiday."""
    ca = holidays.country_holidays("US", subdiv="CA", years=[today.year, today.year + 1])
    working = lambda d: d.weekday() < 5 and d not in ca  # noqa: E731
    for h in sorted(d for d in ca if d > today and d.weekday() in (0, 4)):  # a Monday or Friday holiday
        eve = h - timedelta(days=1)
        while not working(eve):
            eve -= timedelta(days=1)
        if eve > today:
            return eve, h
    raise AssertionError("no holiday weekend within a year")


def _working_days_after(day: date, n: int, skip) -> date:
    while n:
        day += timedelta(days=1)
        n -= 0 if skip(day) else 1
    return day


async def test_routine_sar_due_after_a_holiday_weekend_and_never_approved_by_default(reqs):
    today = await reqs.today()
    eve, holiday = _next_holiday_weekend_eve(today)
    await sleep_past(reqs, start_of_day(eve, TZ), extra=timedelta(hours=10))
    h = await reqs.start_sar()
    s = await status(h)
    ca = holidays.country_holidays("US", subdiv="CA", years=[eve.year, eve.year + 1])
    last = _working_days_after(eve, 5, lambda d: d.weekday() >= 5 or d in ca)
    naive = _working_days_after(eve, 5, lambda d: d.weekday() >= 5)
    assert s.decision_due == start_of_day(last + timedelta(days=1), TZ)
    assert last > naive  # the holiday pushed the due date out
    assert holiday < last

    await sleep_past(reqs, start_of_day(naive + timedelta(days=1), TZ))
    assert not await reqs.notices("authorization_overdue")
    await sleep_past(reqs, s.decision_due, extra=timedelta(days=3))
    s = await status(h)
    assert s.state == "awaiting_decision" and [t.id for t in s.open_tasks] == ["SAR1-T1"]
    assert len(await reqs.notices("authorization_overdue")) == 1
    assert (await reqs.tasks())["SAR1-T1"] == "open"  # overdue in the work queue

    s = await update(h, "decide_authorization", MC, decision="approve")
    assert s.state == "approved" and s.decision.authorization_number.startswith("SAR-KERN-")
    assert (s.decision.valid_until - s.decision.valid_from).days == POLICY.sar.authorization_valid_for.days
    await finished(h)
    assert (await reqs.tasks())["SAR1-T1"] == "done"
    assert len(await reqs.notices("authorization_approved")) == 1


async def test_expedited_sar_72_hours_with_one_reminder_and_one_escalation(reqs):
    h = await reqs.start_sar(urgency="expedited")
    s = await status(h)
    assert s.decision_due - s.received_at == timedelta(hours=72)
    assert set(s.deadlines) == {"decision_reminder", "decision_escalation", "decision_overdue"}
    await sleep_past(reqs, s.decision_due - POLICY.sar.reminder_before)
    assert len(await eventually(lambda: reqs.notices("authorization_reminder"))) == 1
    assert not await reqs.notices("authorization_escalation")
    await sleep_past(reqs, s.decision_due, extra=timedelta(days=5))
    assert [len(await reqs.notices(k)) for k in ("authorization_reminder", "authorization_escalation",
                                                  "authorization_overdue")] == [1, 1, 1]
    reminder = (await reqs.notices("authorization_reminder"))[0]
    escalation = (await reqs.notices("authorization_escalation"))[0]
    assert (reminder.recipient, reminder.address) == ("case_manager", "cm.rivera")
    assert escalation.recipient == "supervisor"
    s = await update(h, "decide_authorization", SUP, decision="deny", reason="not medically necessary for C1")
    assert s.state == "denied" and s.decision.authorization_number is None
    await finished(h)
    assert len(await reqs.notices("notice_of_action")) == 1
    await replays(reqs, h)


async def test_sar_extension_notice_roles_and_modified_approval(reqs):
    h = await reqs.start_sar()
    s0 = await status(h)
    msg = await rejected(h, "decide_authorization", CLERK, decision="approve")
    assert "case_manager, supervisor, medical_consultant" in msg
    s = await update(h, "extend_authorization", CM, reason="waiting for the pulmonologist's notes")
    assert s.extended and s.decision_due == s0.received_at + timedelta(days=14)
    assert [t.id for t in s.open_tasks] == ["SAR1-T2"] and s.open_tasks[0].due == s.decision_due
    assert "already extended" in await rejected(h, "extend_authorization", CM, reason="more time")
    notice = (await eventually(lambda: reqs.notices("authorization_extended")))[0]
    text = await reqs.letter(notice)
    assert notice.recipient == "family" and "file a complaint" in text
    due = local_today(s.decision_due, TZ)  # the due date in county time
    assert f"We will decide by {due:%B} {due.day}, {due.year}" in text
    assert await reqs.tasks() == {"SAR1-T1": "done", "SAR1-T2": "open"}

    # The old due time passes quietly; reminders follow the new one.
    await sleep_past(reqs, s0.decision_due)
    assert not await reqs.notices("authorization_overdue")
    s = await update(h, "decide_authorization", MC, decision="modify", reason="spirometry covers the need",
                     approved_service="Spirometry only")
    assert s.decision.outcome == "modify" and s.decision.authorization_number
    await finished(h)
    noa = (await reqs.notices("notice_of_action"))[0]
    text = await reqs.letter(noa)
    assert "Spirometry only" in text and s.decision.authorization_number in text


async def test_pended_sar_clock_restarts_when_the_information_arrives(reqs):
    """Routine: 5 working days from receipt of the information needed to decide; expedited: 72 hours
    from receipt, never pended; a deferral runs at most 14 days from receipt (HSC 1367.01, Health Net
    Medi-Cal provider manual, "Authorization and Referral Timelines"; see models/policy.py SarPolicy)."""
    h, idle = await reqs.start_sar(1), await reqs.start_sar(2)
    expedited = await reqs.start_sar(3, urgency="expedited")

    async def notices(kind: str, of) -> list[OutboxRow]:
        return [n for n in await reqs.notices(kind) if n.key.startswith(f"{of.id}/")]

    s0 = await status(h)
    msg = await rejected(expedited, "request_information", MC, information="the surgeon's notes")
    assert "expedited" in msg and "72 hours" in msg
    assert "not waiting for information" in await rejected(h, "record_information", CM)
    assert "case_manager, supervisor, medical_consultant" in await rejected(
        h, "request_information", CLERK, information="the surgeon's notes")

    await reqs.env.sleep(timedelta(days=1))
    s = await update(h, "request_information", MC, information="The pulmonologist's notes from the last visit.")
    limit = s0.received_at + timedelta(days=14)
    assert s.state == "pended" and s.information_requested.startswith("The pulmonologist's notes")
    assert [(t.id, t.kind, t.due) for t in s.open_tasks] == [("SAR1-T2", "authorization_information", limit)]
    assert set(s.deadlines) == {"information_overdue"}
    assert "pended" in await rejected(h, "extend_authorization", CM, reason="more time")
    assert "pended" in await rejected(h, "request_information", MC, information="more notes")
    letter = await reqs.letter((await eventually(lambda: notices("authorization_pended", h)))[0])
    assert "The pulmonologist's notes from the last visit." in letter and "within 5 work days" in letter
    await update(idle, "request_information", CM, information="The surgeon's operative report.")

    # The first due time passes quietly: the clock has not started.
    await sleep_past(reqs, s0.decision_due, extra=timedelta(days=2))
    assert await notices("authorization_overdue", expedited)  # (the 72 hours ran meanwhile)
    for kind in ("authorization_reminder", "authorization_escalation", "authorization_overdue"):
        assert not await notices(kind, h) and not await notices(kind, idle), kind
    assert (await status(h)).state == "pended"

    s = await update(h, "record_information", CLERK, note="notes arrived by fax")
    arrived = local_today(s.information_received_at, TZ)
    ca = holidays.country_holidays("US", subdiv="CA", years=[arrived.year, arrived.year + 1])
    last = _working_days_after(arrived, 5, lambda d: d.weekday() >= 5 or d in ca)
    assert s.state == "awaiting_decision" and s.decision_due == start_of_day(last + timedelta(days=1), TZ)
    assert [(t.id, t.kind) for t in s.open_tasks] == [("SAR1-T3", "authorization_decision")]
    assert set(s.deadlines) == {"decision_reminder", "decision_escalation", "decision_overdue"}
    await eventually(lambda: _has_task(reqs, "SAR1-T3", "open"))
    tasks = await reqs.tasks()
    assert [tasks[t] for t in ("SAR1-T1", "SAR1-T2")] == ["done", "done"]
    await sleep_past(reqs, s.decision_due)
    assert len(await notices("authorization_overdue", h)) == 1  # the restarted clock runs

    # 14 days from receipt: the request still waiting for information is overdue (to a supervisor), once.
    await sleep_past(reqs, limit, extra=timedelta(days=1))
    overdue = await eventually(lambda: notices("authorization_information_overdue", idle))
    assert [n.recipient for n in overdue] == ["supervisor"] and not await notices("authorization_information_overdue", h)
    assert [t.kind for t in (await status(idle)).open_tasks] == ["authorization_information"]
    s = await update(h, "decide_authorization", MC, decision="approve")
    d = await update(idle, "decide_authorization", MC, decision="deny", reason="the operative report never came")
    assert s.state == "approved" and d.state == "denied"
    await update(expedited, "decide_authorization", MC, decision="approve")
    for handle in (h, idle, expedited):
        await finished(handle)
    await replays(reqs, h, idle)


# ---- the case closes -----------------------------------------------------------------


async def test_case_closed_resolves_each_open_request(reqs):
    today = await reqs.today()
    undecided = await reqs.start_ml(1, **trip(today + timedelta(days=9)))
    future = await reqs.start_ml(2, **trip(today + timedelta(days=9)))
    travelled = await reqs.start_ml(3, **trip(today - timedelta(days=1), emergency=True))
    sar = await reqs.start_sar()
    await update(future, "decide_meals_lodging", CM, decision="approve")
    await update(travelled, "decide_meals_lodging", CM, decision="approve")

    await undecided.signal("case_closed")  # without a reason
    for h in (future, travelled, sar):
        await h.signal("case_closed", "aged_out")
    assert (await finished(undecided)).state == "withdrawn"
    cancelled = await finished(future)
    assert cancelled.state == "cancelled" and "aged_out" in cancelled.outcome_note
    assert (await finished(sar)).state == "withdrawn"
    # The trip that already happened is still reimbursed.
    s = await in_state(travelled, "approved")
    assert s.case_closed
    await update(travelled, "submit_receipts", CM,
                 items=[{"category": "lodging", "amount": "120", "spent_on": (today - timedelta(days=1)).isoformat()}])
    assert (await finished(travelled)).payment.amount == D("120.00")

    kinds = [n.kind for n in await reqs.notices()]
    assert kinds.count("request_withdrawn") == 2 and kinds.count("request_cancelled") == 1
    assert kinds.count("case_closed_receipts") == 1
    assert all(v == "done" for v in (await reqs.tasks()).values())
    await replays(reqs, undecided, future, travelled, sar)


# ---- the real dev server -----------------------------------------------------------------


@pytest_asyncio.fixture
async def dev_reqs(dev_env, activities, sessions):
    queue = f"tq-req-{uuid.uuid4().hex[:8]}"
    async with Worker(dev_env.client, task_queue=queue, workflows=WORKFLOWS,
                      activities=[activities.record_steps, PaymentActivities(sessions).pay_reimbursement]):
        yield Env(dev_env, queue, sessions)


async def test_emergency_trip_and_sar_end_to_end_on_the_dev_server(dev_reqs):
    today = await dev_reqs.today()
    ml = await dev_reqs.start_ml(**trip(today - timedelta(days=1), emergency=True))
    sar = await dev_reqs.start_sar()
    await update(ml, "decide_meals_lodging", CM, decision="approve")
    await update(ml, "submit_receipts", CM, items=[{"category": "meals", "amount": "25",
                                                    "spent_on": (today - timedelta(days=1)).isoformat()}])
    await update(sar, "extend_authorization", CM, reason="records from the specialist are pending")
    await update(sar, "decide_authorization", MC, decision="approve")
    assert (await finished(ml)).payment.amount == D("25.00")
    assert (await finished(sar)).decision.authorization_number
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await update(sar, "decide_authorization", MC, decision="approve")
    assert [p.amount for p in await dev_reqs.rows(PaymentRow, request_id=ml.id)] == [D("25.00")]
