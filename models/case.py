"""The case: one state model per workflow, the status it answers, and the step records
its activities persist (audit row, tasks, notices, read model)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from models.base import Model as _Model, Typed

from models.policy import Policy
from models.referral import Child, MediCal, Referral, Referrer, ReferrerKind

Stage = Literal["intake", "records", "eligibility", "medical_review", "denied", "appeal", "active", "closed"]
STAGES: tuple[str, ...] = ("intake", "records", "eligibility", "medical_review", "denied", "appeal", "active", "closed")
Jurisdiction = Literal["county", "state"]
Role = Literal["case_manager", "supervisor", "intake_clerk", "medical_consultant", "state_reviewer", "system",
               "auditor", "admin"]
ClosureReason = Literal[
    "aged_out", "enrollment_fee_unpaid", "moved_out_of_state", "family_withdrew", "not_eligible", "merged",
    "application_not_returned", "renewal_not_completed",
]
Program = Literal["treatment", "diagnosis_only", "mtp", "hrif", "adopted_known_condition"]
Recipient = Literal["family", "referrer", "case_manager", "supervisor", "reviewer"]

SYSTEM_ACTOR_ID = "ccs-timer"


class Actor(_Model):
    id: str = Field(pattern=r"^[A-Za-z0-9._@-]{1,64}$", description="the acting user's ID")
    role: Role


SYSTEM = Actor(id=SYSTEM_ACTOR_ID, role="system")


class Determination(_Model):
    eligible: bool
    decided_by: Jurisdiction
    decided_by_actor: str
    decided_on: date
    reason: str | None = None


class Appeal(_Model):
    filed_on: date
    grounds: str
    answer_due: datetime
    outcome: Literal["overturned", "upheld"] | None = None
    decided_on: date | None = None
    hearing_until: datetime | None = None
    hearing_requested_on: date | None = None


class ConditionAppeal(Appeal):
    """An appeal of one condition's denial on an active case: the case-level clocks. Upheld, a
    State fair hearing may be asked for until ``hearing_until``."""

    hearing_outcome: Literal["overturned", "upheld"] | None = None


class Condition(_Model):
    id: str
    icd10: str
    description: str
    referred_on: date
    referrer_kind: ReferrerKind
    status: Literal["pending", "eligible", "not_eligible"] = "pending"
    determination: Determination | None = None
    # Denied on an active case (its own Notice of Action): appealable on its own until then.
    appeal_until: datetime | None = None
    appeal: ConditionAppeal | None = None


class Finances(_Model):
    """What the case manager records for the residential and financial tests."""

    residential_in_county: bool
    program: Program = "treatment"
    full_scope_medi_cal: bool = False
    share_of_cost: bool = False
    # The child's Medi-Cal plan as found at this step; replaces the referral's (rules.case_management).
    medi_cal_plan: str | None = Field(None, min_length=1, max_length=100)
    family_agi: Decimal | None = Field(None, ge=0, le=100_000_000)
    expected_annual_cost: Decimal | None = Field(None, ge=0, le=100_000_000)
    # HSC 123900(c), (d): the people living on the family income, and its total gross income.
    family_size: int | None = Field(None, ge=1, le=30)
    gross_income: Decimal | None = Field(None, ge=0, le=100_000_000)
    # The enrollment fee is computed (rules.fees); a number here overrides it, e.g. a fee the
    # county director reduced or waived for undue hardship (22 CCR 41674(c)(3)(A)).
    enrollment_fee: Decimal | None = Field(None, ge=0, le=100_000)


class EligibilityResult(_Model):
    eligible: bool
    residential: bool
    financial: bool
    basis: str


class TaskRef(_Model):
    """A human step in the work queue."""

    id: str
    kind: str
    title: str
    assignee: str
    due: datetime
    opened_at: datetime


class Task(TaskRef):
    # Escalations already sent: "assignee" at the due time, "supervisor" after the grace period.
    escalated: list[str] = Field(default_factory=list)


class Notice(_Model):
    key: str  # idempotency key: one notice per key, ever
    kind: str
    to: Recipient
    address: str | None = None
    subject: str
    body: str
    # The letter's template data (letters.render.LetterData) for a notice to a family or a
    # provider; None for staff e-mails and for notices recorded before letters existed.
    letter: dict[str, Any] | None = None


class StageChange(_Model):
    stage: Stage
    at: datetime


class Denial(_Model):
    from_stage: Literal["eligibility", "medical_review", "renewal"]
    reason: str
    noa_sent_on: date | None = None
    appeal_until: datetime | None = None


class CaseNote(_Model):
    """A note a person kept on the case; its text lives only in the (encrypted) case state."""

    at: datetime
    by: str
    role: Role
    contact: str
    text: str


class Closure(_Model):
    reason: ClosureReason
    on: date
    by: str
    note: str | None = None
    merged_into: str | None = None  # reason "merged": the case kept for the same child


class PossibleDuplicate(_Model):
    """Another case with the same folded name and date of birth but a different CIN."""

    other_case_id: str
    other_is_older: bool
    task_id: str | None = None
    decision: Literal["open", "different_children", "same_child"] = "open"
    conditions_received: bool = False  # same child, this case kept: the other's conditions arrived


class EnrollmentFee(_Model):
    amount: Decimal
    due_on: date
    paid_on: date | None = None
    # How the amount was reached (the exemption, the band, or the override); None before rules.fees.
    basis: str | None = None
    assessment_fee: Decimal = Decimal("0")


class CaseRecord(_Model):
    """The read model row: no names, dates of birth or Medi-Cal numbers."""

    case_id: str
    stage: Stage
    stage_since: datetime
    county: str
    jurisdiction: Jurisdiction
    case_manager: str | None
    next_deadline: datetime | None
    conditions: list[str]
    opened_at: datetime
    closed_at: datetime | None = None
    closure_reason: str | None = None


class StepRecord(_Model):
    """Everything one step of the case changes outside the workflow, persisted at once."""

    case_id: str
    # The workflow that took the step: the case itself, or one of its request workflows.
    source: str
    seq: int
    at: datetime
    actor_id: str
    actor_role: Role
    action: str
    stage: Stage
    county: str
    detail: dict[str, Any] = Field(default_factory=dict)
    tasks_opened: list[TaskRef] = Field(default_factory=list)
    tasks_closed: list[str] = Field(default_factory=list)
    notices: list[Notice] = Field(default_factory=list)
    record: CaseRecord | None = None  # the case's read model; only the case workflow sets it


class RequestSummary(Typed):
    """What a request tells its case on every change (signal ``request_changed``)."""

    request_id: str
    kind: str  # a kind of models/request_kinds.py
    state: str
    summary: str
    next_deadline: datetime | None  # the earliest due time of the request's open tasks
    closed: bool


class RequestStart(Typed):
    """A request the case has accepted and will start as a child workflow: its workflow type
    and input (models/request_kinds.py), as the JSON the child workflow reads."""

    workflow: str
    input: dict[str, Any]
    received_on: date | None = None  # the case's day it was asked for: the date its policy is taken on


class Milestone(_Model):
    name: str
    at: datetime


class CaseStatus(_Model):
    case_id: str
    stage: Stage
    # The policy version the case follows (`ccs policy show` prints a file's); None: as referred.
    policy_version: str | None = None
    stage_since: datetime
    county: str
    jurisdiction: Jurisdiction
    # Who answers appeals and decides service authorization requests: in a dependent county
    # the State CCS regional office (22 CCR 42160(c)(2)); cases opened before this rule: county.
    appeals_and_sars_by: Jurisdiction = "county"
    wcm_plan: str | None
    case_management: str
    case_manager: str | None
    child: Child
    conditions: list[Condition]
    referral_date: date
    application_date: date | None
    eligibility: EligibilityResult | None
    denial: Denial | None
    appeal: Appeal | None
    renewal_due: date | None
    enrollment_fee: EnrollmentFee | None
    open_tasks: list[Task]
    deadlines: dict[str, datetime]
    next_deadline: datetime | None
    next_milestones: list[Milestone]
    stage_history: list[StageChange]
    notices_sent: list[str]
    closure: Closure | None
    waiting_for: str
    runs: int
    requests: list[RequestSummary] = Field(default_factory=list)
    possible_duplicates: list[PossibleDuplicate] = Field(default_factory=list)
    # Read from the case record in PostgreSQL: Temporal no longer holds the (closed) workflow.
    from_record: bool = False
    notes: list[CaseNote] = Field(default_factory=list)


class CaseInput(_Model):
    """Start input of ChildCaseWorkflow; after continue-as-new it carries the state."""

    case_id: str
    policy: Policy
    referral: Referral | None = None
    referral_id: str | None = None
    state: "CaseState | None" = None


class CaseState(_Model):
    case_id: str
    policy: Policy
    # The published policy version the case follows (workflows/policy_in_force.py); None: as referred.
    policy_version: str | None = None
    child: Child
    referrer: Referrer
    medi_cal: MediCal
    state_decides: bool = False  # the State answers appeals and decides SARs (dependent county)
    records_attached: bool
    county: str
    jurisdiction: Jurisdiction
    wcm_plan: str | None
    stage: Stage
    stage_since: datetime
    opened_at: datetime
    stage_history: list[StageChange]
    case_manager: str | None = None
    conditions: list[Condition]
    referral_ids: list[str] = Field(default_factory=list)
    # When this life of the case began. A child referred again after the case closed starts a
    # new workflow under the same case ID, numbering its steps from 1 again: notice keys carry
    # the life so the new life's letters are never taken for the first life's.
    life: str | None = None
    referral_date: date
    application_date: date | None = None
    records_received_on: date | None = None
    finances: Finances | None = None
    eligibility: EligibilityResult | None = None
    denial: Denial | None = None
    appeal: Appeal | None = None
    renewal_due: date | None = None
    enrollment_fee: EnrollmentFee | None = None
    milestones_done: list[str] = Field(default_factory=list)
    tasks: dict[str, Task] = Field(default_factory=dict)
    deadlines: dict[str, datetime] = Field(default_factory=dict)
    notices_sent: list[str] = Field(default_factory=list)
    closure: Closure | None = None
    seq: int = 0
    task_counter: int = 0
    pending_steps: list[StepRecord] = Field(default_factory=list)
    runs: int = 1
    # Meals-and-lodging and authorization requests: each runs as its own child workflow.
    requests: dict[str, RequestSummary] = Field(default_factory=dict)
    request_counter: int = 0
    requests_to_start: list[RequestStart] = Field(default_factory=list)
    possible_duplicates: dict[str, PossibleDuplicate] = Field(default_factory=dict)
    notes: list[CaseNote] = Field(default_factory=list)


