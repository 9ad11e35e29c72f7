"""Requests inside an active case, each its own child workflow of the case:
meals and lodging (prior approval, receipts, reimbursement) and service authorization
requests (SARs). Here: what is asked, the actions on a request, each request's state and
status, and the summary a request sends its case."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from models.case import Actor, Condition, Role, StepRecord, Task
from models.policy import Policy

# Sane ceilings for one trip: anything larger is a typing error, not a family's expense.
MAX_AMOUNT = Decimal("20000")
MAX_TRIP_DAYS = 90
REQUEST_ID = r"^[A-Za-z0-9_.-]{1,80}-(ml|sar|grv)-[0-9]{1,4}$"

Money = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, max_digits=8, decimal_places=2)]
# "fares": bus, train or air tickets (mode of travel), receipted like the others.
Category = Literal["meals", "lodging", "mileage", "parking", "tolls", "fares"]
CATEGORIES: tuple[Category, ...] = ("meals", "lodging", "mileage", "parking", "tolls", "fares")
Relationship = Literal["child", "parent", "guardian", "caregiver", "sibling", "other"]
Outcome = Literal["approve", "modify", "deny"]
RequestKind = Literal["meals_lodging", "authorization", "grievance"]
MealsLodgingPhase = Literal[
    "awaiting_decision", "approved", "paying", "paid", "denied", "expired", "withdrawn", "cancelled"
]
# pended: waiting for the information needed to decide (the 5-working-day clock has not started)
GrievancePhase = Literal["open", "resolved"]
AuthorizationPhase = Literal["awaiting_decision", "pended", "approved", "denied", "withdrawn"]
Route = Literal["prior_approval", "exception_review"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Totals(_Model):
    """Dollars per category, as summed up from receipts."""

    meals: Decimal = Decimal("0")
    lodging: Decimal = Decimal("0")
    mileage: Decimal = Decimal("0")
    parking: Decimal = Decimal("0")
    tolls: Decimal = Decimal("0")
    fares: Decimal = Decimal("0")

    def total(self) -> Decimal:
        return sum((getattr(self, c) for c in CATEGORIES), Decimal("0"))


class Amounts(Totals):
    """Dollars per category that a person enters: an estimate or an approval."""

    meals: Money = Decimal("0")
    lodging: Money = Decimal("0")
    mileage: Money = Decimal("0")
    parking: Money = Decimal("0")
    tolls: Money = Decimal("0")
    fares: Money = Decimal("0")


class Traveller(_Model):
    relationship: Relationship


# ---- meals and lodging ------------------------------------------------------------


class MealsLodgingRequest(_Model):
    travel_start: date
    travel_end: date
    travellers: list[Traveller] = Field(min_length=1, max_length=20,
                                        description="everyone travelling, the child too if the child travels")
    nights: int = Field(0, ge=0, le=MAX_TRIP_DAYS)
    round_trip_miles: Decimal = Field(Decimal("0"), ge=0, le=5000, decimal_places=1)
    condition_id: str = Field(pattern=r"^C[0-9]{1,3}$", description="the CCS condition the trip treats")
    treatment: str = Field(min_length=3, max_length=200)
    emergency: bool = False
    estimated: Amounts

    @field_validator("travel_end")
    @classmethod
    def _end(cls, v: date, info: ValidationInfo) -> date:
        start = info.data.get("travel_start")
        if start and v < start:
            raise ValueError("travel_end is before travel_start")
        if start and (v - start).days > MAX_TRIP_DAYS:
            raise ValueError(f"a trip may last at most {MAX_TRIP_DAYS} days")
        return v

    @field_validator("travellers")
    @classmethod
    def _one_child(cls, v: list[Traveller]) -> list[Traveller]:
        if sum(t.relationship == "child" for t in v) > 1:
            raise ValueError("the child can be listed once")
        return v

    @field_validator("nights")
    @classmethod
    def _nights(cls, v: int, info: ValidationInfo) -> int:
        start, end = info.data.get("travel_start"), info.data.get("travel_end")
        if start and end and v > (end - start).days:
            raise ValueError(f"{v} nights do not fit between {start} and {end} (at most {(end - start).days})")
        return v

    @property
    def days(self) -> int:
        return (self.travel_end - self.travel_start).days + 1


class ReceiptItem(_Model):
    """One expense. Mileage (gas) is claimed without a receipt; everything else has one."""

    category: Category
    amount: Decimal = Field(gt=0, le=MAX_AMOUNT, max_digits=8, decimal_places=2)
    spent_on: date


class Reimbursement(_Model):
    claimed: Totals
    payable: Amounts  # never above the approval, per category
    not_payable: Totals  # above the approval or a daily cap: more needs a new prior approval
    unreceipted: list[Category]  # approved categories with nothing claimed
    total: Decimal


class Payment(_Model):
    amount: Decimal
    paid_at: datetime


class PaymentInput(_Model):
    """Input of the ``pay_reimbursement`` activity."""

    request_id: str = Field(min_length=1, max_length=96)
    case_id: str = Field(min_length=1, max_length=64)
    amount: Decimal


# ---- service authorization requests ------------------------------------------------


class AuthorizationRequest(_Model):
    provider: str = Field(min_length=2, max_length=200)
    service: str = Field(min_length=3, max_length=300)
    code: str | None = Field(None, pattern=r"^([0-9]{4}[0-9A-Z]|[A-Z][0-9]{4})$",
                             description="CPT (5 characters, e.g. 99213) or HCPCS (letter and 4 digits, e.g. E0431)")
    urgency: Literal["routine", "expedited"] = "routine"
    condition_id: str = Field(pattern=r"^C[0-9]{1,3}$")
    justification: str | None = Field(None, max_length=2000)
    # "pharmacy" is refused with a pointer to Medi-Cal Rx (rules.authorization).
    service_type: Literal["medical", "therapy", "equipment", "pharmacy"] = "medical"


# ---- grievances ---------------------------------------------------------------------


class GrievanceRequest(_Model):
    """A family's complaint that is not an appeal of a Notice of Action."""

    about: Literal["delay", "provider", "decision", "service", "staff", "other"]
    summary: str = Field(min_length=3, max_length=2000, description="the complaint, in the family's words")
    # Health at risk (severe pain, possible loss of life, limb or major bodily function): 72 hours.
    expedited: bool = False


