"""Who manages a CCS child's case: the county CCS office, or a Whole Child Model plan.

In a WCM county the child's Medi-Cal managed care plan manages the CCS care of its
members; a child not on full-scope Medi-Cal stays with the county (SPEC §1). Since
1 January 2024 Kaiser Permanente runs WCM for its own Medi-Cal members in Marin, Napa,
Orange, San Mateo, Santa Cruz, Solano, Sonoma and Yolo (DHCS, California Children's
Services Whole Child Model, https://www.dhcs.ca.gov/services/ccs/Pages/CCSWholeChildModel.aspx:
"effective for dates of service on or after January 1, 2024"), so the plan that manages
the case there is the child's, not the county's alone.
"""

from __future__ import annotations

from datetime import date

from models.counties import County

KAISER = "Kaiser Permanente"
KAISER_WCM_SINCE = date(2024, 1, 1)


def is_kaiser(plan: str | None) -> bool:
    return bool(plan) and "kaiser" in plan.casefold()


def managing_plan(county: County, full_scope_medi_cal: bool, plan: str | None, on: date) -> str | None:
    """The WCM plan that manages the case on ``on``, or None when the county CCS office does."""
    if county.model != "wcm" or not full_scope_medi_cal:
        return None
    if is_kaiser(plan) and county.kaiser_wcm and on >= KAISER_WCM_SINCE:
        return KAISER
    return county.wcm_plan


def case_management(county: County, full_scope_medi_cal: bool, plan: str | None, on: date) -> str:
    """Who manages the case, in words for the status: a plan, or the county CCS office."""
    return managing_plan(county, full_scope_medi_cal, plan, on) or f"{county.name} County CCS"
