"""The case's requests (meals and lodging, service authorizations, grievances): the actions that
open one, starting its child workflow from the loop, and telling it when the case closes.

A mixin of ChildCaseWorkflow (workflows/case/workflow.py), like the others in this package.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from workflows.common import invalid_fields, patched
from workflows.handlers import CASE
from workflows.policy_in_force import POLICY_IN_FORCE, take_current_policy, with_policy_in_force

with workflow.unsafe.imports_passed_through():
    from models.case import CaseState, RequestStart, RequestSummary
    from models.request_kinds import BY_OPENING_ACTION
    from rules.reimbursement import condition_problems, meals_lodging_problems
    from rules.authorization import service_problems


class CaseRequests:
    """The case's requests: opening each kind, starting its child workflow, telling it the case closed."""

    s: CaseState

    async def _start_requests(self) -> None:
        in_force = bool(self.s.requests_to_start) and patched(POLICY_IN_FORCE)
        if in_force:
            await take_current_policy(self.s)
            self._events += 6
        while self.s.requests_to_start:
            start = self.s.requests_to_start[0]
            if in_force:
                start = with_policy_in_force(start, self.s, self._today())
            self._events += 6
            try:
                await workflow.start_child_workflow(
                    start.workflow, start.input, id=start.input["request_id"],
                    parent_close_policy=ParentClosePolicy.ABANDON,
                )
            except WorkflowAlreadyStartedError:
                pass  # started before a continue-as-new or a retry: nothing more to do
            self.s.requests_to_start.pop(0)

    async def _tell_requests_case_closed(self) -> None:
        reason = self.s.closure.reason if self.s.closure else "closed"
        for summary in self.s.requests.values():
            if summary.closed:
                continue
            try:
                await workflow.get_external_workflow_handle(summary.request_id).signal(
                    "case_closed", args=[reason, self.s.closure.on if self.s.closure else self._today()])
            except Exception:  # the request finished meanwhile
                workflow.logger.info("request %s already finished", summary.request_id)

    def _open_request(self, opened_by: str, a) -> dict:
        """Queue the request kind this action opens (models/request_kinds.py); the loop starts it."""
        s, kind = self.s, BY_OPENING_ACTION[opened_by]
        s.request_counter += 1
        inp = kind.input(request_id=kind.request_id(s.case_id, s.request_counter), case_id=s.case_id,
                         county=s.county, case_manager=s.case_manager, family_address=self._family_address(),
                         policy=s.policy, child_name=self._child_name(),
                         preferred_language=s.child.preferred_language, jurisdiction=s.jurisdiction,
                         state_decides=s.state_decides, conditions=s.conditions, requested_by=a.actor,
                         request=a.request)
        s.requests_to_start.append(RequestStart(workflow=kind.workflow, input=inp.model_dump(mode="json"),
                                                    received_on=self._today()))
        s.requests[inp.request_id] = RequestSummary(
            request_id=inp.request_id, kind=kind.kind, state="starting", summary="request received",
            next_deadline=None, closed=False)
        return {"request_id": inp.request_id}

    @CASE.check("request_meals_lodging")
    def _check_request_meals_lodging(self, a) -> None:
        problems = {f"request.{k}": v for k, v in {
            **condition_problems(a.request.condition_id, self.s.conditions),
            **meals_lodging_problems(a.request, self._today(), self.s.policy.in_force(self._today()))}.items()}
        if problems:
            raise invalid_fields("request_meals_lodging", problems)

    @CASE.action("request_meals_lodging")
    def _do_request_meals_lodging(self, a) -> dict:
        return self._open_request("request_meals_lodging", a)

    @CASE.check("request_authorization")
    def _check_request_authorization(self, a) -> None:
        problems = {f"request.{k}": v for k, v in {
            **condition_problems(a.request.condition_id, self.s.conditions),
            **service_problems(a.request, self._today())}.items()}
        if problems:
            raise invalid_fields("request_authorization", problems)

    @CASE.action("request_authorization")
    def _do_request_authorization(self, a) -> dict:
        return self._open_request("request_authorization", a)

    @CASE.action("file_grievance")
    def _do_file_grievance(self, a) -> dict:
        return self._open_request("file_grievance", a)
