"""Whole Child Model per child: the child's Medi-Cal plan decides who manages the case
(DHCS CCS Whole Child Model page: Kaiser Permanente in eight WCM counties since
2024-01-01), pure and on a live case."""

from __future__ import annotations

from datetime import date

import pytest

from models.counties import COUNTIES
from rules.case_management import case_management
from tests.conftest import INTAKE
from tests.helpers import CM, act, referral

PHC = "Partnership HealthPlan of California"
AFTER, BEFORE = date(2024, 1, 1), date(2023, 12, 31)


@pytest.mark.parametrize("county, full_scope, plan, on, who", [
    ("Napa", True, "Kaiser Permanente", AFTER, "Kaiser Permanente"),
    ("Orange", True, "KAISER PERMANENTE (KFHP)", AFTER, "Kaiser Permanente"),
    ("Napa", True, "Kaiser Permanente", BEFORE, PHC),           # before Kaiser's WCM began
    ("Napa", True, None, AFTER, PHC),                            # the county's WCM plan
    ("Lake", True, "Kaiser Permanente", AFTER, PHC),             # Kaiser runs no WCM in Lake
    ("Kern", True, "Kaiser Permanente", AFTER, "Kern County CCS"),  # Classic county
    ("Napa", False, "Kaiser Permanente", AFTER, "Napa County CCS"),  # not on full-scope Medi-Cal
])
def test_who_manages_the_case(county, full_scope, plan, on, who):
    assert case_management(COUNTIES[county], full_scope, plan, on) == who


async def test_a_kaiser_child_in_napa_is_managed_by_kaiser_until_medi_cal_ends(ts_worker):
    env, cases = ts_worker
    data = referral(first_name="Kaia", county="Napa")
    data["medi_cal"] = {"full_scope": True, "plan": "Kaiser Permanente"}
    status = await cases.refer(data, INTAKE)
    assert (status.case_management, status.jurisdiction) == ("Kaiser Permanente", "county")
    cid, day = status.case_id, status.referral_date.isoformat()
    await cases.act(cid, "record_application", act(CM, received_on=day))
    await cases.act(cid, "record_records", act(CM, received_on=day))
    status = await cases.act(cid, "record_eligibility", act(CM, finances={
        "residential_in_county": True, "family_agi": "30000", "full_scope_medi_cal": False}))
    assert status.case_management == "Napa County CCS"
