"""The Python client: refer a child, act on a case, show a case. The `ccs` command and
the tests use these; each validates first, so bad input starts or changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WithStartWorkflowOperation,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    RPCError,
)
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCStatusCode

from activities.identity import keys_of, resolve_and_claim
from models.actions import ACTIONS, REQUEST_ACTIONS, Refer
from models.identity import ReferralAnswer, ReferResult
from models.request_kinds import BY_ACTION, request_kind
from models.requests import AuthorizationStatus, GrievanceStatus, MealsLodgingStatus
from models.case import Actor, CaseInput, CaseStatus
from models.connection import connect  # noqa: F401 (the starters' one import of both)
from models.errors import CcsError
from models.policy import Policy
from models.referral import Child, Referral
from rules.ages import local_today
from rules.identity import IdentityRefused, new_case_id
from rules.referral import referral_problems


RequestStatus = MealsLodgingStatus | AuthorizationStatus | GrievanceStatus


def case_id_for(child: Child, secret: bytes) -> str:
    """The opaque ID a new case of this child gets (from the CIN, else the folded name and DOB).
    Which case a referral reaches is the identity index's decision (Cases.submit_referral)."""
    return new_case_id(keys_of(child, secret))


def referral_fingerprint(referral: Referral, secret: bytes) -> str:
    """The same referral sent again (a resent fax, a portal retry) gets the same ID."""
    return hmac.new(secret, referral.model_dump_json().encode(), hashlib.sha256).hexdigest()[:32]


def fields_of(error: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]) or "(root)": e["msg"] for e in error.errors()}




