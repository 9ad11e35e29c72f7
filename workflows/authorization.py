"""ServiceAuthorizationWorkflow: one service authorization request (SAR) of a case.

A child workflow of the case (ID ``{case_id}-sar-{n}``). The decision is due in 5 working
days (72 hours expedited), extendable once to 14 calendar days from receipt. A reminder
and an escalation come before the due time, an overdue notice at it; a missed due time is
never approved by default: the task stays open and overdue until someone decides.

A routine request missing what is needed to decide is pended (``request_information``):
the decision timers stop, the family is told, and a task waits for the information until
14 days from receipt. When it arrives (``record_information``) the 5 working days start
again from that moment. An expedited request is never pended: 72 hours from receipt.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from models.request_kinds import AUTHORIZATION
    from models.requests import (
        AuthorizationDecision,
        AuthorizationInput,
        AuthorizationState,
        AuthorizationStatus,
        DecideAuthorization,
        ExtendAuthorization,
        RecordInformation,
        RequestInformation,
    )
    from rules.reimbursement import authorization_due, authorization_extended_due, authorization_number

from workflows.common import invalid
from workflows.handlers import HandlerTable
from workflows.requests import RequestWorkflow


CLOCKS = HandlerTable("ServiceAuthorizationWorkflow")  # its clocks


@workflow.defn
class ServiceAuthorizationWorkflow(RequestWorkflow):
    HANDLERS = CLOCKS
    SPEC = AUTHORIZATION
    CLOSED = frozenset({"approved", "denied", "withdrawn"})

    @workflow.init
    def __init__(self, inp: AuthorizationInput) -> None:
        self._setup()
        now, req = workflow.now(), inp.request
        due = authorization_due(now, req.urgency, inp.policy)
        self.s = AuthorizationState(
            request_id=inp.request_id, case_id=inp.case_id, county=inp.county, case_manager=inp.case_manager,
            family_address=inp.family_address, policy=inp.policy, requested_by=inp.requested_by.id,
            child_name=inp.child_name, preferred_language=inp.preferred_language, jurisdiction=inp.jurisdiction,
            received_at=now, decision_due=due, state="awaiting_decision", request=req,
            decided_by="state" if inp.state_decides else "county",
        )
        self._schedule(self.s.decision_due)
        self._commit(inp.requested_by, "request_authorization",
                     {"urgency": req.urgency, "decision_due": self.s.decision_due.isoformat()})

    @workflow.run
    async def run(self, inp: AuthorizationInput) -> AuthorizationStatus:
        await self._loop()
        return self._status()

    @workflow.query
    def status(self) -> AuthorizationStatus:
        return self._status()

    def _describe(self) -> str:
        s = self.s
        what = f"{s.request.urgency} service authorization for {s.request.condition_id}"
        if s.state == "awaiting_decision":
            return f"{what}: decision due {self._when(s.decision_due)}" + (" (extended)" if s.extended else "")
        if s.state == "pended":
            return f"{what}: pended for information since {self._when(s.pended_at)}"
        if s.decision and s.decision.authorization_number:
            return f"{what}: {s.state} {s.decision.authorization_number} until {s.decision.valid_until}"
        return f"{what}: {s.state}"

    def _schedule(self, due: datetime) -> None:
        """The decision task and its timers for this due time; each timer fires once."""
        s, p = self.s, self.s.policy.sar
        self._close_tasks("authorization_decision")
        self._open_task("authorization_decision", f"Decide the {s.request.urgency} service authorization request "
                        f"for {s.request.condition_id}", "state:ccs_sar" if s.decided_by == "state" else self._worker(),
                        due)
        self._set_due_timers({"decision_reminder": due - p.reminder_before,
                              "decision_escalation": due - p.escalate_before, "decision_overdue": due})

    # ---- actions --------------------------------------------------------------------

    @workflow.update(name="extend_authorization")
    def extend(self, raw: RawValue) -> AuthorizationStatus:
        a = self._decode("extend_authorization", raw, ExtendAuthorization)
        s = self.s
        self._begin()
        s.extended, s.extension_reason = True, a.reason
        s.decision_due = authorization_extended_due(s.received_at, s.policy)
        self._schedule(s.decision_due)
        self._notify("authorization_extended", "family", service=s.request.service, reason=a.reason,
                     decide_by=self._day(s.decision_due))
        self._commit(a.actor, "extend_authorization", {"decision_due": s.decision_due.isoformat()})
        return self._status()

    @extend.validator
    def _check_extend(self, raw: RawValue) -> None:
        a = self._decode("extend_authorization", raw, ExtendAuthorization)
        self._check_open("extend_authorization", a.actor, self._deciders("extend_authorization"))
        s = self.s
        self._check_not_pended("extend_authorization")
        if s.extended:
            raise invalid(f"request {s.request_id} was already extended to {self._when(s.decision_due)}")
        new_due = authorization_extended_due(s.received_at, s.policy)
        if new_due <= workflow.now():
            raise invalid(f"an extension runs to {s.policy.sar.extended.days} days from receipt "
                          f"({self._when(new_due)}), which has passed: decide the request now")

    @workflow.update(name="request_information")
    def request_information(self, raw: RawValue) -> AuthorizationStatus:
        a = self._decode("request_information", raw, RequestInformation)
        s, now = self.s, workflow.now()
        self._begin()
        limit = authorization_extended_due(s.received_at, s.policy)
        s.state, s.information_requested, s.pended_at, s.information_received_at = "pended", a.information, now, None
        # Not decidable yet: the decision clock and its timers stop until the information is in.
        s.decision_due = limit
        self._close_tasks("authorization_decision")
        s.deadlines.clear()
        self._open_task("authorization_information", f"Get the information needed to decide the service "
                        f"authorization request for {s.request.condition_id}, then record_information",
                        self._worker(), limit)
        s.deadlines["information_overdue"] = limit
        self._notify("authorization_pended", "family", service=s.request.service, information=a.information,
                     working_days=s.policy.sar.routine_working_days)
        self._commit(a.actor, "request_information", {"information_due": limit.isoformat()})
        return self._status()

    @request_information.validator
    def _check_request_information(self, raw: RawValue) -> None:
        a = self._decode("request_information", raw, RequestInformation)
        self._check_open("request_information", a.actor, self._deciders("request_information"))
        s = self.s
        self._check_not_pended("request_information")
        if s.request.urgency == "expedited":
            raise invalid(f"request {s.request_id} is expedited: it is decided within "
                          f"{s.policy.sar.expedited.total_seconds() / 3600:.0f} hours of receipt and is never pended; decide it "
                          "with what is in", urgency="expedited")
        limit = authorization_extended_due(s.received_at, s.policy)
        if limit <= workflow.now():
            raise invalid(f"the {s.policy.sar.extended.days} days from receipt ({self._when(limit)}) have passed: "
                          "decide the request with what is in")

    @workflow.update(name="record_information")
    def record_information(self, raw: RawValue) -> AuthorizationStatus:
        a = self._decode("record_information", raw, RecordInformation)
        s, now = self.s, workflow.now()
        self._begin()
        s.state, s.information_received_at = "awaiting_decision", now
        # The 5 working days run from the day the information needed to decide is in.
        s.decision_due = authorization_due(now, s.request.urgency, s.policy)
        self._close_tasks("authorization_information")
        s.deadlines.pop("information_overdue", None)
        self._schedule(s.decision_due)
        self._commit(a.actor, "record_information", {"decision_due": s.decision_due.isoformat()})
        return self._status()

    @record_information.validator
    def _check_record_information(self, raw: RawValue) -> None:
        a = self._decode("record_information", raw, RecordInformation)
        self._check_open("record_information", a.actor)
        if self.s.state != "pended":
            raise invalid(f"request {self.s.request_id} is not waiting for information: it is "
                          f"{self.s.state.replace('_', ' ')} (request_information pends it)")

    def _check_not_pended(self, name: str) -> None:
        s = self.s
        if s.state == "pended":
            raise invalid(f"{name}: request {s.request_id} is pended for information since "
                          f"{self._when(s.pended_at)}; take record_information when it arrives")

    @workflow.update(name="decide_authorization")
    def decide(self, raw: RawValue) -> AuthorizationStatus:
        a = self._decode("decide_authorization", raw, DecideAuthorization)
        s, now = self.s, workflow.now()
        self._begin()
        s.decision = AuthorizationDecision(outcome=a.decision, by=a.actor.id, role=a.actor.role, at=now,
                                           reason=a.reason, approved_service=a.approved_service)
        service = f"{s.request.service} by {s.request.provider}"
        if a.decision == "deny":
            self._end("denied", f"denied: {a.reason}")
            self._notice_of_action("deny_service", a.reason, f"The request was for {service}.")
        else:
            d = s.decision
            d.authorization_number = authorization_number(s.request_id, s.county)
            d.valid_from = self._today()
            d.valid_until = d.valid_from + timedelta(days=s.policy.sar.authorization_valid_for.days)
            auth = f"Authorization {d.authorization_number} is valid from {d.valid_from} to {d.valid_until}."
            if a.decision == "modify":
                self._end("approved", f"approved with changes ({a.approved_service}): {a.reason}")
                self._notice_of_action("change_service", a.reason, f"The request was for {service}. We approved "
                                       f"{a.approved_service} instead. {auth}")
            else:
                self._end("approved", f"approved: {d.authorization_number}")
                self._notify("authorization_approved", "family", service=service, number=d.authorization_number,
                             valid_from=d.valid_from, valid_until=d.valid_until)
        late = now > s.decision_due
        self._commit(a.actor, "decide_authorization", {"decision": a.decision, "late": late,
                                                       "authorization_number": s.decision.authorization_number})
        return self._status()

    @decide.validator
    def _check_decide(self, raw: RawValue) -> None:
        a = self._decode("decide_authorization", raw, DecideAuthorization)
        self._check_open("decide_authorization", a.actor, self._deciders("decide_authorization"))

    def _deciders(self, action: str) -> tuple[str, ...]:
        """In a dependent county the State decides (state_reviewer); elsewhere the county."""
        if self.s.decided_by == "state":
            return ("state_reviewer",)
        return tuple(r for r in self.SPEC.actions[action].roles if r != "state_reviewer")

    # ---- timers ---------------------------------------------------------------------

    def _when_due(self) -> dict:
        """When the request is due, for the notices to staff (letters/notices.py)."""
        s = self.s
        return dict(urgency=s.request.urgency, decision_due=self._when(s.decision_due), extended=s.extended)

    @CLOCKS.clock("decision_reminder")
    def _fire_decision_reminder(self, _: str) -> None:
        self._notify("authorization_reminder", "case_manager", **self._when_due())

    @CLOCKS.clock("decision_escalation")
    def _fire_decision_escalation(self, _: str) -> None:
        self._notify("authorization_escalation", "supervisor", **self._when_due())

    @CLOCKS.clock("information_overdue")
    def _fire_information_overdue(self, _: str) -> None:
        # The task stays open: the request is decided with what is in, or the information still comes.
        s = self.s
        self._notify("authorization_information_overdue", "supervisor", pended_at=self._when(s.pended_at),
                     days=s.policy.sar.extended.days, ended_at=self._when(self._clock()))

    @CLOCKS.clock("decision_overdue")
    def _fire_decision_overdue(self, _: str) -> None:
        # No decision by default: the task stays open and overdue until someone decides.
        self._notify("authorization_overdue", "supervisor", **self._when_due())

    # ---- the case closed ------------------------------------------------------------

    def _on_case_closed(self, reason: str, on: date) -> dict:
        self._end("withdrawn", f"withdrawn undecided: the case closed ({reason})")
        self._notify("request_withdrawn", "family", service=self.s.request.service)
        return {"resolution": "withdrawn"}
