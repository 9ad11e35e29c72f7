"""Case-manager actions: one payload model each, and the stages and roles each fits.

An action is a Temporal update named after it (``ccs act CASE ACTION --data FILE``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator

from models.base import Typed
from models.case import Actor, Finances, Role
from models.referral import Referral
from models.request_kinds import REQUEST_ACTIONS, REQUEST_ROLES  # noqa: F401 (re-exported)
from models.requests import FileGrievance, RequestAuthorization, RequestMealsLodging

STAFF: tuple[Role, ...] = ("case_manager", "supervisor")
CASE_ID = re.compile(r"^case-[0-9a-f]{20}$")


class Action(Typed):
    actor: Actor
    note: str | None = Field(None, max_length=2000)


class Refer(Action):
    """A (further) referral of the same child: adds its conditions to the case."""

    referral: Referral
    # Set by the client: a retried or repeated submission of the same referral changes nothing.
    referral_id: str = Field(min_length=8, max_length=64)
    # Set by the client from the identity index: open cases of a child with the same name and
    # date of birth but another Medi-Cal number; each gets a possible_duplicate task.
    possible_duplicate_of: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("possible_duplicate_of")
    @classmethod
    def _case_ids(cls, v: list[str]) -> list[str]:
        if any(not CASE_ID.match(c) for c in v):
            raise ValueError("each entry must be a case ID (case-...)")
        return v


# Dates a person records default to today (California time) when left out.
class RecordApplication(Action):
    received_on: date | None = None


class RecordRecords(Action):
    received_on: date | None = None


class RecordEligibility(Action):
    finances: Finances


class RecordMedicalDetermination(Action):
    condition_id: str = Field(pattern=r"^C[0-9]{1,3}$")
    eligible: bool
    reason: str = Field(min_length=1, max_length=2000)


class FileAppeal(Action):
    filed_on: date | None = None
    grounds: str = Field(min_length=1, max_length=2000)


class FileConditionAppeal(Action):
    condition_id: str = Field(pattern=r"^C[0-9]{1,3}$")
    filed_on: date | None = None
    grounds: str = Field(min_length=1, max_length=2000)


class DecideConditionAppeal(Action):
    condition_id: str = Field(pattern=r"^C[0-9]{1,3}$")
    outcome: Literal["overturned", "upheld"]
    reason: str = Field(min_length=1, max_length=2000)


class RecordConditionFairHearing(Action):
    """The State fair hearing decision on a condition's upheld appeal."""

    condition_id: str = Field(pattern=r"^C[0-9]{1,3}$")
    requested_on: date = Field(description="when the family asked for the hearing (within its window)")
    outcome: Literal["overturned", "upheld"]


class DecideAppeal(Action):
    outcome: Literal["overturned", "upheld"]
    reason: str = Field(min_length=1, max_length=2000)


class RequestFairHearing(Action):
    requested_on: date | None = None


class RecordFairHearingDecision(Action):
    outcome: Literal["overturned", "upheld"]


class AssignCaseManager(Action):
    case_manager: str = Field(pattern=r"^[A-Za-z0-9._@-]{1,64}$")


class RecordRenewal(Action):
    finances: Finances


class TransferCounty(Action):
    county: str = Field(min_length=1, max_length=60)


class RecordFeePayment(Action):
    paid_on: date | None = None
    amount: Decimal = Field(gt=0, le=100_000)


class CompleteTask(Action):
    task_id: str = Field(pattern=r"^T[0-9]{1,6}$")


class CloseCase(Action):
    reason: Literal["moved_out_of_state", "family_withdrew"]


class ConfirmSameChild(Action):
    """A supervisor's decision on a possible duplicate: one child. The newer case's open
    conditions move to the older case; the newer case closes as merged."""

    other_case_id: str = Field(pattern=CASE_ID.pattern)


class ConfirmDifferentChildren(Action):
    """A supervisor's decision on a possible duplicate: two children, two cases."""

    other_case_id: str = Field(pattern=CASE_ID.pattern)
class AddNote(Action):
    """A case note: a phone call, a visit or any contact worth keeping on the case."""

    contact: Literal["phone_call", "email", "in_person", "letter", "other"]
    note: str = Field(min_length=1, max_length=2000, description="what was said or done")


@dataclass(frozen=True)
class ActionSpec:
    model: type[Action]
    stages: tuple[str, ...]
    roles: tuple[Role, ...]
    summary: str