class Cases:
    """Case operations against one Temporal namespace and task queue."""

    def __init__(self, client: Client, task_queue: str, policy: Policy, case_id_secret: bytes,
                 identity: async_sessionmaker | None = None, records=None) -> None:
        self.client, self.task_queue, self.policy, self.secret = client, task_queue, policy, case_id_secret
        # The identity index (PostgreSQL). Without it (benchmarks, workflow-only tests) a referral
        # reaches the case its CIN, else its name + DOB, derives: no possible-duplicate checks.
        self.identity = identity
        self.records = records  # starters.records.Records: closed cases Temporal no longer has

    def validate_referral(self, data: dict[str, Any] | Referral) -> Referral:
        try:
            referral = data if isinstance(data, Referral) else Referral.model_validate(data)
        except ValidationError as e:
            raise CcsError("invalid referral", fields_of(e)) from None
        today = local_today(datetime.now(timezone.utc), self.policy.timezone)
        problems = referral_problems(referral, today, self.policy)
        if problems:
            raise CcsError("invalid referral", problems)
        return referral

    async def refer(self, data: dict[str, Any] | Referral, actor: Actor, referral_id: str | None = None) -> CaseStatus:
        """Open the child's case, or add the referral's conditions to the case already open."""
        return (await self.submit_referral(data, actor, referral_id)).status

    async def submit_referral(self, data: dict[str, Any] | Referral, actor: Actor,
                              referral_id: str | None = None) -> ReferralAnswer:
        """Refer a child: the identity index picks the case (rules/identity.py), then the case
        opens or takes the referral. Sent again, it answers the same case, duplicate_referral."""
        referral = self.validate_referral(data)
        keys = keys_of(referral.child, self.secret)
        outcome, duplicates = None, []
        if self.identity is None:
            case_id = new_case_id(keys)
        else:
            try:
                found = await resolve_and_claim(self.identity, keys)
            except IdentityRefused as e:
                raise CcsError(str(e), {"child.cin": "check"} if referral.child.cin else {"child": "ambiguous"}) from None
            except (OSError, SQLAlchemyError) as e:
                raise CcsError(f"cannot reach the database that holds the identity index ({type(e).__name__}): "
                               "is `ccs up` running, or DATABASE_URL set?") from None
            case_id, outcome, duplicates = found.case_id, found.outcome, list(found.possible_duplicate_of)
        referral_id = referral_id or referral_fingerprint(referral, self.secret)
        start = WithStartWorkflowOperation(
            "ChildCaseWorkflow",
            CaseInput(case_id=case_id, policy=self.policy, referral=referral, referral_id=referral_id),
            id=case_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        action = Refer(actor=actor, referral=referral, referral_id=referral_id, possible_duplicate_of=duplicates)
        try:
            result = await self.client.execute_update_with_start_workflow(
                "refer", action, start_workflow_operation=start, result_type=ReferResult)
        except WorkflowUpdateFailedError as e:
            raise _update_error(e) from None
        return ReferralAnswer(case_id=case_id, stage=result.status.stage, duplicate_referral=result.duplicate_referral,
                              identity=outcome, possible_duplicate_of=duplicates,
                              conditions_added=result.conditions_added, status=result.status)

    async def act(self, case_id: str, name: str, data: dict[str, Any]) -> CaseStatus | RequestStatus:
        if name in REQUEST_ACTIONS:
            return await self._act_on_request(case_id, name, data)
        spec = ACTIONS.get(name)
        if spec is None or name == "refer":
            known = ", ".join(sorted([n for n in ACTIONS if n != "refer"] + list(REQUEST_ACTIONS)))
            raise CcsError(f"unknown action {name!r}; actions are: {known} (use `ccs refer` to refer)")
        try:
            action = spec.model.model_validate(data)
        except ValidationError as e:
            raise CcsError(f"invalid data for {name}", fields_of(e)) from None
        handle = self.client.get_workflow_handle(case_id)
        try:
            return await handle.execute_update(name, action, result_type=CaseStatus)
        except WorkflowUpdateFailedError as e:
            raise _update_error(e) from None
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                await self._raise_if_closed(case_id)
                if self.records is not None and await self.records.status(case_id) is not None:
                    raise CcsError(f"case {case_id} is closed and takes no more actions (`ccs show` has its record)")
            raise _rpc_error(case_id, e) from None

    async def _raise_if_closed(self, case_id: str) -> None:
        try:
            desc = await self.client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(namespace=self.client.namespace,
                                                 execution=WorkflowExecution(workflow_id=case_id)))
        except RPCError:
            return
        status = WorkflowExecutionStatus(desc.workflow_execution_info.status)
        if status != WorkflowExecutionStatus.RUNNING:
            stage = "closed" if status == WorkflowExecutionStatus.COMPLETED else status.name.lower()
            raise CcsError(f"case {case_id} is {stage} and takes no more actions")

    async def _act_on_request(self, case_id: str, name: str, data: dict[str, Any]) -> RequestStatus:
        """Actions on one request go to the request's own workflow."""
        try:
            action = REQUEST_ACTIONS[name].model_validate(data)
        except ValidationError as e:
            raise CcsError(f"invalid data for {name}", fields_of(e)) from None
        if not action.request_id.startswith(f"{case_id}-"):
            raise CcsError(f"request {action.request_id} is not a request of case {case_id}",
                           {"request_id": "belongs to another case"})
        kind, wanted = request_kind(action.request_id), BY_ACTION[name]
        if kind is not wanted:
            what = f"a {kind.title} request" if kind else "no request of a known kind"
            raise CcsError(f"{name} acts on {wanted.title} requests ({case_id}-{wanted.prefix}-N); "
                           f"{action.request_id} is {what}", {"request_id": f"not a {wanted.title} request"})
        handle = self.client.get_workflow_handle(action.request_id)
        result_type = kind.status
        try:
            return await handle.execute_update(name, action, result_type=result_type)
        except WorkflowUpdateFailedError as e:
            raise _update_error(e) from None
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                try:
                    done = await self.show(action.request_id)
                except CcsError:
                    raise CcsError(f"no request {action.request_id}") from None
                raise CcsError(f"request {action.request_id} is {done.state}: {done.outcome_note or 'closed'}") from None
            raise _rpc_error(action.request_id, e) from None

    async def show(self, case_id: str) -> CaseStatus | RequestStatus:
        """A case's status, or one request's (``CASE-ml-1``, ``CASE-sar-2``)."""
        handle = self.client.get_workflow_handle(case_id)
        try:
            kind = request_kind(case_id)
            if kind is not None:
                return await handle.query("status", result_type=kind.status)
            return await handle.query("status", result_type=CaseStatus)
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND and self.records is not None:
                recorded = await self.records.status(case_id)
                if recorded is not None:
                    return recorded
            raise _rpc_error(case_id, e) from None
        except WorkflowQueryFailedError as e:
            raise CcsError(f"case {case_id} cannot answer: {e}") from None


def _update_error(e: WorkflowUpdateFailedError) -> CcsError:
    cause = e.cause
    if isinstance(cause, ApplicationError):
        fields = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        return CcsError(cause.message, fields)
    return CcsError(str(cause or e))


def _rpc_error(case_id: str, e: RPCError) -> CcsError:
    if e.status == RPCStatusCode.NOT_FOUND:
        return CcsError(f"no case {case_id}")
    if e.status == RPCStatusCode.FAILED_PRECONDITION:
        return CcsError(f"case {case_id} is closed and no longer takes actions")
    return CcsError(f"Temporal refused: {e.message}")


def load_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise CcsError(f"no such file: {path}") from None
    except json.JSONDecodeError as e:
        raise CcsError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise CcsError(f"{path} must hold one JSON object")
    return data
