"""Endings the program has besides a decision: an application never returned, a renewal
never completed. Each closes the case with a Notice of Action when its timer fires.

A mixin of ChildCaseWorkflow (it uses the case's ``s``, ``_clock``, ``_notify``, ``_close``).
Both timers are new commands for cases already running, so they start only behind the
``program-endings`` patch; a case whose history predates it keeps its old course.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.common import patched
from workflows.handlers import CASE

with workflow.unsafe.imports_passed_through():
    from models.case import SYSTEM
    from rules.ages import start_of_day

PROGRAM_ENDINGS = "program-endings"


class ProgramEndings:
    def _schedule_application_lapse(self) -> None:
        """After the second notice, the family has a policy period to return the application."""
        if patched(PROGRAM_ENDINGS):
            self.s.deadlines["application_lapsed"] = self._clock() + self.s.policy.intake.close_unreturned_after

    def _schedule_renewal_lapse(self) -> None:
        """A renewal noticed and not completed when its notice period ends closes the case."""
        s = self.s
        if patched(PROGRAM_ENDINGS):
            s.deadlines["renewal_lapsed"] = (start_of_day(s.renewal_due, s.policy.timezone)
                                             + s.policy.active.renewal_close_after)

    @CASE.clock("application_lapsed")
    def _fire_application_lapsed(self, _: str) -> dict:
        days = self.s.policy.intake.close_unreturned_after.days
        self._closing_notice("close_application", "application",
                             f"We did not get the signed application back, {days} days after the second notice.")
        self._close("application_not_returned", SYSTEM, f"application not returned {days} days after the second notice")
        return {"after_days": days}

    @CASE.clock("renewal_lapsed")
    def _fire_renewal_lapsed(self, _: str) -> dict:
        s = self.s
        self._closing_notice("close_renewal", "renewal",
                             f"The yearly renewal was due by {s.renewal_due.isoformat()} and was not completed.")
        self._close("renewal_not_completed", SYSTEM, f"renewal due {s.renewal_due.isoformat()} not completed")
        return {"renewal_due": s.renewal_due.isoformat()}

    def _closing_notice(self, action: str, basis: str, reason: str) -> None:
        p = self.s.policy.notices
        self._notify("notice_of_action", "family", action=action, reason=reason, basis=basis,
                     appeal_until=self._day(self._clock() + p.appeal_window), **self._appeal_terms())