# ---- actions on requests (``ccs act``) ---------------------------------------------


class RequestAction(_Model):
    """Same shape as ``models.actions.Action`` (kept here so actions.py can import these)."""

    actor: Actor
    note: str | None = Field(None, max_length=2000)


class _OnRequest(RequestAction):
    request_id: str = Field(pattern=REQUEST_ID, description="routes the action to the request's workflow")


class _Decide(_OnRequest):
    decision: Outcome
    reason: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _reason(self):
        if self.decision in ("modify", "deny") and not self.reason:
            raise ValueError(f"a reason is required to {self.decision}: it goes into the Notice of Action")
        return self


class RequestMealsLodging(RequestAction):
    request: MealsLodgingRequest


class DecideMealsLodging(_Decide):
    approved: Amounts | None = Field(None, description="modify only: the amounts approved instead")

    @model_validator(mode="after")
    def _amounts(self):
        if self.decision == "modify" and self.approved is None:
            raise ValueError("modify needs the approved amounts")
        if self.decision != "modify" and self.approved is not None:
            raise ValueError(f"{self.decision} takes no amounts: approve grants the estimate, modify changes it")
        return self


class SubmitReceipts(_OnRequest):
    items: list[ReceiptItem] = Field(min_length=1, max_length=200)
    # The claim is complete: reimburse now. False keeps the request open for more receipts.
    final: bool = True


class RequestAuthorization(RequestAction):
    request: AuthorizationRequest


class DecideAuthorization(_Decide):
    approved_service: str | None = Field(None, min_length=3, max_length=300,
                                         description="modify only: what is authorized instead")

    @model_validator(mode="after")
    def _service(self):
        if (self.decision == "modify") != (self.approved_service is not None):
            raise ValueError("approved_service is given with modify, and only with modify")
        return self


class FileGrievance(RequestAction):
    request: GrievanceRequest


class ResolveGrievance(_OnRequest):
    resolution: str = Field(min_length=3, max_length=2000, description="what was found and done, for the family")


class ExtendAuthorization(_OnRequest):
    reason: str = Field(min_length=3, max_length=2000)


class RequestInformation(_OnRequest):
    """Pend a routine SAR: what is missing to decide, and from whom (no PHI beyond the case)."""

    information: str = Field(min_length=3, max_length=2000,
                             description="what is needed to decide and from whom, e.g. the surgeon's notes")


class RecordInformation(_OnRequest):
    """The information asked for arrived: the 5-working-day clock starts again from now."""


# ---- workflow inputs, state, status ---------------------------------------------------


class _RequestInput(_Model):
    request_id: str = Field(pattern=REQUEST_ID)
    case_id: str
    county: str
    case_manager: str | None = None
    family_address: str | None = None  # e-mail for notices; None sends a letter
    child_name: str | None = None  # printed on the family's letters
    preferred_language: str = "en"
    jurisdiction: str = "county"
    # Dependent county (new cases): the State CCS office decides the request, not the county.
    state_decides: bool = False
    policy: Policy
    conditions: list[Condition]
    requested_by: Actor


