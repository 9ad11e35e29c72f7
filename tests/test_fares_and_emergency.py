"""Meals and lodging (SPEC §1): fares (bus, train, air) are a receipted category of their
own, and an emergency may be requested up to the first business day after the travel,
counted from the day the travel ended."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from models.policy import Policy
from models.requests import Amounts, ReceiptItem
from rules.reimbursement import approval_caps, approval_problems, meals_lodging_problems, reimbursement
from tests.test_reimbursement import request

POLICY = Policy()


def test_fares_are_approved_at_cost_and_paid_from_receipts_up_to_the_approval():
    trip = request(travel_start="2026-12-07", travel_end="2026-12-08", nights=1)
    assert approval_caps(trip, POLICY)["fares"] is None
    approved = Amounts(fares=D("180.00"), meals=D("30.00"))
    assert approval_problems(approved, trip, POLICY) == {}
    paid = reimbursement(approved, [
        ReceiptItem(category="fares", amount=D("120.00"), spent_on=date(2026, 12, 7)),  # train out
        ReceiptItem(category="fares", amount=D("95.00"), spent_on=date(2026, 12, 8)),   # train back
    ], POLICY, people=2)
    assert paid.payable.fares == D("180.00") and paid.not_payable.fares == D("35.00")
    assert paid.total == D("180.00") and paid.unreceipted == ["meals"]


def test_emergency_window_runs_from_the_end_of_travel():
    # Monday 2 to Wednesday 4 November 2026: Thursday 5 is the first business day after it
    # (counted from the start it would have been Tuesday 3).
    stay = request(travel_start="2026-11-02", travel_end="2026-11-04", nights=2, emergency=True)
    assert meals_lodging_problems(stay, date(2026, 11, 5), POLICY) == {}
    late = meals_lodging_problems(stay, date(2026, 11, 6), POLICY)["travel_start"]
    assert "ended 2026-11-04" in late and "by 2026-11-05" in late
    # Ending Tuesday 10 November: Veterans Day (11th) is a state holiday, so Thursday 12.
    holiday = request(travel_start="2026-11-09", travel_end="2026-11-10", nights=1, emergency=True)
    assert meals_lodging_problems(holiday, date(2026, 11, 12), POLICY) == {}
    assert meals_lodging_problems(holiday, date(2026, 11, 13), POLICY) != {}
