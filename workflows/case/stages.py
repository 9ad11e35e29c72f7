"""The stage machine: ``_move`` ends what belonged to the stage left (its tasks, and every
deadline whose clock is not lasting) and runs the entry of the stage entered (``@CASE.entry``).

A mixin of ChildCaseWorkflow (workflows/case/workflow.py).
"""

from __future__ import annotations

from datetime import date

from temporalio import workflow

from workflows.common import patched
from workflows.handlers import CASE

with workflow.unsafe.imports_passed_through():
    from models.case import (
        Actor,
        CaseState,
        Closure,
        Denial,
        EnrollmentFee,
        Stage,
        StageChange,
    )
    from rules.ages import birthday, start_of_day
    from rules.fees import assess_fees


class CaseStages:
    """The stage machine: what entering each stage does, and what leaving it ends."""

    s: CaseState

    def _move(self, stage: Stage) -> None:
        now = self._clock()
        for key in [k for k in self.s.deadlines if not CASE.outlives_stage_change(k)]:
            del self.s.deadlines[key]
        for task in list(self.s.tasks.values()):
            if task.kind in STAGE_TASKS.get(self.s.stage, ()):
                self._close_task(task.id)
        self.s.stage = stage
        self.s.stage_since = now
        self.s.stage_history.append(StageChange(stage=stage, at=now))
        CASE.entries[stage](self)

    @CASE.entry("intake")
    def _enter_intake(self) -> None:
        p = self.s.policy.intake
        self._notify("application_packet", "family")
        due = self._referral_at() + p.second_notice_after
        self.s.deadlines["second_notice"] = due
        self._open_task("application", "Receive the signed application from the family", self._intake_queue(), due)

    @CASE.entry("records")
    def _enter_records(self) -> None:
        p = self.s.policy.records
        now = workflow.now()
        self._notify("records_request", "referrer")
        self.s.deadlines["records_reminder"] = now + p.reminder_every
        self.s.deadlines["records_escalation"] = now + p.escalate_after
        self._open_task("records", "Obtain medical records from the referring provider",
                        self._worker(), now + p.escalate_after)

    @CASE.entry("eligibility")
    def _enter_eligibility(self) -> None:
        p = self.s.policy.eligibility
        now = workflow.now()
        self._notify("documents_request", "family", due_on=self._day(now + p.family_response_within))
        self._open_task("residential_financial", "Decide residential and financial eligibility",
                        self._worker(), now + p.family_response_within)

    @CASE.entry("medical_review")
    def _enter_medical_review(self) -> None:
        for cond in self.s.conditions:
            if cond.status == "pending":
                self._open_review_task(cond)

    @CASE.entry("denied")
    def _enter_denied(self) -> None:
        d = self.s.denial
        p = self.s.policy.notices
        d.noa_sent_on = self._today()
        d.appeal_until = workflow.now() + p.appeal_window
        self._notify("notice_of_action", "family", action="deny_case", reason=d.reason, basis=d.from_stage,
                     appeal_until=self._day(d.appeal_until), **self._appeal_terms())
        self.s.deadlines["appeal_window"] = d.appeal_until

    @CASE.entry("appeal")
    def _enter_appeal(self) -> None:
        who = "state:ccs_regional_office" if self.s.state_decides else "supervisor"
        self._open_task("appeal_answer", "Answer the appeal", who, self.s.appeal.answer_due)

    @CASE.entry("active")
    def _enter_active(self) -> None:
        s, p = self.s, self.s.policy.active
        today = self._today()
        if s.renewal_due is None or s.renewal_due <= today:
            s.renewal_due = birthday(today, p.renewal_every_years)
        self._schedule_renewal()
        if s.finances and s.enrollment_fee is None:
            self._assess_enrollment_fee(today)
        if not s.case_manager:
            self._open_task("assign_case_manager", "Assign a case manager", "supervisor",
                            workflow.now() + p.assign_case_manager_within)
        self._schedule_milestones()
        self._notify("case_open", "family")

    def _assess_enrollment_fee(self, today: date) -> None:
        """The year's fee by rule (HSC 123900); before the rule, the amount the case manager typed."""
        s = self.s
        if patched("enrollment-fee-rule"):
            fees = assess_fees(s.finances, s.policy.in_force(today).fees)  # the fees in force that day
            s.enrollment_fee = EnrollmentFee(amount=fees.enrollment_fee, assessment_fee=fees.assessment_fee,
                                             due_on=today, basis=fees.basis)
        elif s.finances.enrollment_fee:
            s.enrollment_fee = EnrollmentFee(amount=s.finances.enrollment_fee, due_on=today)
        if s.enrollment_fee is not None and s.enrollment_fee.amount + s.enrollment_fee.assessment_fee > 0:
            s.deadlines["enrollment_fee"] = start_of_day(today, s.policy.timezone) + s.policy.active.enrollment_fee_grace

    @CASE.entry("closed")
    def _enter_closed(self) -> None:
        s = self.s
        for task in list(s.tasks.values()):
            self._close_task(task.id)
        s.deadlines.clear()
        self._notify("case_closed", "family", closure=s.closure.reason, merged_into=s.closure.merged_into)

    def _close(self, reason: str, by: Actor, note: str | None = None) -> None:
        self.s.closure = Closure(reason=reason, on=self._today(), by=by.id, note=note)
        self._move("closed")

    def _after_determinations(self) -> None:
        """Medical review ends when no condition is pending."""
        conds = self.s.conditions
        if any(c.status == "pending" for c in conds):
            return
        if any(c.status == "eligible" for c in conds):
            self._move("active")
        else:
            self.s.denial = Denial(from_stage="medical_review", reason="no CCS-eligible medical condition")
            self._move("denied")

    def _resume_after_appeal(self) -> None:
        origin = self.s.denial.from_stage
        self.s.denial = None
        if origin == "eligibility":
            self._move("medical_review")
        elif origin == "medical_review":
            for c in self.s.conditions:
                if c.status == "not_eligible":
                    c.status = "eligible"
            self._move("active")
        else:  # a renewal denial overturned: the next renewal is a year from now
            self.s.renewal_due = None
            self._move("active")


# Tasks that belong to a stage and close when the case leaves it.
STAGE_TASKS: dict[str, tuple[str, ...]] = {
    "intake": ("application",),
    "records": ("records",),
    "eligibility": ("residential_financial",),
    "appeal": ("appeal_answer", "fair_hearing"),
}
