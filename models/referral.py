"""The referral: what anyone (parent, provider, hospital, plan) sends to open a case."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import Field, field_validator

from models.base import Typed as _Model

from letters.catalog import PREFERRED

ReferrerKind = Literal["parent", "self", "pcp", "specialist", "hospital", "health_plan", "other"]

_CIN = re.compile(r"^[0-9]{8}[A-Z]$")


class Contact(_Model):
    name: str | None = Field(None, max_length=200)
    organization: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Child(_Model):
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date
    county: str = Field(min_length=1, max_length=60, description="county of residence")
    cin: str | None = Field(None, description="Medi-Cal client index number: 8 digits and a letter")
    guardian: Contact | None = None
    preferred_language: Literal[PREFERRED] = Field(  # type: ignore[valid-type]
        "en", description="the family's language for letters: en, es, or a tagline language code")

    @field_validator("cin")
    @classmethod
    def _cin(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        v = v.upper()
        if not _CIN.match(v):
            raise ValueError("a Medi-Cal number (CIN) is 8 digits followed by a letter")
        return v


_ICD = None


def icd10_codes():
    """The ICD-10-CM code set (simple-icd-10-cm), loaded on first use: it takes seconds, and
    `ccs show` or `ccs stuck` never need it. Workers load it at start (build_worker), so
    workflows, which may not import it in their sandbox, find it loaded."""
    global _ICD
    if _ICD is None:
        import simple_icd_10_cm

        _ICD = simple_icd_10_cm
    return _ICD


def normalize_icd10(code: str) -> str:
    """``q909`` or ``Q90.9`` -> ``Q90.9``; raises ValueError if not an ICD-10-CM code."""
    icd = icd10_codes()
    raw = code.strip().upper()
    if not raw or not icd.is_valid_item(raw):
        raise ValueError(f"{code!r} is not an ICD-10-CM code (e.g. Q90.9, E84.0)")
    return icd.add_dot(raw) if "." not in raw else raw


class ConditionReferral(_Model):
    icd10: str
    description: str = Field(min_length=1, max_length=500)

    @field_validator("icd10")
    @classmethod
    def _icd10(cls, v: str) -> str:
        return normalize_icd10(v)


class Referrer(Contact):
    kind: ReferrerKind


class MediCal(_Model):
    full_scope: bool
    share_of_cost: bool = False
    # The child's Medi-Cal managed care plan, e.g. "Kaiser Permanente": in a Whole Child Model
    # county it decides who manages the case (rules.case_management).
    plan: str | None = Field(None, min_length=1, max_length=100)


class Referral(_Model):
    child: Child
    referrer: Referrer
    conditions: list[ConditionReferral] = Field(min_length=1, max_length=20)
    medi_cal: MediCal
    records_attached: bool = False
    received_on: date | None = Field(None, description="defaults to today (California time)")
