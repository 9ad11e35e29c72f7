"""Meals and lodging rules: request checks, routing, caps and reimbursement (no Temporal)."""

from datetime import date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from models.case import Condition
from models.policy import MealsLodgingPolicy, Policy
from models.requests import (
    Amounts,
    DecideAuthorization,
    DecideMealsLodging,
    ExtendAuthorization,
    MealsLodgingRequest,
    ReceiptItem,
    RequestAuthorization,
    RequestMealsLodging,
    SubmitReceipts,
)
from rules.reimbursement import (
    approval_caps,
    approval_problems,
    authorization_number,
    capped,
    condition_problems,
    meals_lodging_decision_due,
    meals_lodging_problems,
    meals_lodging_route,
    receipt_problems,
    receipts_due,
    reimbursement,
)

LA = ZoneInfo("America/Los_Angeles")
POLICY = Policy()
TODAY = date(2026, 11, 2)  # a Monday


def request(**kw) -> MealsLodgingRequest:
    data = dict(travel_start="2026-11-16", travel_end="2026-11-17", nights=1, round_trip_miles="300",
                travellers=[{"relationship": "child"}, {"relationship": "parent"}], condition_id="C1",
                treatment="pulmonology clinic visit", estimated={"meals": "60", "lodging": "150", "mileage": "63"})
    data.update(kw)
    return MealsLodgingRequest.model_validate(data)


def receipt(category, amount, on="2026-11-16") -> ReceiptItem:
    return ReceiptItem(category=category, amount=D(amount), spent_on=date.fromisoformat(on))


# ---- the request -------------------------------------------------------------------


@pytest.mark.parametrize("change, field", [
    (dict(travellers=[]), "travellers"),
    (dict(travel_end="2026-11-15"), "travel_end"),
    (dict(nights=3), "nights"),
    (dict(travellers=[{"relationship": "child"}, {"relationship": "child"}]), "travellers"),
    (dict(travellers=[{"relationship": "cousin"}]), "travellers.0.relationship"),
    (dict(estimated={"meals": "-5"}), "estimated.meals"),
    (dict(estimated={"lodging": "1000000"}), "estimated.lodging"),
    (dict(estimated={"meals": "10.005"}), "estimated.meals"),
    (dict(round_trip_miles="90000"), "round_trip_miles"),
    (dict(travel_end="2027-06-01"), "travel_end"),
])
def test_absurd_requests_are_field_errors(change, field):
    with pytest.raises(ValidationError) as e:
        request(**change)
    assert field in {".".join(str(p) for p in err["loc"]) for err in e.value.errors()}


def test_too_many_travellers_for_policy():
    five = [{"relationship": r} for r in ("child", "parent", "parent", "sibling", "sibling")]
    policy = Policy(meals_lodging=MealsLodgingPolicy(max_travellers=4))
    assert "travellers" in meals_lodging_problems(request(travellers=five), TODAY, policy)
    assert meals_lodging_problems(request(travellers=five), TODAY, POLICY) == {}


def test_non_emergency_after_travel_began_is_rejected():
    problems = meals_lodging_problems(request(travel_start="2026-10-30", travel_end="2026-11-03"), TODAY, POLICY)
    assert "only an emergency" in problems["travel_start"]


def test_same_day_request_is_accepted_for_exception_review():
    req = request(travel_start="2026-11-02", travel_end="2026-11-03")
    assert meals_lodging_problems(req, TODAY, POLICY) == {}
    assert meals_lodging_route(req, TODAY, POLICY) == "exception_review"


def test_emergency_may_be_requested_the_next_business_day():
    # Travel began Friday 30 Oct: Monday 2 Nov is the next business day.
    friday = request(travel_start="2026-10-30", travel_end="2026-11-01", nights=2, emergency=True)
    assert meals_lodging_problems(friday, date(2026, 11, 2), POLICY) == {}
    assert "too late" in meals_lodging_problems(friday, date(2026, 11, 3), POLICY)["travel_start"]
    # Travel began Wednesday 25 Nov 2026: Thanksgiving and the day after are not business days.
    wednesday = request(travel_start="2026-11-25", travel_end="2026-11-26", emergency=True)
    assert meals_lodging_problems(wednesday, date(2026, 11, 30), POLICY) == {}
    assert meals_lodging_problems(wednesday, date(2026, 12, 1), POLICY) != {}


def test_request_far_in_the_future_is_rejected():
    assert "travel_start" in meals_lodging_problems(request(travel_start="2028-01-01", travel_end="2028-01-02"),
                                                    TODAY, POLICY)


