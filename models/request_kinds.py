"""The request kinds of a case, in one registry: each kind's ID prefix, workflow type,
input and status models, the case action that opens it, and the actions taken on it.

The case, the client, the CLI, the web app, the case records and the worker all read this
table; nothing else knows a request kind by its name or its ID. Adding a kind: its own
workflow module (and models), then one line in ``REQUEST_KINDS``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from models.case import Role
from models.requests import (
    REQUEST_ID,
    AuthorizationInput,
    AuthorizationStatus,
    DecideAuthorization,
    DecideMealsLodging,
    ExtendAuthorization,
    GrievanceInput,
    GrievanceStatus,
    MealsLodgingInput,
    MealsLodgingStatus,
    RecordInformation,
    RequestAction,
    RequestInformation,
    ResolveGrievance,
    SubmitReceipts,
)

STAFF: tuple[Role, ...] = ("case_manager", "supervisor")


@dataclass(frozen=True)
class RequestActionSpec:
    model: type[RequestAction]
    roles: tuple[Role, ...]  # who may take it (a workflow may narrow it, e.g. the State decides)
    states: tuple[str, ...]  # the request states it fits: the web app offers its form then


@dataclass(frozen=True)
class RequestKindSpec:
    kind: str  # as the case and the records name it: RequestSummary.kind, the record's kind
    prefix: str  # of request IDs: CASE-{prefix}-{n}
    task_prefix: str  # of its task IDs: {task_prefix}{n}-T1
    workflow: str  # the workflow type: its class, in ``module``, is what the worker runs
    input: type
    status: type
    opened_by: str  # the case action that opens it (models/actions.py ACTIONS)
    title: str  # in a case manager's words
    actions: dict[str, RequestActionSpec] = field(default_factory=dict)
    module: str = ""  # where the workflow class is: workflows.{kind} unless given

    def __post_init__(self) -> None:
        if not self.module:
            object.__setattr__(self, "module", f"workflows.{self.kind}")

    def request_id(self, case_id: str, n: int) -> str:
        return f"{case_id}-{self.prefix}-{n}"


MEALS_LODGING = RequestKindSpec(
    "meals_lodging", "ml", "ML", "MealsLodgingWorkflow", MealsLodgingInput, MealsLodgingStatus,
    "request_meals_lodging", "meals and lodging", {
        "decide_meals_lodging": RequestActionSpec(DecideMealsLodging, STAFF, ("awaiting_decision",)),
        "submit_receipts": RequestActionSpec(SubmitReceipts, (*STAFF, "intake_clerk"), ("approved",)),
    })
AUTHORIZATION = RequestKindSpec(
    "authorization", "sar", "SAR", "ServiceAuthorizationWorkflow", AuthorizationInput, AuthorizationStatus,
    "request_authorization", "service authorization", {
        # In a dependent county the State decides (state_reviewer); the workflow checks which applies.
        "decide_authorization": RequestActionSpec(
            DecideAuthorization, (*STAFF, "medical_consultant", "state_reviewer"), ("awaiting_decision",)),
        "extend_authorization": RequestActionSpec(
            ExtendAuthorization, (*STAFF, "medical_consultant", "state_reviewer"), ("awaiting_decision",)),
        # Who decides may pend: in a dependent county the State asks for what it needs.
        "request_information": RequestActionSpec(
            RequestInformation, (*STAFF, "medical_consultant", "state_reviewer"), ("awaiting_decision",)),
        "record_information": RequestActionSpec(
            RecordInformation, (*STAFF, "medical_consultant", "intake_clerk"), ("pended",)),
    })
GRIEVANCE = RequestKindSpec(
    "grievance", "grv", "GRV", "GrievanceWorkflow", GrievanceInput, GrievanceStatus,
    "file_grievance", "grievance", {
        "resolve_grievance": RequestActionSpec(ResolveGrievance, STAFF, ("open",)),
    })

REQUEST_KINDS: dict[str, RequestKindSpec] = {k.kind: k for k in (MEALS_LODGING, AUTHORIZATION, GRIEVANCE)}

BY_PREFIX: dict[str, RequestKindSpec] = {k.prefix: k for k in REQUEST_KINDS.values()}
BY_ACTION: dict[str, RequestKindSpec] = {name: k for k in REQUEST_KINDS.values() for name in k.actions}
BY_OPENING_ACTION: dict[str, RequestKindSpec] = {k.opened_by: k for k in REQUEST_KINDS.values()}
# Every action on a request: its payload model, and who may take it.
REQUEST_ACTIONS: dict[str, type[RequestAction]] = {n: k.actions[n].model for n, k in BY_ACTION.items()}
REQUEST_ROLES: dict[str, tuple[Role, ...]] = {n: k.actions[n].roles for n, k in BY_ACTION.items()}


def request_kind(request_id: str) -> RequestKindSpec | None:
    """The kind of a request ID (``CASE-ml-1``), or None if it is not a request's ID."""
    m = re.match(REQUEST_ID, request_id)
    return BY_PREFIX.get(m.group(1)) if m else None


def case_of(request_id: str) -> str:
    """The case a request belongs to (``CASE-ml-1`` -> ``CASE``); a case ID stays itself."""
    spec = request_kind(request_id)
    return request_id.rsplit(f"-{spec.prefix}-", 1)[0] if spec else request_id
