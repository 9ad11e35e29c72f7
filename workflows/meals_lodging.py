"""MealsLodgingWorkflow: one meals-and-lodging request of a case, from request to payment.

A child workflow of the case (ID ``{case_id}-ml-{n}``), so the case's history stays small.
Routing, caps and the reimbursement are rules (rules/reimbursement.py); this module only
orchestrates; what every request shares is ``RequestWorkflow`` (workflows/requests.py).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy

from workflows.common import invalid, invalid_fields
from workflows.handlers import HandlerTable
from workflows.requests import RequestWorkflow

with workflow.unsafe.imports_passed_through():
    from models.case import SYSTEM
    from models.request_kinds import MEALS_LODGING
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
        SubmitReceipts,
    )
    from rules.ages import local_today, start_of_day
    from rules.reimbursement import (
        approval_caps,
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


def _dollars(amounts: Amounts) -> str:
    return ", ".join(f"{c} ${getattr(amounts, c)}" for c in CATEGORIES if getattr(amounts, c) > 0) or "nothing"


CLOCKS = HandlerTable("MealsLodgingWorkflow")  # its clocks


@workflow.defn
class MealsLodgingWorkflow(RequestWorkflow):
    HANDLERS = CLOCKS
    SPEC = MEALS_LODGING
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
                        f"{req.travel_start}, condition {req.condition_id}", self._worker(), s.decision_due)
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
        self._check_open("decide_meals_lodging", a.actor)
        s = self.s
        if s.state != "awaiting_decision":
            raise invalid(f"request {s.request_id} was already decided ({s.decision.outcome})")
        if a.decision == "approve":
            over = approval_problems(s.request.estimated, s.request, s.policy, field="estimated")
            if over:
                raise invalid_fields("the estimate is above policy caps, so it cannot be approved as asked; use "
                                     "modify with amounts within the caps", over)
        elif a.decision == "modify":
            over = approval_problems(a.approved, s.request, s.policy)
            if over:
                raise invalid_fields("approved amounts above policy caps", over)

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
                        "and reimburse", self._worker(), s.receipts_due)
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
        self._check_open("submit_receipts", a.actor)
        if s.state == "awaiting_decision":
            raise invalid(f"request {s.request_id} is not approved yet: receipts are accepted after approval")
        if s.state == "paying":
            raise invalid(f"request {s.request_id} is being reimbursed: the claim is complete")
        if len(s.receipts) + len(a.items) > MAX_RECEIPTS:
            raise invalid(f"a request takes at most {MAX_RECEIPTS} receipts")
        problems = receipt_problems(a.items, s.request, self._today())
        if problems:
            raise invalid_fields("receipts", problems)

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

    @CLOCKS.clock("decision_due")
    def _fire_decision_due(self, _: str) -> None:
        s = self.s
        due = dict(route=s.route, decision_due=self._when(s.decision_due), travel_start=s.request.travel_start)
        self._notify("decision_overdue", "case_manager", **due)
        self._notify("decision_overdue", "supervisor", **due)

    @CLOCKS.clock("receipts_reminder")
    def _fire_receipts_reminder(self, _: str) -> dict:
        s = self.s
        n = sum("/receipts_reminder/" in k for k in s.notices_sent) + 1
        self._notify("receipts_reminder", "family", travel_start=s.request.travel_start,
                     travel_end=s.request.travel_end, receipts_by=self._day(s.receipts_due - timedelta(minutes=1)))
        nxt = self._clock() + s.policy.meals_lodging.receipts_reminder_every
        if nxt < s.receipts_due:
            s.deadlines["receipts_reminder"] = nxt
        return {"reminder": n}

    @CLOCKS.clock("receipts_due")
    def _fire_receipts_due(self, _: str) -> dict:
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
