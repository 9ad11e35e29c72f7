"""GrievanceWorkflow: a family's complaint (a delay, a provider, a decision that is not an
appeal), a request kind of its own (ID ``{case_id}-grv-{n}``).

Acknowledged in writing when filed (the standard allows 5 calendar days); resolved within
30 days, or 72 hours when the family's health is at risk (models/policy.py GrievancePolicy
cites the managed-care standard). A reminder and an escalation come before the due time, an
overdue notice to a supervisor at it; the task stays open until someone resolves it. A
grievance outlives its case: the family's complaint is still answered after a closure.
"""

from __future__ import annotations

from datetime import date, datetime

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from models.request_kinds import GRIEVANCE
    from models.requests import GrievanceInput, GrievanceState, GrievanceStatus, ResolveGrievance

from workflows.handlers import HandlerTable
from workflows.requests import RequestWorkflow


def resolution_due(received: datetime, expedited: bool, policy) -> datetime:
    p = policy.grievance
    return received + (p.expedited if expedited else p.resolve_within)


CLOCKS = HandlerTable("GrievanceWorkflow")  # its clocks


@workflow.defn
class GrievanceWorkflow(RequestWorkflow):
    HANDLERS = CLOCKS
    SPEC = GRIEVANCE
    CLOSED = frozenset({"resolved"})

    @workflow.init
    def __init__(self, inp: GrievanceInput) -> None:
        self._setup()
        now, req = workflow.now(), inp.request
        self.s = GrievanceState(
            request_id=inp.request_id, case_id=inp.case_id, county=inp.county, case_manager=inp.case_manager,
            family_address=inp.family_address, child_name=inp.child_name,
            preferred_language=inp.preferred_language, jurisdiction=inp.jurisdiction, policy=inp.policy,
            requested_by=inp.requested_by.id, received_at=now, decision_due=resolution_due(now, req.expedited, inp.policy),
            state="open", request=req, acknowledged_at=now,
        )
        s, p = self.s, self.s.policy.grievance
        self._open_task("grievance_resolution", f"Resolve the family's {self._urgency()} grievance about "
                        f"{req.about}", self._worker(), s.decision_due)
        self._set_due_timers({"resolution_reminder": s.decision_due - p.reminder_before,
                              "resolution_escalation": s.decision_due - p.escalate_before,
                              "resolution_overdue": s.decision_due})
        self._notify("grievance_acknowledged", "family", resolve_by=self._day(s.decision_due),
                     expedited="yes" if req.expedited else None)
        if req.expedited:  # an urgent grievance reaches a supervisor at once
            self._notify("grievance_expedited", "supervisor", **self._when_due())
        self._commit(inp.requested_by, "file_grievance",
                     {"about": req.about, "expedited": req.expedited, "resolve_by": s.decision_due.isoformat()})

    @workflow.run
    async def run(self, inp: GrievanceInput) -> GrievanceStatus:
        await self._loop()
        return self._status()

    @workflow.query
    def status(self) -> GrievanceStatus:
        return self._status()

    def _urgency(self) -> str:
        return "expedited" if self.s.request.expedited else "standard"

    def _describe(self) -> str:
        s = self.s
        what = f"{self._urgency()} grievance about {s.request.about}"
        if s.state == "open":
            return f"{what}: resolution due {self._when(s.decision_due)}"
        return f"{what}: resolved {self._when(s.resolved_at)}"

    def _when_due(self) -> dict:
        """When the grievance is due, for the notices to staff (letters/notices.py)."""
        return dict(urgency=self._urgency(), resolve_by=self._when(self.s.decision_due))

    # ---- actions --------------------------------------------------------------------

    @workflow.update(name="resolve_grievance")
    def resolve(self, raw: RawValue) -> GrievanceStatus:
        a = self._decode("resolve_grievance", raw, ResolveGrievance)
        s, now = self.s, workflow.now()
        self._begin()
        s.resolution, s.resolved_at, s.resolved_by = a.resolution, now, a.actor.id
        self._end("resolved", "resolved")
        self._notify("grievance_resolved", "family", resolution=a.resolution)
        self._commit(a.actor, "resolve_grievance", {"late": now > s.decision_due})
        return self._status()

    @resolve.validator
    def _check_resolve(self, raw: RawValue) -> None:
        a = self._decode("resolve_grievance", raw, ResolveGrievance)
        self._check_open("resolve_grievance", a.actor)

    # ---- timers (follow-ups take the timer's target as their time: self._clock()) ---------

    @CLOCKS.clock("resolution_reminder")
    def _fire_resolution_reminder(self, _: str) -> None:
        self._notify("grievance_reminder", "case_manager", **self._when_due())

    @CLOCKS.clock("resolution_escalation")
    def _fire_resolution_escalation(self, _: str) -> None:
        self._notify("grievance_escalation", "supervisor", **self._when_due())

    @CLOCKS.clock("resolution_overdue")
    def _fire_resolution_overdue(self, _: str) -> None:
        self._notify("grievance_overdue", "supervisor", at=self._when(self._clock()), **self._when_due())

    # ---- the case closed ------------------------------------------------------------

    def _on_case_closed(self, reason: str, on: date) -> dict:
        return {"resolution": "continues"}  # the family's complaint is still answered
