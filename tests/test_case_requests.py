"""Meals and lodging, and service authorizations, as requests of a real case: started as
child workflows by the case, acted on through the same client, shown in the case."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from activities.tables import PaymentRow
from starters.client import CcsError
from tests.conftest import INTAKE
from tests.helpers import CM, MC, SUP, act, referral, settle
from tests.test_lifecycle import to_active

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "actions"


def example(name: str, **changes) -> dict:
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    data.update(changes)
    return data


async def active_case(cases) -> str:
    status = await cases.refer(referral(first_name="Traveller"), INTAKE)
    await to_active(cases, status.case_id)
    return status.case_id


def trip(today, days_ahead: int = 10) -> dict:
    request = example("request_meals_lodging")["request"]
    start = today + timedelta(days=days_ahead)
    return dict(request, travel_start=start.isoformat(), travel_end=(start + timedelta(days=1)).isoformat())


async def request_state(cases, request_id: str, state: str):
    return await settle(cases, request_id, lambda r: r.state == state)


async def test_family_trip_from_request_to_reimbursement(ts_worker, sessions):
    env, cases = ts_worker
    cid = await active_case(cases)
    today = (await cases.show(cid)).referral_date
    status = await cases.act(cid, "request_meals_lodging", act(CM, request=trip(today)))
    rid = status.requests[0].request_id
    assert rid == f"{cid}-ml-1"
    req = await settle(cases, rid, lambda r: r.state != "starting")
    assert req.route == "prior_approval"
    req = await cases.act(cid, "decide_meals_lodging", example("decide_meals_lodging", request_id=rid))
    assert req.state == "approved"
    # Receipts before the trip ends are refused; after it, they are paid exactly once.
    await env.sleep(timedelta(days=12))
    items = [dict(i, spent_on=trip(today)["travel_start"]) for i in example("submit_receipts")["items"]]
    req = await cases.act(cid, "submit_receipts", example("submit_receipts", request_id=rid, items=items))
    req = await settle(cases, rid, lambda r: r.payment is not None)
    async with sessions() as s:
        paid = (await s.scalars(select(PaymentRow.amount).where(PaymentRow.request_id == rid))).all()
    assert paid == [req.payment.amount] and Decimal("0") < req.payment.amount
    status = await settle(cases, cid, lambda s: s.requests[0].closed)
    assert status.stage == "active"


async def test_request_rules_are_checked_by_the_case(ts_worker):
    env, cases = ts_worker
    cid = await active_case(cases)
    today = (await cases.show(cid)).referral_date
    with pytest.raises(CcsError, match="not a condition of this case"):
        await cases.act(cid, "request_meals_lodging", act(CM, request=dict(trip(today), condition_id="C9")))
    with pytest.raises(CcsError) as err:
        await cases.act(cid, "request_meals_lodging", act(CM, request=dict(trip(today), travellers=[])))
    assert "request.travellers" in err.value.fields
    with pytest.raises(CcsError, match="travel_start"):
        await cases.act(cid, "request_meals_lodging", act(CM, request=trip(today, days_ahead=-20)))
    with pytest.raises(CcsError, match="belongs to another case|not a request of case"):
        await cases.act(cid, "decide_meals_lodging", example("decide_meals_lodging", request_id="case-x-ml-1"))
    assert (await cases.show(cid)).requests == []


async def test_request_on_a_case_that_is_not_active_is_refused(ts_worker):
    env, cases = ts_worker
    status = await cases.refer(referral(first_name="Early"), INTAKE)
    with pytest.raises(CcsError, match="does not fit a case in stage 'intake'"):
        await cases.act(status.case_id, "request_authorization", example("request_authorization"))


async def test_authorization_through_the_case_and_closing_the_case_withdraws_it(ts_worker):
    env, cases = ts_worker
    cid = await active_case(cases)
    status = await cases.act(cid, "request_authorization", example("request_authorization"))
    rid = status.requests[0].request_id
    sar = await settle(cases, rid, lambda r: r.state == "awaiting_decision")
    status = await settle(cases, cid, lambda s: s.requests[0].next_deadline is not None)
    assert status.next_deadline <= sar.decision_due
    with pytest.raises(CcsError):  # an intake clerk cannot decide
        await cases.act(cid, "decide_authorization", example("decide_authorization", request_id=rid,
                                                             actor={"id": "clerk", "role": "intake_clerk"}))
    second = (await cases.act(cid, "request_authorization", example("request_authorization"))).requests
    rid2 = next(r.request_id for r in second if r.request_id != rid)
    sar = await cases.act(cid, "decide_authorization", example("decide_authorization", request_id=rid))
    assert sar.state == "approved" and sar.decision.authorization_number
    await settle(cases, rid2, lambda r: r.state == "awaiting_decision")
    await cases.act(cid, "close_case", act(CM, reason="moved_out_of_state"))
    withdrawn = await settle(cases, rid2, lambda r: r.state == "withdrawn")
    assert withdrawn.case_closed
    with pytest.raises(CcsError, match=rf"request {rid} is (closed \(approved\)|approved)"):
        await cases.act(cid, "decide_authorization", example("decide_authorization", request_id=rid))