OPEN = ("intake", "records", "eligibility", "medical_review", "denied", "appeal", "active")

ACTIONS: dict[str, ActionSpec] = {
    "refer": ActionSpec(Refer, OPEN, ("case_manager", "supervisor", "intake_clerk"), "refer the child for another condition"),
    "record_application": ActionSpec(RecordApplication, ("intake",), (*STAFF, "intake_clerk"), "the signed application from the family"),
    "record_records": ActionSpec(RecordRecords, ("records",), (*STAFF, "intake_clerk"), "medical records from the provider"),
    "record_eligibility": ActionSpec(RecordEligibility, ("eligibility",), STAFF, "the residential and financial determination"),
    "record_medical_determination": ActionSpec(
        RecordMedicalDetermination, ("medical_review", "active"), ("medical_consultant", "state_reviewer"),
        "the medical determination of each referred condition",
    ),
    "file_appeal": ActionSpec(FileAppeal, ("denied",), STAFF, "an appeal of the Notice of Action, or the end of the appeal window"),
    "decide_appeal": ActionSpec(DecideAppeal, ("appeal",), ("supervisor", "state_reviewer"), "the answer to the appeal"),
    "request_fair_hearing": ActionSpec(RequestFairHearing, ("appeal",), STAFF, "a fair hearing request, or the end of its window"),
    "record_fair_hearing_decision": ActionSpec(RecordFairHearingDecision, ("appeal",), STAFF, "the fair hearing decision"),
    "file_condition_appeal": ActionSpec(FileConditionAppeal, ("active",), STAFF,
                                        "an appeal of one condition's denial on an active case"),
    "decide_condition_appeal": ActionSpec(DecideConditionAppeal, ("active",), ("supervisor",),
                                          "the answer to a condition's appeal"),
    "record_condition_fair_hearing": ActionSpec(RecordConditionFairHearing, ("active",), STAFF,
                                                "the fair hearing decision on a condition's appeal"),
    "assign_case_manager": ActionSpec(AssignCaseManager, OPEN, STAFF, "a case manager"),
    "record_renewal": ActionSpec(RecordRenewal, ("active",), STAFF, "the annual renewal"),
    "transfer_county": ActionSpec(TransferCounty, OPEN, STAFF, "a county transfer"),
    "record_fee_payment": ActionSpec(RecordFeePayment, ("active",), STAFF, "the enrollment fee"),
    "complete_task": ActionSpec(CompleteTask, OPEN, (*STAFF, "medical_consultant", "state_reviewer", "intake_clerk"), "an open task to be completed"),
    "close_case": ActionSpec(CloseCase, OPEN, STAFF, "a closure"),
    "add_note": ActionSpec(AddNote, OPEN, (*STAFF, "intake_clerk"), "a case note"),
    "request_meals_lodging": ActionSpec(RequestMealsLodging, ("active",), STAFF, "a meals and lodging request"),
    "request_authorization": ActionSpec(RequestAuthorization, ("active",), (*STAFF, "medical_consultant"),
                                        "a service authorization request"),
    "file_grievance": ActionSpec(FileGrievance, OPEN, (*STAFF, "intake_clerk"), "a family's grievance"),
    "confirm_same_child": ActionSpec(ConfirmSameChild, OPEN, ("supervisor",), "a decision on a possible duplicate"),
    "confirm_different_children": ActionSpec(ConfirmDifferentChildren, OPEN, ("supervisor",),
                                             "a decision on a possible duplicate"),
}

# Actions on one request of a case (REQUEST_ACTIONS, REQUEST_ROLES) go to the request's own
# workflow (data.request_id); they are declared with their kind in models/request_kinds.py.

# What each stage waits for, in a case manager's words.
WAITING_FOR: dict[str, str] = {
    "intake": "the signed application from the family (record_application)",
    "records": "medical records from the referring provider (record_records)",
    "eligibility": "the residential and financial determination (record_eligibility)",
    "medical_review": "the medical determination of each pending condition (record_medical_determination)",
    "denied": "an appeal within the appeal window (file_appeal), or the window to end",
    "appeal": "the answer to the appeal (decide_appeal), or a fair hearing (request_fair_hearing, record_fair_hearing_decision)",
    "active": "case management: renewals, new conditions, transfers and tasks",
    "closed": "nothing: the case is closed",
}