@pytest.mark.parametrize("start, emergency, route", [
    ("2026-11-09", False, "prior_approval"),  # 7 days ahead
    ("2026-11-07", False, "prior_approval"),  # exactly 5 days ahead
    ("2026-11-06", False, "exception_review"),  # 4 days ahead
    ("2026-11-16", True, "exception_review"),  # an emergency is never routine
])
def test_routing(start, emergency, route):
    req = request(travel_start=start, travel_end=start, nights=0, emergency=emergency)
    assert meals_lodging_route(req, TODAY, POLICY) == route


def test_decision_due_before_travel_for_prior_approval():
    received = datetime(2026, 11, 2, 9, 0, tzinfo=LA)
    req = request(travel_start="2026-11-07", travel_end="2026-11-07", nights=0)
    assert meals_lodging_decision_due(req, "prior_approval", received, POLICY) == received + timedelta(days=3)
    slow = Policy(meals_lodging=MealsLodgingPolicy(decision_within=timedelta(days=10)))
    assert meals_lodging_decision_due(req, "prior_approval", received, slow) == datetime(2026, 11, 7, tzinfo=LA)
    assert meals_lodging_decision_due(req, "exception_review", received, slow) == received + timedelta(days=10)


def test_receipts_due_60_days_after_travel_ends():
    assert receipts_due(request(), POLICY) == datetime(2027, 1, 17, tzinfo=LA)  # 18 Nov + 60 days


def test_condition_must_be_eligible_on_the_case():
    conds = [Condition(id="C1", icd10="E84.0", description="CF", referred_on=TODAY, referrer_kind="pcp",
                       status="eligible"),
             Condition(id="C2", icd10="Q90.9", description="x", referred_on=TODAY, referrer_kind="pcp")]
    assert condition_problems("C1", conds) == {}
    assert "not CCS-eligible" in condition_problems("C2", conds)["condition_id"]
    assert "not a condition of this case" in condition_problems("C7", conds)["condition_id"]


# ---- approval caps -------------------------------------------------------------------


def test_caps_per_person_per_day_per_night_and_mileage():
    req = request(travellers=[{"relationship": "child"}, {"relationship": "parent"}, {"relationship": "sibling"}],
                  travel_end="2026-11-18", nights=2)
    caps = approval_caps(req, POLICY)
    assert caps["meals"] == D("135.00")  # 3 people x 3 days x $15
    assert caps["lodging"] == D("300.00")  # 2 nights x $150
    assert caps["mileage"] == D("63.00")  # 300 miles x $0.21
    assert caps["parking"] is None and caps["tolls"] is None  # at cost


def test_mileage_cap_stops_at_max_miles():
    assert approval_caps(request(round_trip_miles="1500"), POLICY)["mileage"] == D("210.00")  # 1000 x 0.21


def test_amounts_above_caps_are_named_with_their_basis():
    problems = approval_problems(Amounts(meals=D("61"), lodging=D("150"), parking=D("500")), request(), POLICY)
    assert list(problems) == ["approved.meals"]
    assert "$60.00" in problems["approved.meals"] and "2 people x 2 days" in problems["approved.meals"]


def test_capped_lowers_to_policy_and_keeps_at_cost_items():
    got = capped(Amounts(meals=D("500"), lodging=D("90"), parking=D("40")), request(), POLICY)
    assert got == Amounts(meals=D("60.00"), lodging=D("90"), parking=D("40"))


def test_decision_payloads():
    actor = {"id": "cm.rivera", "role": "case_manager"}
    with pytest.raises(ValidationError, match="reason is required"):
        DecideMealsLodging(actor=actor, request_id="case-1-ml-1", decision="deny")
    with pytest.raises(ValidationError, match="modify needs"):
        DecideMealsLodging(actor=actor, request_id="case-1-ml-1", decision="modify", reason="too much")
    with pytest.raises(ValidationError):
        DecideMealsLodging(actor=actor, request_id="not a request", decision="approve")


# ---- reimbursement -------------------------------------------------------------------

APPROVED = Amounts(meals=D("60"), lodging=D("150"), mileage=D("63"), parking=D("20"), tolls=D("10"))


def test_full_claim_within_approval_is_paid_in_full():
    r = reimbursement(APPROVED, [receipt("meals", "28.50"), receipt("meals", "30", "2026-11-17"),
                                 receipt("lodging", "149.99"), receipt("mileage", "63"),
                                 receipt("parking", "12.50"), receipt("tolls", "7")], POLICY, people=2)
    assert r.total == D("290.99")
    assert r.not_payable.total() == 0 and r.unreceipted == []


