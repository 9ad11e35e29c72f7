"""The case actions: each one's check (optional: raises, changes nothing) and effect (the step;
returns its audit detail), declared with ``@CASE.check`` and ``@CASE.action``; their payloads,
stages and roles are declared in models/actions.py.

A mixin of ChildCaseWorkflow (workflows/case/workflow.py).
"""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import workflow

from workflows.common import invalid, invalid_fields, patched
from workflows.handlers import CASE

with workflow.unsafe.imports_passed_through():
    from models.case import (
        Appeal,
        CaseNote,
        CaseState,
        Denial,
        Determination,
    )
    from models.counties import find_county
    from rules.ages import birthday
    from rules.eligibility import residential_financial
    from rules.referral import referral_problems


class CaseActions:
    """Each case action's check (optional) and effect, declared with @CASE."""

    s: CaseState

    def _dated(self, action, field: str) -> date:
        return getattr(action, field) or self._today()

    def _check_date(self, field: str, day: date | None, earliest: date | None = None) -> None:
        day = day or self._today()
        if day > self._today():
            raise invalid(f"{field} is in the future", **{field: "in the future"})
        if earliest and day < earliest:
            raise invalid(f"{field} is before {earliest.isoformat()}", **{field: "too early"})

    @CASE.check("refer")
    def _check_refer(self, a) -> None:
        if self._invalid:
            raise invalid_fields("invalid referral", self._invalid)
        if a.referral_id in self.s.referral_ids:
            return
        problems = referral_problems(a.referral, self._today(), self.s.policy)
        if problems:
            raise invalid_fields("invalid referral", problems)
        if a.referral.child.date_of_birth != self.s.child.date_of_birth:
            raise invalid("this referral is for a different child (date of birth differs)")

    def _do_refer(self, a) -> dict:
        if a.referral_id in self.s.referral_ids:
            if a.referral_id == self._opening_referral:
                self._opening_referral = None
                return {"conditions_added": [c.id for c in self.s.conditions]}
            return {"duplicate_referral": True}
        self.s.referral_ids.append(a.referral_id)
        if a.referral.child.cin and not self.s.child.cin:  # the CIN arrived after the case opened
            self.s.child = self.s.child.model_copy(update={"cin": a.referral.child.cin})
        added = self._add_conditions(a.referral, self._today())
        if not added:  # every condition is already on the case: the same referral sent again
            return {"duplicate_referral": True}
        if self.s.stage in ("active", "medical_review"):
            for cond in added:
                self._open_review_task(cond)
        return {"conditions_added": [c.id for c in added]}

    @CASE.check("record_application")
    def _check_record_application(self, a) -> None:
        self._check_date("received_on", a.received_on, self.s.referral_date)

    @CASE.action("record_application")
    def _do_record_application(self, a) -> dict:
        s, p = self.s, self.s.policy.intake
        received = self._dated(a, "received_on")
        on_time = received <= s.referral_date + timedelta(days=p.application_date_grace.days)
        s.application_date = s.referral_date if on_time else received
        if s.records_attached:  # a provider's referral that carried its records skips the records stage
            s.records_received_on = s.referral_date
            self._move("eligibility")
        else:
            self._move("records")
        return {"application_date": s.application_date.isoformat(), "within_grace": on_time}

    @CASE.check("record_records")
    def _check_record_records(self, a) -> None:
        self._check_date("received_on", a.received_on, self.s.referral_date)

    @CASE.action("record_records")
    def _do_record_records(self, a) -> dict:
        self.s.records_received_on = self._dated(a, "received_on")
        self._move("eligibility")
        return {}

    @CASE.action("record_eligibility")
    def _do_record_eligibility(self, a) -> dict:
        s = self.s
        s.finances = a.finances
        s.eligibility = residential_financial(a.finances, s.policy.eligibility)
        if s.eligibility.eligible:
            self._move("medical_review")
        else:
            s.denial = Denial(from_stage="eligibility", reason=s.eligibility.basis)
            self._move("denied")
        return {"eligible": s.eligibility.eligible, "basis": s.eligibility.basis}

    @CASE.check("record_medical_determination")
    def _check_record_medical_determination(self, a) -> None:
        cond = next((c for c in self.s.conditions if c.id == a.condition_id), None)
        if cond is None:
            raise invalid(f"no condition {a.condition_id} on this case; conditions: "
                          + ", ".join(c.id for c in self.s.conditions), condition_id="unknown")
        if cond.status != "pending":
            raise invalid(f"condition {a.condition_id} was already determined ({cond.status})")
        needed = "medical_consultant" if self.s.jurisdiction == "county" else "state_reviewer"
        if a.actor.role != needed:
            where = "the county medical consultant" if needed == "medical_consultant" else "the State CCS office"
            raise invalid(f"in {self.s.county} County the medical determination is made by {where} ({needed})")

    @CASE.action("record_medical_determination")
    def _do_record_medical_determination(self, a) -> dict:
        cond = next(c for c in self.s.conditions if c.id == a.condition_id)
        cond.status = "eligible" if a.eligible else "not_eligible"
        cond.determination = Determination(
            eligible=a.eligible, decided_by=self.s.jurisdiction, decided_by_actor=a.actor.id,
            decided_on=self._today(), reason=a.reason,
        )
        for task in list(self.s.tasks.values()):
            if task.kind == f"medical_review:{cond.id}":
                self._close_task(task.id)
        if self.s.stage == "medical_review":
            self._after_determinations()
        elif not a.eligible:
            cond.appeal_until = workflow.now() + self.s.policy.notices.appeal_window  # its own appeal
            self._notify("notice_of_action", "family", action="deny_condition", basis="condition",
                         reason=a.reason or "The health problem is not one that CCS covers.",
                         appeal_until=self._day(cond.appeal_until), **self._appeal_terms())
        return {"condition_id": cond.id, "eligible": a.eligible, "decided_by": self.s.jurisdiction}

    @CASE.check("file_appeal")
    def _check_file_appeal(self, a) -> None:
        if workflow.now() > self.s.denial.appeal_until:
            raise invalid("the appeal window has ended")
        self._check_date("filed_on", a.filed_on, self.s.denial.noa_sent_on)

    @CASE.action("file_appeal")
    def _do_file_appeal(self, a) -> dict:
        self.s.appeal = Appeal(filed_on=self._dated(a, "filed_on"), grounds=a.grounds,
                               answer_due=workflow.now() + self.s.policy.notices.appeal_answer_within)
        self._move("appeal")
        return {}

    @CASE.check("decide_appeal")
    def _check_decide_appeal(self, a) -> None:
        if self.s.appeal.outcome is not None:
            raise invalid(f"the appeal was already decided ({self.s.appeal.outcome}); "
                          "record the fair hearing with request_fair_hearing / record_fair_hearing_decision")
        needed = "state_reviewer" if self.s.state_decides else "supervisor"
        if a.actor.role != needed:
            who = "the State CCS regional office" if self.s.state_decides else "a county supervisor"
            raise invalid(f"in {self.s.county} County the appeal is answered by {who} ({needed})",
                          **{"actor.role": "not allowed"})

    @CASE.action("decide_appeal")
    def _do_decide_appeal(self, a) -> dict:
        s = self.s
        s.appeal.outcome, s.appeal.decided_on = a.outcome, self._today()
        self._close_tasks("appeal_answer")
        self._notify("appeal_decision", "family", outcome=a.outcome,
                     hearing_until=self._day(workflow.now() + s.policy.notices.fair_hearing_window))
        if a.outcome == "overturned":
            self._resume_after_appeal()
        else:
            s.appeal.hearing_until = workflow.now() + s.policy.notices.fair_hearing_window
            s.deadlines["fair_hearing_window"] = s.appeal.hearing_until
        return {"outcome": a.outcome}

    @CASE.check("request_fair_hearing")
    def _check_request_fair_hearing(self, a) -> None:
        ap = self.s.appeal
        if ap.outcome != "upheld" or ap.hearing_requested_on is not None:
            raise invalid("a fair hearing can be requested once, after the appeal is upheld")
        self._check_date("requested_on", a.requested_on, ap.decided_on)

    @CASE.action("request_fair_hearing")
    def _do_request_fair_hearing(self, a) -> dict:
        self.s.appeal.hearing_requested_on = self._dated(a, "requested_on")
        self.s.deadlines.pop("fair_hearing_window", None)
        self._open_task("fair_hearing", "Record the State fair hearing decision", self._worker(),
                        workflow.now() + timedelta(days=90))
        return {}

    @CASE.check("record_fair_hearing_decision")
    def _check_record_fair_hearing_decision(self, a) -> None:
        if self.s.appeal.hearing_requested_on is None:
            raise invalid("no fair hearing was requested on this case (request_fair_hearing)")

    @CASE.action("record_fair_hearing_decision")
    def _do_record_fair_hearing_decision(self, a) -> dict:
        if a.outcome == "overturned":
            self._resume_after_appeal()
        else:
            self._close("not_eligible", a.actor, "fair hearing upheld the denial")
        return {"outcome": a.outcome}

    @CASE.action("assign_case_manager")
    def _do_assign_case_manager(self, a) -> dict:
        s = self.s
        previous, s.case_manager = s.case_manager, a.case_manager
        self._close_tasks("assign_case_manager")
        for task in list(s.tasks.values()):
            if task.assignee in (previous, f"{s.county}:unassigned"):
                self._reassign(task, a.case_manager)
        return {"case_manager": a.case_manager, "previous": previous}

    @CASE.action("record_renewal")
    def _do_record_renewal(self, a) -> dict:
        s = self.s
        s.finances = a.finances
        s.eligibility = residential_financial(a.finances, s.policy.eligibility)
        self._close_tasks("renewal")
        if not s.eligibility.eligible:
            s.denial = Denial(from_stage="renewal", reason=s.eligibility.basis)
            self._move("denied")
        else:
            s.renewal_due = birthday(s.renewal_due, s.policy.active.renewal_every_years)
            self._schedule_renewal()
            # 22 CCR 41610(a): the fee is redetermined yearly; an unpaid one keeps its clock.
            settled = s.enrollment_fee is None or s.enrollment_fee.paid_on is not None or (
                s.enrollment_fee.amount + s.enrollment_fee.assessment_fee == 0)
            if settled and patched("enrollment-fee-renewal"):
                s.enrollment_fee = None
                self._assess_enrollment_fee(self._today())
        return {"eligible": s.eligibility.eligible, "renewal_due": s.renewal_due.isoformat()}

    @CASE.check("transfer_county")
    def _check_transfer_county(self, a) -> None:
        county = find_county(a.county, self.s.policy.counties)
        if county is None:
            raise invalid(f"unknown California county {a.county!r}", county="unknown")
        if county.name == self.s.county:
            raise invalid(f"the case is already in {county.name} County", county="unchanged")

    @CASE.action("transfer_county")
    def _do_transfer_county(self, a) -> dict:
        s = self.s
        county = find_county(a.county, s.policy.counties)
        old = s.county
        s.county, s.wcm_plan = county.name, county.wcm_plan
        s.jurisdiction = self._jurisdiction(county)
        s.state_decides = s.jurisdiction == "state" and patched("state-decides-appeals-sars")
        s.child = s.child.model_copy(update={"county": county.name})
        s.case_manager = None
        for task in list(s.tasks.values()):
            self._reassign(task, self._review_queue() if task.kind.startswith("medical_review:") else self._worker())
        self._open_task("assign_case_manager", "Assign a case manager after transfer", "supervisor",
                        workflow.now() + s.policy.active.assign_case_manager_within)
        self._notify("transfer", "family", from_county=old)
        return {"from": old, "to": county.name, "jurisdiction": s.jurisdiction}

    @CASE.check("record_fee_payment")
    def _check_record_fee_payment(self, a) -> None:
        fee = self.s.enrollment_fee
        if fee is None or fee.paid_on is not None or fee.amount + fee.assessment_fee == 0:
            raise invalid("no enrollment fee is owed on this case")
        self._check_date("paid_on", a.paid_on)

    @CASE.action("record_fee_payment")
    def _do_record_fee_payment(self, a) -> dict:
        self.s.enrollment_fee.paid_on = self._dated(a, "paid_on")
        self.s.deadlines.pop("enrollment_fee", None)
        return {"amount": str(a.amount)}

    @CASE.check("complete_task")
    def _check_complete_task(self, a) -> None:
        task = self.s.tasks.get(a.task_id)
        if task is None:
            raise invalid(f"no open task {a.task_id}; open tasks: " + (", ".join(self.s.tasks) or "none"))
        if not task.kind.startswith(MANUAL_TASKS):
            raise invalid(f"task {a.task_id} ({task.kind}) closes by itself when its action is taken")

    @CASE.action("complete_task")
    def _do_complete_task(self, a) -> dict:
        kind = self.s.tasks[a.task_id].kind
        self._close_task(a.task_id)
        return {"task_id": a.task_id, "kind": kind}

    @CASE.action("close_case")
    def _do_close_case(self, a) -> dict:
        self._close(a.reason, a.actor, a.note)
        return {"reason": a.reason}

    @CASE.action("add_note")
    def _do_add_note(self, a) -> dict:
        # The text stays in the encrypted state: the audit row says only who, when and what kind.
        self.s.notes.append(CaseNote(at=workflow.now(), by=a.actor.id, role=a.actor.role, contact=a.contact, text=a.note))
        return {"contact": a.contact}


# Tasks with no action of their own: a person marks them done with complete_task.
MANUAL_TASKS = ("transition:", "assign_case_manager")
