"""Checks on a referral that need the date or the deployment's reference data."""

from __future__ import annotations

from datetime import date

from models.counties import find_county
from models.policy import Policy
from models.referral import Referral
from rules.ages import age_on


def referral_problems(referral: Referral, today: date, policy: Policy) -> dict[str, str]:
    """Field path -> what is wrong. Empty when the referral can be accepted."""
    problems: dict[str, str] = {}
    child = referral.child
    if find_county(child.county, policy.counties) is None:
        problems["child.county"] = f"unknown California county {child.county!r}"
    if child.date_of_birth > today:
        problems["child.date_of_birth"] = "date of birth is in the future"
    elif age_on(child.date_of_birth, today) >= policy.active.coverage_end_age:
        problems["child.date_of_birth"] = (
            f"the child is {policy.active.coverage_end_age} or older; CCS covers children under "
            f"{policy.active.coverage_end_age} (adults with listed genetic conditions: refer to GHPP)"
        )
    if referral.received_on is not None:
        if referral.received_on > today:
            problems["received_on"] = "the referral date is in the future"
        elif referral.received_on < child.date_of_birth:
            problems["received_on"] = "the referral date is before the date of birth"
    codes = [c.icd10 for c in referral.conditions]
    if len(set(codes)) != len(codes):
        problems["conditions"] = "the same ICD-10-CM code is listed twice"
    return problems