class MealsLodgingInput(_RequestInput):
    request: MealsLodgingRequest


class AuthorizationInput(_RequestInput):
    request: AuthorizationRequest


class GrievanceInput(_RequestInput):
    request: GrievanceRequest


class Decision(_Model):
    outcome: Outcome
    by: str
    role: Role
    at: datetime
    reason: str | None = None


class MealsLodgingDecision(Decision):
    approved: Amounts | None = None


class AuthorizationDecision(Decision):
    approved_service: str | None = None
    authorization_number: str | None = None
    valid_from: date | None = None
    valid_until: date | None = None


class _RequestStatus(_Model):
    request_id: str
    case_id: str
    requested_by: str
    received_at: datetime
    decision_due: datetime
    open_tasks: list[Task] = Field(default_factory=list)
    # Absolute times of the request's own timers (they survive replay and restarts).
    deadlines: dict[str, datetime] = Field(default_factory=dict)
    next_deadline: datetime | None = None  # the earliest due time of the open tasks
    notices_sent: list[str] = Field(default_factory=list)
    case_closed: bool = False
    outcome_note: str | None = None  # why the request closed as it did, in a case manager's words
    from_record: bool = False  # read from the case record in PostgreSQL, not the workflow


class MealsLodgingStatus(_RequestStatus):
    kind: Literal["meals_lodging"] = "meals_lodging"
    state: MealsLodgingPhase
    route: Route
    request: MealsLodgingRequest
    caps: dict[str, Decimal | None]  # None: at cost
    decision: MealsLodgingDecision | None = None
    receipts: list[ReceiptItem] = Field(default_factory=list)
    receipts_due: datetime | None = None
    reimbursement: Reimbursement | None = None
    payment: Payment | None = None


class AuthorizationStatus(_RequestStatus):
    kind: Literal["authorization"] = "authorization"
    state: AuthorizationPhase
    request: AuthorizationRequest
    extended: bool = False
    extension_reason: str | None = None
    # A pend: what was asked for, when, and when it arrived (the decision clock restarts then).
    information_requested: str | None = None
    pended_at: datetime | None = None
    information_received_at: datetime | None = None
    decision: AuthorizationDecision | None = None
    decided_by: Literal["county", "state"] = "county"


class GrievanceStatus(_RequestStatus):
    """``decision_due`` is when the grievance must be resolved."""

    kind: Literal["grievance"] = "grievance"
    state: GrievancePhase
    request: GrievanceRequest
    acknowledged_at: datetime | None = None
    resolution: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None


class _Internals(_Model):
    """What the workflow keeps besides its status."""

    county: str
    case_manager: str | None
    family_address: str | None
    child_name: str | None = None
    preferred_language: str = "en"
    jurisdiction: str = "county"
    policy: Policy
    seq: int = 0
    task_counter: int = 0
    pending_steps: list[StepRecord] = Field(default_factory=list)


class MealsLodgingState(MealsLodgingStatus, _Internals):
    expiring: bool = False  # paying what was receipted when the receipts deadline passed


class AuthorizationState(AuthorizationStatus, _Internals):
    pass


class GrievanceState(GrievanceStatus, _Internals):
    pass


class RequestSummary(_Model):
    """What a request tells its case on every change (signal ``request_changed``)."""

    request_id: str
    kind: RequestKind
    state: str
    summary: str
    next_deadline: datetime | None  # the earliest due time of the request's open tasks
    closed: bool


class RequestStart(_Model):
    """A request the case has accepted and will start as a child workflow."""

    workflow: Literal["MealsLodgingWorkflow", "ServiceAuthorizationWorkflow", "GrievanceWorkflow"]
    input: MealsLodgingInput | AuthorizationInput | GrievanceInput
    received_on: date | None = None  # the case's day it was asked for: the date its policy is taken on


# A request's status model by the infix of its ID (CASE-ml-1, CASE-sar-2, CASE-grv-3).
STATUS_BY_INFIX: dict[str, type[_RequestStatus]] = {
    "ml": MealsLodgingStatus, "sar": AuthorizationStatus, "grv": GrievanceStatus}


def request_status_model(request_id: str) -> type[_RequestStatus]:
    return STATUS_BY_INFIX[request_id.rsplit("-", 2)[-2]]


def _complete_case_models() -> None:
    from models import case

    names = {"RequestSummary": RequestSummary, "RequestStart": RequestStart}
    for model in (case.CaseStatus, case.CaseState, case.CaseInput):
        model.model_rebuild(_types_namespace=names)


_complete_case_models()
