"""The case's clocks: when the loop wakes, which deadlines and task escalations are due, and what
each deadline does when it fires (``@CASE.clock``; ``lasting=True`` outlives a stage change).

A mixin of ChildCaseWorkflow (workflows/case/workflow.py).
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows.handlers import CASE

with workflow.unsafe.imports_passed_through():
    from models.case import SYSTEM, CaseState
    from rules.ages import age_on, birthday, start_of_day
    from rules.deadlines import due_by


class CaseClocks:
    """The case's clocks: when it wakes, which deadlines fire, and what each does."""

    s: CaseState

    def _next_wake(self, run_started: datetime) -> datetime:
        times = list(self.s.deadlines.values()) + [at for _, at in self._escalations()]
        times.append(run_started + self.s.policy.run.continue_as_new_after)
        return min(times)

    def _escalations(self) -> list[tuple[str, datetime]]:
        grace = self.s.policy.supervision.escalation_grace
        out = []
        for t in self.s.tasks.values():
            if "assignee" not in t.escalated:
                out.append((f"task_due:{t.id}", t.due))
            elif "supervisor" not in t.escalated:
                out.append((f"task_grace:{t.id}", t.due + grace))
        return out

    def _due(self, now: datetime, timer_driven: bool) -> list[tuple[str, datetime]]:
        times = self._timed() if timer_driven else {**self.s.deadlines, **dict(self._escalations())}
        return [(k, times[k]) for k in due_by(times, now)]

    def _take(self, key: str, at: datetime, now: datetime) -> bool:
        name, _, arg = key.partition(":")
        if key == "run_ends":
            self._run_over = True  # the loop continues as new once this pass's steps are recorded
            return False
        if name.startswith("task_"):
            # The task closed, or was escalated, earlier in this pass: not due any more.
            return (key, self._escalation_at(arg)) in self._escalations()
        if key not in self.s.deadlines or self.s.deadlines[key] > now:
            return False  # an earlier timer in this pass moved or removed it
        del self.s.deadlines[key]
        return True

    def _escalation_at(self, task_id: str) -> datetime | None:
        return next((at for k, at in self._escalations() if k.endswith(f":{task_id}")), None)

    @CASE.clock("second_notice")
    def _fire_second_notice(self, _: str) -> None:
        self._notify("second_notice", "family")
        self._schedule_application_lapse()

    @CASE.clock("records_reminder")
    def _fire_records_reminder(self, _: str) -> dict:
        n = sum(1 for k in self.s.notices_sent if "/records_reminder/" in k) + 1
        self._notify("records_reminder", "referrer", reminder=n)
        self.s.deadlines["records_reminder"] = self._clock() + self.s.policy.records.reminder_every
        return {"reminder": n}

    @CASE.clock("records_escalation")
    def _fire_records_escalation(self, _: str) -> None:
        self._notify("records_escalation", "supervisor", days=self.s.policy.records.escalate_after.days)

    @CASE.clock("appeal_window")
    def _fire_appeal_window(self, _: str) -> None:
        self._close("not_eligible", SYSTEM, "no appeal within the appeal window")

    @CASE.clock("fair_hearing_window")
    def _fire_fair_hearing_window(self, _: str) -> None:
        self._close("not_eligible", SYSTEM, "appeal upheld; no fair hearing requested")

    @CASE.clock("renewal_notice")
    def _fire_renewal_notice(self, _: str) -> None:
        s = self.s
        self._notify("renewal_notice", "family", renew_by=s.renewal_due)
        self._open_task("renewal", "Annual renewal: redetermine residential and financial eligibility",
                        self._worker(), start_of_day(s.renewal_due, s.policy.timezone))
        self._schedule_renewal_lapse()

    @CASE.clock("enrollment_fee")
    def _fire_enrollment_fee(self, _: str) -> None:
        self._close("enrollment_fee_unpaid", SYSTEM, "enrollment fee unpaid by day 61")

    @CASE.clock("milestone", lasting=True)
    def _fire_milestone(self, age: str) -> None:
        self.s.milestones_done.append(age)
        self._open_milestone_task(int(age))

    @CASE.clock("aged_out", lasting=True)
    def _fire_aged_out(self, _: str) -> None:
        self._close("aged_out", SYSTEM, f"turned {self.s.policy.active.coverage_end_age}")

    @CASE.clock("task_due")
    def _fire_task_due(self, task_id: str) -> None:
        task = self.s.tasks[task_id]
        task.escalated.append("assignee")
        self._notify("task_overdue", "case_manager", address=task.assignee, task_id=task.id, title=task.title)

    @CASE.clock("task_grace")
    def _fire_task_grace(self, task_id: str) -> None:
        task = self.s.tasks[task_id]
        task.escalated.append("supervisor")
        self._notify("task_escalation", "supervisor", task_id=task.id, title=task.title, assignee=task.assignee,
                     due=task.due.isoformat())

    def _schedule_renewal(self) -> None:
        s = self.s
        s.deadlines.pop("renewal_lapsed", None)  # the renewal was completed
        s.deadlines["renewal_notice"] = (
            start_of_day(s.renewal_due, s.policy.timezone) - s.policy.active.renewal_notice_before
        )

    def _schedule_milestones(self) -> None:
        s, p = self.s, self.s.policy.active
        dob, today = s.child.date_of_birth, self._today()
        for age in (p.transition_planning_age, *p.transition_review_ages):
            if str(age) in s.milestones_done:
                continue
            if birthday(dob, age) > today:
                s.deadlines[f"milestone:{age}"] = start_of_day(birthday(dob, age), s.policy.timezone)
            elif age == p.transition_planning_age or age_on(dob, today) < age + 1:
                s.milestones_done.append(str(age))
                self._open_milestone_task(age)

    def _open_milestone_task(self, age: int) -> None:
        p = self.s.policy.active
        title = ("Start transition planning" if age == p.transition_planning_age
                 else f"Transition review at age {age}")
        self._open_task(f"transition:{age}", title, self._worker(), self._clock() + p.milestone_task_within)
