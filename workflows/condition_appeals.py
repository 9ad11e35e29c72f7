"""A condition denied on an active case is appealed on its own, on the case-level clocks:
filed within the appeal window of its Notice of Action, answered by a supervisor within the
answer period (a task, escalated like any other), and, when upheld, a State fair hearing
may be asked for within its window (22 CCR 42160, 42180; models/policy.py NoticePolicy).

A mixin of ChildCaseWorkflow (it uses the case's ``s``, ``_notify``, ``_open_task``...). Its
actions are new updates: a case that never receives them issues the same commands as before.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.handlers import CASE

with workflow.unsafe.imports_passed_through():
    from models.case import Condition, ConditionAppeal
    from rules.ages import local_today

from workflows.common import invalid


class ConditionAppeals:
    def _appealed_condition(self, condition_id: str) -> Condition:
        cond = next((c for c in self.s.conditions if c.id == condition_id), None)
        if cond is None:
            raise invalid(f"no condition {condition_id} on this case; conditions: "
                          + ", ".join(c.id for c in self.s.conditions), condition_id="unknown")
        return cond

    @CASE.check("file_condition_appeal")
    def _check_file_condition_appeal(self, a) -> None:
        cond = self._appealed_condition(a.condition_id)
        if cond.status != "not_eligible" or cond.appeal_until is None:
            raise invalid(f"condition {cond.id} has no denial of its own to appeal ({cond.status}); "
                          "a denial of the whole case is appealed with file_appeal", condition_id="not denied")
        if cond.appeal is not None:
            raise invalid(f"condition {cond.id} was already appealed on {cond.appeal.filed_on}")
        if workflow.now() > cond.appeal_until:
            raise invalid(f"the appeal window for condition {cond.id} ended on "
                          f"{self._day(cond.appeal_until)}")
        self._check_date("filed_on", a.filed_on, cond.determination.decided_on)

    @CASE.action("file_condition_appeal")
    def _do_file_condition_appeal(self, a) -> dict:
        cond = self._appealed_condition(a.condition_id)
        due = workflow.now() + self.s.policy.notices.appeal_answer_within
        cond.appeal = ConditionAppeal(filed_on=self._dated(a, "filed_on"), grounds=a.grounds, answer_due=due)
        self._open_task(f"condition_appeal:{cond.id}", f"Answer the appeal of condition {cond.id}", "supervisor", due)
        return {"condition_id": cond.id, "answer_due": due.isoformat()}

    @CASE.check("decide_condition_appeal")
    def _check_decide_condition_appeal(self, a) -> None:
        cond = self._appealed_condition(a.condition_id)
        if cond.appeal is None:
            raise invalid(f"no appeal was filed for condition {cond.id} (file_condition_appeal)")
        if cond.appeal.outcome is not None:
            raise invalid(f"the appeal of condition {cond.id} was already decided ({cond.appeal.outcome})")

    @CASE.action("decide_condition_appeal")
    def _do_decide_condition_appeal(self, a) -> dict:
        s = self.s
        cond = self._appealed_condition(a.condition_id)
        ap = cond.appeal
        ap.outcome, ap.decided_on = a.outcome, self._today()
        self._close_tasks(f"condition_appeal:{cond.id}")
        hearing_until = workflow.now() + s.policy.notices.fair_hearing_window
        if a.outcome == "overturned":
            cond.status = "eligible"
        else:
            ap.hearing_until = hearing_until
        self._notify("appeal_decision", "family", outcome=a.outcome, condition=cond.description,
                     hearing_until=self._day(hearing_until))
        return {"condition_id": cond.id, "outcome": a.outcome}

    @CASE.check("record_condition_fair_hearing")
    def _check_record_condition_fair_hearing(self, a) -> None:
        cond = self._appealed_condition(a.condition_id)
        ap = cond.appeal
        if ap is None or ap.outcome != "upheld":
            raise invalid(f"condition {cond.id} has no upheld appeal: a fair hearing follows the appeal's answer")
        if ap.hearing_outcome is not None:
            raise invalid(f"the fair hearing on condition {cond.id} was already recorded ({ap.hearing_outcome})")
        self._check_date("requested_on", a.requested_on, ap.decided_on)
        if a.requested_on > local_today(ap.hearing_until, self.s.policy.timezone):
            raise invalid(f"the hearing was asked for after its window ended on {self._day(ap.hearing_until)}",
                          requested_on="after the fair hearing window")

    @CASE.action("record_condition_fair_hearing")
    def _do_record_condition_fair_hearing(self, a) -> dict:
        cond = self._appealed_condition(a.condition_id)
        cond.appeal.hearing_requested_on, cond.appeal.hearing_outcome = a.requested_on, a.outcome
        if a.outcome == "overturned":
            cond.status = "eligible"
        return {"condition_id": cond.id, "outcome": a.outcome}
