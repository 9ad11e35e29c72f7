"""The program's rules as pure functions: no Temporal, no database."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from models.case import Finances
from models.policy import EligibilityPolicy, Policy, load_policy
from models.referral import Referral
from rules.ages import age_on, birthday, local_today, start_of_day
from rules.eligibility import residential_financial
from rules.referral import referral_problems
from tests.helpers import referral

P = EligibilityPolicy()


def fin(**kw) -> Finances:
    return Finances(residential_in_county=kw.pop("res", True), **kw)


@pytest.mark.parametrize("finances,eligible,basis", [
    (fin(full_scope_medi_cal=True), True, "full-scope Medi-Cal"),
    (fin(full_scope_medi_cal=True, share_of_cost=True, family_agi=Decimal("90000")), False, "AGI over"),
    (fin(family_agi=Decimal("40000")), True, "at or under $40,000"),
    (fin(family_agi=Decimal("40000.01")), False, "AGI over"),
    (fin(family_agi=Decimal("60000"), expected_annual_cost=Decimal("12000.01")), True, "over 20%"),
    (fin(family_agi=Decimal("60000"), expected_annual_cost=Decimal("12000")), False, "AGI over"),
    (fin(family_agi=Decimal("250000"), program="mtp"), True, "no income test for mtp"),
    (fin(family_agi=Decimal("250000"), program="diagnosis_only"), True, "no income test"),
    (fin(family_agi=Decimal("250000"), program="hrif"), True, "no income test"),
    (fin(family_agi=Decimal("250000"), program="adopted_known_condition"), True, "no income test"),
    (fin(), False, "AGI not recorded"),
    (fin(res=False, full_scope_medi_cal=True), False, "does not live in the county"),
])
def test_residential_and_financial_eligibility(finances, eligible, basis):
    result = residential_financial(finances, P)
    assert result.eligible is eligible
    assert basis in result.basis


def test_agi_limit_is_policy():
    policy = EligibilityPolicy(agi_limit=Decimal("50000"))
    assert residential_financial(fin(family_agi=Decimal("45000")), policy).eligible


def test_leap_day_child_turns_21_on_first_of_march():
    dob = date(2008, 2, 29)
    assert birthday(dob, 21) == date(2029, 3, 1)
    assert birthday(dob, 4) == date(2012, 2, 29)  # a leap year: the day itself
    assert age_on(dob, date(2029, 2, 28)) == 20
    assert age_on(dob, date(2029, 3, 1)) == 21
    assert age_on(date(2005, 6, 1), date(2026, 5, 31)) == 20
    assert age_on(date(2005, 6, 1), date(2026, 6, 1)) == 21


def test_today_is_the_california_date():
    # 05:00 UTC on 1 March is still 28 February in California.
    assert local_today(datetime(2027, 3, 1, 5, 0, tzinfo=timezone.utc), "America/Los_Angeles") == date(2027, 2, 28)
    assert start_of_day(date(2027, 7, 1), "America/Los_Angeles").utcoffset().total_seconds() == -7 * 3600


TODAY = date(2026, 11, 23)


def problems(**child) -> dict:
    return referral_problems(Referral.model_validate(referral(**child)), TODAY, Policy())


def test_referral_checks():
    assert problems() == {}
    assert "child.county" in problems(county="Atlantis")
    assert "future" in problems(date_of_birth="2027-01-01")["child.date_of_birth"]
    assert "21 or older" in problems(date_of_birth="2005-11-23")["child.date_of_birth"]
    assert problems(date_of_birth="2005-11-24") == {}  # 20 until tomorrow
    assert problems(county="los angeles county") == {}


def test_policy_file_overrides_and_rejects(tmp_path):
    f = tmp_path / "policy.toml"
    f.write_text('[intake]\nsecond_notice_after = "PT20S"\n[eligibility]\nagi_limit = "45000"\n')
    policy = load_policy(f)
    assert policy.intake.second_notice_after.total_seconds() == 20
    assert policy.eligibility.agi_limit == Decimal("45000")
    f.write_text('[intake]\nsecond_notise_after = "P1D"\n')
    with pytest.raises(Exception, match="second_notise_after"):
        load_policy(f)
    with pytest.raises(ValueError, match="not found"):
        load_policy(tmp_path / "missing.toml")
