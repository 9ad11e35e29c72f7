"""The annual enrollment fee (HSC 123900, 22 CCR 41674) from the recorded finances.

HSC 123900(f): no enrollment fee when the only services are diagnosis or medically
necessary therapy (the Medical Therapy Program), when the child has full Medi-Cal
benefits, or when the family's gross income is under 200% of the federal poverty level.
Otherwise DHCS's sliding scale by family size and income applies (policy ``[fees]``).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from models.case import Finances
from models.policy import FeePolicy


class FeeAssessment(BaseModel):
    model_config = ConfigDict(frozen=True)

    enrollment_fee: Decimal
    assessment_fee: Decimal
    basis: str

    @property
    def owed(self) -> Decimal:
        return self.enrollment_fee + self.assessment_fee


def poverty_guideline(family_size: int, policy: FeePolicy) -> Decimal:
    """100% of the federal poverty guideline for a family of ``family_size``."""
    return policy.poverty_guideline_first_person + policy.poverty_guideline_each_additional * (family_size - 1)


def _exemption(f: Finances) -> str | None:
    if f.program == "diagnosis_only":
        return "no fee: diagnosis only (HSC 123900(f)(1))"
    if f.program == "mtp":
        return "no fee: medically necessary therapy only (HSC 123900(f)(1))"
    if f.full_scope_medi_cal:
        return "no fee: full Medi-Cal benefits (HSC 123900(f)(2))"
    return None


def _sliding_scale(f: Finances, policy: FeePolicy) -> tuple[Decimal, str]:
    if f.family_size is None or f.gross_income is None:
        return Decimal("0"), "not computed: record the family size and gross income (HSC 123900(c), (d))"
    percent = f.gross_income * 100 / poverty_guideline(f.family_size, policy)
    if percent < policy.exempt_under_poverty_percent:
        return Decimal("0"), (f"no fee: gross income {percent:.0f}% of the poverty guideline, under "
                              f"{policy.exempt_under_poverty_percent:.0f}% (HSC 123900(f)(3))")
    fee = Decimal("0")
    for floor, amount in sorted(policy.enrollment_fee_bands):
        if percent >= floor:
            fee = amount
    return fee, f"sliding scale: gross income {percent:.0f}% of the poverty guideline for {f.family_size}"


def assess_fees(f: Finances, policy: FeePolicy) -> FeeAssessment:
    """The year's enrollment fee (exemption first, then the county's override, then the
    scale) and the county's assessment fee, which no exemption of HSC 123900 covers."""
    exemption = _exemption(f)
    if exemption:
        fee, basis = Decimal("0"), exemption
    elif f.enrollment_fee is not None:
        fee, basis = f.enrollment_fee, "set by the county (override)"
    else:
        fee, basis = _sliding_scale(f, policy)
    # County practice: a family with full Medi-Cal pays no county assessment fee either.
    assessment = Decimal("0") if f.full_scope_medi_cal else policy.assessment_fee
    return FeeAssessment(enrollment_fee=fee, assessment_fee=assessment, basis=basis)
