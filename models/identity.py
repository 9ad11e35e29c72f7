"""Identity shapes: what a referral is answered, and what two cases of a possible
duplicate tell each other (signals between their workflows)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from models.base import Model as _Model

from models.case import Actor, CaseStatus
from models.referral import ReferrerKind

# How the identity index placed a referral (rules/identity.py).
IdentityOutcome = Literal["new_case", "same_cin", "same_name_dob", "cin_added", "possible_duplicate"]


class ReferResult(_Model):
    """The case's answer to the `refer` update."""

    status: CaseStatus
    duplicate_referral: bool  # nothing new: this referral (or every condition in it) was already on the case
    conditions_added: list[str] = Field(default_factory=list)


class ReferralAnswer(_Model):
    """What `ccs refer` and the API answer: the case, and how the referral reached it."""

    case_id: str
    stage: str
    duplicate_referral: bool
    identity: IdentityOutcome | None  # None without an identity index (no database)
    possible_duplicate_of: list[str] = Field(default_factory=list)
    conditions_added: list[str] = Field(default_factory=list)
    status: CaseStatus


class DuplicateFlag(_Model):
    """Signal `possible_duplicate`: a newer case of a child with the same name and DOB."""

    case_id: str
    opened_at: datetime


class MovedCondition(_Model):
    icd10: str
    description: str
    referred_on: date
    referrer_kind: ReferrerKind


class DuplicateResolved(_Model):
    """Signal `duplicate_resolved`: a supervisor decided on the possible duplicate."""

    case_id: str  # the case that sends it
    decision: Literal["different_children", "same_child"]
    kept_case_id: str | None = None  # same child: the case that stays open
    conditions: list[MovedCondition] = Field(default_factory=list)  # sent by the case merged away
    by: Actor