def test_never_above_the_approval():
    r = reimbursement(APPROVED, [receipt("parking", "35"), receipt("tolls", "12"), receipt("mileage", "80")], POLICY)
    assert (r.payable.parking, r.payable.tolls, r.payable.mileage) == (D("20.00"), D("10.00"), D("63.00"))
    assert r.not_payable.parking == D("15.00") and r.not_payable.mileage == D("17.00")
    assert r.total == D("93.00")


def test_meals_capped_per_person_per_day():
    # Two people: at most $30 a day, even if the total approval is not used up.
    r = reimbursement(APPROVED, [receipt("meals", "45"), receipt("meals", "10", "2026-11-17")], POLICY, people=2)
    assert r.payable.meals == D("40.00")
    assert r.not_payable.meals == D("15.00")


def test_lodging_capped_per_night():
    approved = Amounts(lodging=D("300"))
    r = reimbursement(approved, [receipt("lodging", "180"), receipt("lodging", "100", "2026-11-17")], POLICY)
    assert r.payable.lodging == D("250.00")  # 150 + 100


def test_parking_and_tolls_at_cost():
    r = reimbursement(APPROVED, [receipt("parking", "4.25"), receipt("tolls", "6.75")], POLICY)
    assert (r.payable.parking, r.payable.tolls) == (D("4.25"), D("6.75"))


def test_gas_needs_no_receipt():
    # Mileage alone is a valid claim: no meals or lodging receipts, no fuel receipt.
    r = reimbursement(APPROVED, [receipt("mileage", "63")], POLICY)
    assert r.total == D("63.00")


def test_partial_receipts_pay_only_what_was_receipted_and_say_so():
    r = reimbursement(APPROVED, [receipt("meals", "22")], POLICY, people=2)
    assert r.total == D("22.00")
    assert r.unreceipted == ["lodging", "mileage", "parking", "tolls"]


def test_nothing_claimed_pays_nothing():
    assert reimbursement(APPROVED, [], POLICY).total == 0


def test_category_not_approved_pays_nothing():
    r = reimbursement(Amounts(meals=D("30")), [receipt("lodging", "120")], POLICY)
    assert r.total == 0 and r.not_payable.lodging == D("120.00")


@pytest.mark.parametrize("amount", ["0", "-1", "25000", "1.001"])
def test_zero_negative_and_absurd_receipts_rejected(amount):
    with pytest.raises(ValidationError):
        ReceiptItem(category="meals", amount=amount, spent_on=TODAY)


def test_receipts_outside_the_trip_or_in_the_future_rejected():
    items = [receipt("meals", "5", "2026-11-15"), receipt("meals", "5", "2026-11-17")]
    problems = receipt_problems(items, request(), today=date(2026, 11, 16))
    assert "outside the trip" in problems["items.0.spent_on"]
    assert "in the future" in problems["items.1.spent_on"]


def test_submit_receipts_needs_at_least_one_item():
    with pytest.raises(ValidationError):
        SubmitReceipts(actor={"id": "cm.rivera", "role": "case_manager"}, request_id="case-1-ml-1", items=[])


def test_authorization_number_is_stable_and_names_the_county():
    n = authorization_number("case-abc-sar-1", "San Luis Obispo")
    assert n == authorization_number("case-abc-sar-1", "San Luis Obispo")
    assert n.startswith("SAR-SANLUISOBISPO-") and n != authorization_number("case-abc-sar-2", "San Luis Obispo")


# ---- examples/actions ----------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "actions"


@pytest.mark.parametrize("name, model", [
    ("request_meals_lodging", RequestMealsLodging), ("decide_meals_lodging", DecideMealsLodging),
    ("submit_receipts", SubmitReceipts), ("request_authorization", RequestAuthorization),
    ("decide_authorization", DecideAuthorization), ("extend_authorization", ExtendAuthorization),
])
def test_examples_are_valid_payloads(name, model):
    model.model_validate_json((EXAMPLES / f"{name}.json").read_text())


def test_example_trip_is_within_caps_and_its_receipts_fit_it():
    req = RequestMealsLodging.model_validate_json((EXAMPLES / "request_meals_lodging.json").read_text()).request
    before = req.travel_start - timedelta(days=7)
    assert meals_lodging_problems(req, before, POLICY) == {}
    assert meals_lodging_route(req, before, POLICY) == "prior_approval"
    assert approval_problems(req.estimated, req, POLICY) == {}
    claim = SubmitReceipts.model_validate_json((EXAMPLES / "submit_receipts.json").read_text())
    assert receipt_problems(claim.items, req, req.travel_end) == {}
    assert reimbursement(req.estimated, claim.items, POLICY, people=len(req.travellers)).total == D("265.35")
