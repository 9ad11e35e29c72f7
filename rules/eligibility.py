"""Residential and financial eligibility (22 CCR 41519, HSC 123870)."""

from __future__ import annotations

from models.case import EligibilityResult, Finances
from models.policy import EligibilityPolicy

# No income test for these (SPEC §1, financial).
NO_INCOME_TEST = {"diagnosis_only", "mtp", "hrif", "adopted_known_condition"}


def financially_eligible(f: Finances, policy: EligibilityPolicy) -> tuple[bool, str]:
    if f.program in NO_INCOME_TEST:
        return True, f"no income test for {f.program}"
    if f.full_scope_medi_cal and not f.share_of_cost:
        return True, "full-scope Medi-Cal with no share of cost"
    if f.family_agi is None:
        return False, "family AGI not recorded"
    if f.family_agi <= policy.agi_limit:
        return True, f"family AGI at or under ${policy.agi_limit:,.0f}"
    if f.expected_annual_cost is not None and f.expected_annual_cost > policy.cost_share_of_agi * f.family_agi:
        return True, f"expected yearly cost of care over {policy.cost_share_of_agi:.0%} of AGI"
    return False, f"family AGI over ${policy.agi_limit:,.0f} and cost of care not over {policy.cost_share_of_agi:.0%} of AGI"


def residential_financial(f: Finances, policy: EligibilityPolicy) -> EligibilityResult:
    financial, basis = financially_eligible(f, policy)
    if not f.residential_in_county:
        basis = "parent or guardian does not live in the county"
    return EligibilityResult(
        eligible=f.residential_in_county and financial,
        residential=f.residential_in_county,
        financial=financial,
        basis=basis,
    )
