"""MealsLodgingWorkflow: one meals-and-lodging request of a case, from request to payment.

A child workflow of the case (ID ``{case_id}-ml-{n}``), so the case's history stays small.
Routing, caps and the reimbursement are rules (rules/reimbursement.py); this module only
orchestrates. ``RequestWorkflow`` holds what the service authorization workflow shares:
tasks, notices, step records, timers, and telling the case about every change.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import FailureError

from workflows.common import NOTICE_KEYS_PER_LIFE, TIMER_DRIVEN, Draft, decode, invalid, record_steps, wait_for_deadline

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from models.request_kinds import REQUEST_ROLES
    from models.case import SYSTEM, Actor, Notice, StepRecord, Task, TaskRef
    from models.requests import (
        CATEGORIES,
        Amounts,
        DecideMealsLodging,
        MealsLodgingDecision,
        MealsLodgingInput,
        MealsLodgingState,
        MealsLodgingStatus,
        Payment,
        PaymentInput,
        RequestSummary,
        SubmitReceipts,
    )
    from rules.ages import local_today, start_of_day
    from letters.catalog import KINDS as LETTERS, letter_language, subject as letter_subject
    from rules.deadlines import due_by, next_target
    from rules.reimbursement import (
        approval_caps,
        local_when,
        approval_problems,
        meals_lodging_decision_due,
        meals_lodging_route,
        receipt_problems,
        receipts_due,
        reimbursement,
    )

PAY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10),
                        non_retryable_error_types=["InvalidPayment"])
MAX_RECEIPTS = 500


class RequestWorkflow:
    """Shared by the request workflows. Subclasses set the class constants and ``self.s``."""

    KIND: str
    PREFIX: str  # of task IDs: "ML" -> ML2-T1
    CLOSED: frozenset[str]
    s: Any  # MealsLodgingState | AuthorizationState

    def _setup(self) -> None:
        self._draft = Draft()
        self._wake = False
        self._told: RequestSummary | None = None
        self._firing_at: datetime | None = None  # the timer target being fired: the clock for its values

    # ---- main loop ------------------------------------------------------------------

    async def _loop(self) -> None:
        timer_driven = workflow.patched(TIMER_DRIVEN)
        while True:
            if timer_driven:
                self._wake = False  # before the awaits: a step taken during them wakes the next pass
            await self._flush()
            if self._closed():
                break
            if await self._work():
                continue
            if timer_driven:
                target = next_target(self.s.deadlines)
                if await wait_for_deadline(lambda: self._wake, target):
                    self._fire_due(until=target)
                continue
            self._wake = False
            wake_at = min(self.s.deadlines.values(), default=None)
            if wake_at is None or wake_at > workflow.now():
                try:
                    await workflow.wait_condition(
                        lambda: self._wake, timeout=None if wake_at is None else wake_at - workflow.now())
                except asyncio.TimeoutError:
                    pass
            self._fire_due()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()

    async def _work(self) -> bool:
        """Work the loop does outside handlers (activities); True if it took a step."""
        return False

    def _closed(self) -> bool:
        return self.s.state in self.CLOSED

    async def _flush(self) -> None:
        """Persist pending steps, then tell the case if its view of this request changed."""
        while True:
            if self.s.pending_steps:
                batch = list(self.s.pending_steps)
                await record_steps(batch, self._status())
                del self.s.pending_steps[: len(batch)]
                continue
            summary = self._summary()
            if summary == self._told:
                return
            self._told = summary
            try:
                await workflow.get_external_workflow_handle(self.s.case_id).signal("request_changed", summary)
            except FailureError as e:  # the case has closed or never existed: the request goes on
                workflow.logger.info("case %s not told about %s: %s", self.s.case_id, self.s.request_id, e)

    def _summary(self) -> RequestSummary:
        s = self.s
        return RequestSummary(request_id=s.request_id, kind=self.KIND, state=s.state, summary=self._describe(),
                              next_deadline=s.next_deadline, closed=self._closed())

    def _describe(self) -> str:
        raise NotImplementedError

    # ---- timers ---------------------------------------------------------------------

    def _fire_due(self, until: datetime | None = None) -> None:
        """Fire the deadlines due by ``until``, a timer's target (runs before the timer-driven
        patch passed none and read the clock); their steps take that target as their time."""
        now = until or workflow.now()
        self._firing_at = until
        try:
            self._fire_each(due_by(self.s.deadlines, now) if until else
                            [k for k, at in sorted(self.s.deadlines.items(), key=lambda kv: kv[1]) if at <= now])
        finally:
            self._firing_at = None

    def _fire_each(self, keys: list[str]) -> None:
        for key, at in [(k, self.s.deadlines[k]) for k in keys]:
            if self._closed():
                return
            if self.s.deadlines.get(key) != at:
                continue  # an earlier timer in this pass moved or removed it
            del self.s.deadlines[key]
            self._begin()
            detail = getattr(self, f"_fire_{key}")() or {}
            self._commit(SYSTEM, f"timer:{key}", {"deadline": at.isoformat(), **detail})

    # ---- actions --------------------------------------------------------------------

    def _decode(self, name: str, raw: RawValue, model: type[BaseModel]) -> Any:
        action = decode(name, raw, model)
        if action.request_id != self.s.request_id:
            raise invalid(f"this is request {self.s.request_id}, not {action.request_id}", request_id="mismatch")
        return action

    def _check_open(self, name: str, actor: Actor, roles: tuple[str, ...]) -> None:
        if actor.role not in roles:
            raise invalid(f"{name} must be taken by one of: {', '.join(roles)} (not {actor.role})",
                          **{"actor.role": "not allowed"})
        if self._closed():
            raise invalid(f"request {self.s.request_id} is closed ({self.s.state}): {self.s.outcome_note}")

    @workflow.signal(name="case_closed")
    def case_closed(self, reason: str | None = None, on: date | None = None) -> None:
        """The case closed (on the date it decided, sent with the signal: the request never
        reads its own clock to decide): resolve the request as the subclass sees fit, once."""
        if self.s.case_closed or self._closed():
            return
        self._begin()
        self.s.case_closed = True
        detail = self._on_case_closed(reason or "case closed", on or self._today())
        self._commit(SYSTEM, "case_closed", {"reason": reason, **detail})

    def _on_case_closed(self, reason: str, on: date) -> dict:
        raise NotImplementedError

    # ---- tasks, notices, steps ------------------------------------------------------

    def _clock(self) -> datetime:
        """Now, for values; while a timer fires, its target (the task's clock may be stale)."""
        return self._firing_at or workflow.now()

    def _today(self):
        return local_today(self._clock(), self.s.policy.timezone)

    def _when(self, at: datetime, time: bool = True) -> str:
        """A due time as people in the county read it."""
        return local_when(at, self.s.policy.timezone, time)

    def _last_day(self, due: datetime) -> str:
        """The last whole day before a due time at midnight."""
        return self._when(due - timedelta(minutes=1), time=False)

    def _worker(self) -> str:
        return self.s.case_manager or f"{self.s.county}:unassigned"

    def _open_task(self, kind: str, title: str, due: datetime, assignee: str | None = None) -> None:
        s = self.s
        s.task_counter += 1
        number = s.request_id.rsplit("-", 1)[1]
        task = Task(id=f"{self.PREFIX}{number}-T{s.task_counter}", kind=kind, title=title,
                    assignee=assignee or self._worker(), due=due, opened_at=self._clock())
        s.open_tasks.append(task)
        self._draft.opened.append(TaskRef(**task.model_dump(exclude={"escalated"})))

    def _close_tasks(self, kind: str | None = None) -> None:
        for task in [t for t in self.s.open_tasks if kind is None or t.kind == kind]:
            self.s.open_tasks.remove(task)
            self._draft.closed.append(task.id)

    def _end(self, state: str, note: str) -> None:
        """Close the request: no task or timer outlives it."""
        self.s.state, self.s.outcome_note = state, note
        self._close_tasks()
        self.s.deadlines.clear()

    def _day(self, at: datetime) -> str:
        """A due time's date in California, for a letter."""
        return local_today(at, self.s.policy.timezone).isoformat()

    def _letter(self, kind: str, to: str, facts: dict) -> dict | None:
        """A family's notice is a letter: its template data (letters.render.LetterData)."""
        if to != "family" or kind not in LETTERS:
            return None
        s = self.s
        return dict(kind=kind, case_id=s.case_id, request_id=s.request_id, child_name=s.child_name,
                    county=s.county, jurisdiction=s.jurisdiction if s.jurisdiction == "state" else "county",
                    preferred_language=s.preferred_language, on=self._today().isoformat(),
                    facts={k: str(v) for k, v in facts.items() if v is not None})

    def _notify(self, kind: str, to: str, subject: str = "", body: str = "", **facts) -> None:
        s = self.s
        letter = self._letter(kind, to, facts)
        if letter is not None:
            subject = letter_subject(kind, letter_language(s.preferred_language))
        address = {"family": s.family_address, "case_manager": self._worker()}.get(to)
        # A request ID repeats in a child's later life of the case (CASE-ml-1 again): the key
        # names the request's own start, so its letters are never taken for the earlier one's.
        life = f"{s.received_at:%Y%m%dT%H%M%S}/" if workflow.patched(NOTICE_KEYS_PER_LIFE) else ""
        key = f"{s.request_id}/{life}{s.seq + 1}/{kind}/{len(self._draft.notices)}"
        self._draft.notices.append(Notice(key=key, kind=kind, to=to, address=address, subject=subject,
                                          body=f"CCS case {s.case_id}, request {s.request_id}\n\n{body}\n",
                                          letter=letter))
        s.notices_sent.append(key)

    def _notice_of_action(self, action: str, reason: str, details: str | None = None) -> None:
        p = self.s.policy.notices
        self._notify("notice_of_action", "family", action=action, reason=reason, details=details,
                     basis=self.KIND, appeal_until=self._day(workflow.now() + p.appeal_window),
                     answer_days=p.appeal_answer_within.days, hearing_days=p.fair_hearing_window.days)

    def _begin(self) -> None:
        self._draft = Draft()

    def _commit(self, actor: Actor, action: str, detail: dict) -> None:
        s, d = self.s, self._draft
        s.seq += 1
        # The due times people must meet (tasks), not reminder timers.
        s.next_deadline = min((t.due for t in s.open_tasks), default=None)
        opened, still_open = {t.id for t in d.opened}, {t.id for t in s.open_tasks}
        s.pending_steps.append(StepRecord(
            case_id=s.case_id, source=s.request_id, seq=s.seq, at=self._clock(), actor_id=actor.id,
            actor_role=actor.role, action=action, stage="closed" if s.case_closed else "active", county=s.county,
            detail={"request_id": s.request_id, "state": s.state, **detail},
            tasks_opened=[t for t in d.opened if t.id in still_open],
            tasks_closed=[i for i in d.closed if i not in opened], notices=d.notices,
        ))
        self._draft = Draft()
        self._wake = True


def _dollars(amounts: Amounts) -> str:
    return ", ".join(f"{c} ${getattr(amounts, c)}" for c in CATEGORIES if getattr(amounts, c) > 0) or "nothing"


@workflow.defn
class MealsLodgingWorkflow(RequestWorkflow):
    KIND = "meals_lodging"
    PREFIX = "ML"
    CLOSED = frozenset({"paid", "denied", "expired", "withdrawn", "cancelled"})

    @workflow.init
    def __init__(self, inp: MealsLodgingInput) -> None:
        self._setup()
        now, req, policy = workflow.now(), inp.request, inp.policy
        route = meals_lodging_route(req, local_today(now, policy.timezone), policy)
        self.s = MealsLodgingState(
            request_id=inp.request_id, case_id=inp.case_id, county=inp.county, case_manager=inp.case_manager,
            family_address=inp.family_address, policy=policy, requested_by=inp.requested_by.id, received_at=now,
            child_name=inp.child_name, preferred_language=inp.preferred_language, jurisdiction=inp.jurisdiction,
            decision_due=meals_lodging_decision_due(req, route, now, policy), state="awaiting_decision",
            route=route, request=req, caps=approval_caps(req, policy),
        )
        s = self.s
        s.deadlines["decision_due"] = s.decision_due
        review = route.replace("_", " ")
        self._open_task("meals_lodging_decision", f"Decide meals and lodging ({review}) for travel on "
                        f"{req.travel_start}, condition {req.condition_id}", s.decision_due)
        self._notify("meals_lodging_received", "family", travel_start=req.travel_start, travel_end=req.travel_end,
                     decide_by=self._day(s.decision_due))
        self._commit(inp.requested_by, "request_meals_lodging",
                     {"route": route, "emergency": req.emergency, "decision_due": s.decision_due.isoformat()})

    @workflow.run
    async def run(self, inp: MealsLodgingInput) -> MealsLodgingStatus:
        await self._loop()
        return self._status()

    @workflow.query
    def status(self) -> MealsLodgingStatus:
        return self._status()

    def _status(self) -> MealsLodgingStatus:
        return MealsLodgingStatus.model_validate(self.s.model_dump(include=set(MealsLodgingStatus.model_fields)))

    def _describe(self) -> str:
        # No travel dates or amounts beyond the state: the case may show this to anyone who sees the case.
        s = self.s
        what = f"meals and lodging for {s.request.condition_id}"
        if s.state == "awaiting_decision":
            return f"{what}: {s.route.replace('_', ' ')}, decision due {self._when(s.decision_due, time=False)}"
        if s.state == "approved":
            decided = "approved" if s.decision.outcome == "approve" else "approved with changes"
            return f"{what}: {decided}, receipts due by {self._last_day(s.receipts_due)}"
        return f"{what}: {s.state}" + (" (reimbursed)" if s.payment else "")

    # ---- decision -------------------------------------------------------------------

    @workflow.update(name="decide_meals_lodging")
    def decide(self, raw: RawValue) -> MealsLodgingStatus:
        a = self._decode("decide_meals_lodging", raw, DecideMealsLodging)
        self._begin()
        detail = self._do_decide(a)
        self._commit(a.actor, "decide_meals_lodging", detail)
        return self._status()

    @decide.validator
    def _check_decide(self, raw: RawValue) -> None:
        a = self._decode("decide_meals_lodging", raw, DecideMealsLodging)
        self._check_open("decide_meals_lodging", a.actor, REQUEST_ROLES["decide_meals_lodging"])
        s = self.s
        if s.state != "awaiting_decision":
            raise invalid(f"request {s.request_id} was already decided ({s.decision.outcome})")
        if a.decision == "approve":
            over = approval_problems(s.request.estimated, s.request, s.policy, field="estimated")
            if over:
                raise invalid("the estimate is above policy caps, so it cannot be approved as asked; use modify "
                              "with amounts within the caps: " + "; ".join(f"{k}: {v}" for k, v in over.items()), **over)
        elif a.decision == "modify":
            over = approval_problems(a.approved, s.request, s.policy)
            if over:
                raise invalid("approved amounts above policy caps: " + "; ".join(f"{k}: {v}" for k, v in over.items()),
                              **over)

    def _do_decide(self, a: DecideMealsLodging) -> dict:
        s, req, p = self.s, self.s.request, self.s.policy.meals_lodging
        approved = {"approve": req.estimated, "modify": a.approved, "deny": None}[a.decision]
        s.decision = MealsLodgingDecision(outcome=a.decision, by=a.actor.id, role=a.actor.role, at=workflow.now(),
                                          reason=a.reason, approved=approved)
        self._close_tasks("meals_lodging_decision")
        s.deadlines.pop("decision_due", None)
        trip = f"meals and lodging for travel from {req.travel_start} to {req.travel_end}"
        if a.decision == "deny":
            self._end("denied", f"denied: {a.reason}")
            self._notice_of_action("deny_travel", a.reason, f"The request was for {trip}.")
            return {"decision": "deny"}
        s.state = "approved"
        s.receipts_due = receipts_due(req, s.policy)
        s.deadlines["receipts_due"] = s.receipts_due
        first_reminder = start_of_day(req.travel_end, s.policy.timezone) + timedelta(days=1) + p.receipts_reminder_every
        if first_reminder < s.receipts_due:
            s.deadlines["receipts_reminder"] = first_reminder
        self._open_task("meals_lodging_receipts", f"Receive the family's receipts for travel on {req.travel_start} "
                        "and reimburse", s.receipts_due)
        receipts = (f"Send your receipts (none are needed for gas) by {self._last_day(s.receipts_due)}; "
                    "amounts beyond this approval need a new prior approval.")
        if a.decision == "modify":
            self._notice_of_action("change_travel", a.reason, f"Approved: {_dollars(approved)} (you asked for "
                                   f"{_dollars(req.estimated)}). {receipts}")
        else:
            self._notify("meals_lodging_approved", "family", travel_start=req.travel_start, travel_end=req.travel_end,
                         amount=_dollars(approved), receipts_by=self._day(s.receipts_due - timedelta(minutes=1)))
        return {"decision": a.decision, "approved": approved.model_dump(mode="json"),
                "receipts_due": s.receipts_due.isoformat()}

    # ---- receipts and payment -------------------------------------------------------

    @workflow.update(name="submit_receipts")
    def submit_receipts(self, raw: RawValue) -> MealsLodgingStatus:
        a = self._decode("submit_receipts", raw, SubmitReceipts)
        self._begin()
        self.s.receipts.extend(a.items)
        if a.final:
            self._settle(expiring=False)
        self._commit(a.actor, "submit_receipts", {"items": len(a.items), "final": a.final,
                                                  "claimed": str(sum(i.amount for i in a.items))})
        return self._status()

    @submit_receipts.validator
    def _check_submit_receipts(self, raw: RawValue) -> None:
        a = self._decode("submit_receipts", raw, SubmitReceipts)
        s = self.s
        if s.state == "denied":
            raise invalid(f"request {s.request_id} was denied: there is nothing to reimburse, so receipts are not "
                          "accepted (a new request, or an appeal of the Notice of Action, is the way forward)")
        self._check_open("submit_receipts", a.actor, REQUEST_ROLES["submit_receipts"])
        if s.state == "awaiting_decision":
            raise invalid(f"request {s.request_id} is not approved yet: receipts are accepted after approval")
        if s.state == "paying":
            raise invalid(f"request {s.request_id} is being reimbursed: the claim is complete")
        if len(s.receipts) + len(a.items) > MAX_RECEIPTS:
            raise invalid(f"a request takes at most {MAX_RECEIPTS} receipts")
        problems = receipt_problems(a.items, s.request, self._today())
        if problems:
            raise invalid("receipts: " + "; ".join(f"{k}: {v}" for k, v in problems.items()), **problems)

    def _settle(self, expiring: bool) -> None:
        """The claim is complete (or its time is up): compute what to pay; the loop pays it."""
        s = self.s
        s.reimbursement = reimbursement(s.decision.approved, s.receipts, s.policy, people=len(s.request.travellers))
        s.expiring = expiring
        self._close_tasks("meals_lodging_receipts")
        for key in ("receipts_due", "receipts_reminder"):
            s.deadlines.pop(key, None)
        if s.reimbursement.total > 0:
            s.state = "paying"
        else:
            self._end("expired" if expiring else "paid", "nothing payable: " + self._payable_note())
            self._notify("reimbursement", "family", travel_start=s.request.travel_start,
                         travel_end=s.request.travel_end, amount="$0.00", note=self._payable_note())

    def _payable_note(self) -> str:
        r = self.s.reimbursement
        parts = []
        if r.unreceipted:
            parts.append("no receipts for " + ", ".join(r.unreceipted))
        if r.not_payable.total() > 0:
            parts.append(f"${r.not_payable.total()} above the approval or daily caps")
        return "; ".join(parts) or "paid in full"

    async def _work(self) -> bool:
        s = self.s
        if s.state != "paying":
            return False
        amount = await workflow.execute_activity(
            "pay_reimbursement", PaymentInput(request_id=s.request_id, case_id=s.case_id, amount=s.reimbursement.total),
            result_type=Decimal, start_to_close_timeout=timedelta(seconds=30), retry_policy=PAY_RETRY,
            summary="pay reimbursement")
        self._begin()
        s.payment = Payment(amount=amount, paid_at=workflow.now())
        late = f"the receipts deadline passed; reimbursed what was receipted; {self._payable_note()}"
        self._end("expired" if s.expiring else "paid",
                  f"reimbursed ${amount}: " + (late if s.expiring else self._payable_note()))
        self._notify("reimbursement", "family", travel_start=s.request.travel_start, travel_end=s.request.travel_end,
                     amount=f"${amount}", note=late if s.expiring else self._payable_note())
        self._commit(SYSTEM, "reimbursement_paid", {"amount": str(amount)})
        return True

    # ---- timers ---------------------------------------------------------------------

    def _fire_decision_due(self) -> None:
        s = self.s
        text = (f"The meals and lodging decision on request {s.request_id} ({s.route.replace('_', ' ')}) was due "
                f"{self._when(s.decision_due)}; travel begins {s.request.travel_start}.")
        self._notify("decision_overdue", "case_manager", "Overdue: meals and lodging decision", text)
        self._notify("decision_overdue", "supervisor", f"Overdue: meals and lodging decision on {s.case_id}", text)

    def _fire_receipts_reminder(self) -> dict:
        s = self.s
        n = sum("/receipts_reminder/" in k for k in s.notices_sent) + 1
        self._notify("receipts_reminder", "family", travel_start=s.request.travel_start,
                     travel_end=s.request.travel_end, receipts_by=self._day(s.receipts_due - timedelta(minutes=1)))
        nxt = self._clock() + s.policy.meals_lodging.receipts_reminder_every
        if nxt < s.receipts_due:
            s.deadlines["receipts_reminder"] = nxt
        return {"reminder": n}

    def _fire_receipts_due(self) -> dict:
        s = self.s
        if s.receipts:
            self._settle(expiring=True)
            return {"receipts": len(s.receipts)}
        self._end("expired", f"no receipts by {self._last_day(s.receipts_due)}: nothing reimbursed")
        self._notify("receipts_expired", "family", travel_start=s.request.travel_start,
                     travel_end=s.request.travel_end)
        return {"receipts": 0}

    # ---- the case closed ------------------------------------------------------------

    def _on_case_closed(self, reason: str, on: date) -> dict:
        s, req = self.s, self.s.request
        trip = f"meals and lodging for travel from {req.travel_start} to {req.travel_end}"
        if s.state == "awaiting_decision":
            self._end("withdrawn", f"withdrawn undecided: the case closed ({reason})")
            self._notify("request_withdrawn", "family", service=trip)
        elif s.state == "approved" and req.travel_start > on:
            self._end("cancelled", f"cancelled before travel: the case closed ({reason})")
            self._notify("request_cancelled", "family", travel_start=req.travel_start, travel_end=req.travel_end)
        elif s.state == "approved":
            # The trip began while the child was eligible: it is still reimbursed.
            self._notify("case_closed_receipts", "family", travel_start=req.travel_start, travel_end=req.travel_end,
                         receipts_by=self._day(s.receipts_due - timedelta(minutes=1)))
        return {"resolution": s.state}
