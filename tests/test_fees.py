"""The annual enrollment fee by rule (HSC 123900(f) exemptions; DHCS's sliding scale as
policy) and the county's assessment fee (Placer County FAQ), pure and on a live case."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.case import Finances
from models.policy import FeePolicy
from rules.fees import assess_fees, poverty_guideline
from starters.client import CcsError
from tests.conftest import INTAKE
from tests.helpers import CM, act, referral
from tests.test_dependent_county import replays
from tests.test_lifecycle import FULL_SCOPE, to_active

POLICY = FeePolicy()


def finances(**kw) -> Finances:
    return Finances(residential_in_county=True, **kw)


def test_poverty_guideline_grows_per_person():
    # 2025 HHS guideline (policy source): $15,650 for one, $5,500 per additional person.
    assert poverty_guideline(1, POLICY) == Decimal("15650")
    assert poverty_guideline(4, POLICY) == Decimal("32150")


@pytest.mark.parametrize("kw, why", [
    ({"program": "diagnosis_only"}, "diagnosis only (HSC 123900(f)(1))"),
    ({"program": "mtp"}, "therapy only (HSC 123900(f)(1))"),
    ({"full_scope_medi_cal": True, "share_of_cost": True}, "full Medi-Cal benefits (HSC 123900(f)(2))"),
])
def test_exemptions_of_hsc_123900_win_even_over_a_typed_fee(kw, why):
    fees = assess_fees(finances(family_size=3, gross_income=Decimal("500000"), enrollment_fee=Decimal("80"), **kw),
                       POLICY)
    assert fees.enrollment_fee == 0 and why in fees.basis


def test_under_200_percent_of_poverty_pays_nothing():
    # A family of 4 at $64,299: just under 200% of $32,150 (HSC 123900(f)(3)).
    fees = assess_fees(finances(family_size=4, gross_income=Decimal("64299"), family_agi=Decimal("60000")), POLICY)
    assert fees.enrollment_fee == 0 and "HSC 123900(f)(3)" in fees.basis


def test_sliding_scale_by_family_size_and_income():
    at_200 = assess_fees(finances(family_size=4, gross_income=Decimal("64300")), POLICY)
    assert at_200.enrollment_fee == Decimal("20")
    rich = assess_fees(finances(family_size=2, gross_income=Decimal("200000")), POLICY)
    assert rich.enrollment_fee == Decimal("100") and "sliding scale" in rich.basis
    # The same income is under 200% for a family of 8: no fee.
    big = assess_fees(finances(family_size=8, gross_income=Decimal("100000")), POLICY)
    assert big.enrollment_fee == 0


def test_typed_fee_is_an_override_and_missing_facts_are_said():
    assert assess_fees(finances(enrollment_fee=Decimal("35")), POLICY).basis == "set by the county (override)"
    unknown = assess_fees(finances(family_agi=Decimal("38000")), POLICY)
    assert unknown.enrollment_fee == 0 and unknown.basis.startswith("not computed: record the family size")


def test_assessment_fee_is_county_practice():
    placer = FeePolicy(assessment_fee=Decimal("20"))
    fees = assess_fees(finances(family_size=3, gross_income=Decimal("30000")), placer)
    assert (fees.enrollment_fee, fees.assessment_fee, fees.owed) == (0, Decimal("20"), Decimal("20"))
    assert assess_fees(finances(full_scope_medi_cal=True), placer).owed == 0


async def test_active_case_owes_the_computed_fee_and_medi_cal_owes_none(ts_worker):
    env, cases = ts_worker
    status = await cases.refer(referral(first_name="Scale"), INTAKE)
    await to_active(cases, status.case_id, finances={
        "residential_in_county": True, "family_agi": "150000", "expected_annual_cost": "40000",
        "family_size": 3, "gross_income": "160000"})
    status = await cases.show(status.case_id)
    assert status.enrollment_fee.amount == Decimal("100") and "sliding scale" in status.enrollment_fee.basis
    assert "enrollment_fee" in status.deadlines

    status = await cases.refer(referral(first_name="Medical"), INTAKE)
    await to_active(cases, status.case_id, finances=FULL_SCOPE)
    status = await cases.show(status.case_id)
    assert status.enrollment_fee.amount == 0 and "HSC 123900(f)(2)" in status.enrollment_fee.basis
    assert "enrollment_fee" not in status.deadlines
    with pytest.raises(CcsError, match="no enrollment fee is owed"):
        await cases.act(status.case_id, "record_fee_payment", act(CM, amount="20"))
    await replays(env, status.case_id)
