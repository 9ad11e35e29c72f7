"""Record histories of a case with every kind of request (meals and lodging, service
authorization, grievance), each request's own history too, for the replay test.

Written before the workflows moved onto one engine (workflows/engine.py), so the refactor
is checked against what the code before it recorded. Run from the repository root:

    python -m tests.histories.record_requests

Payloads are encrypted with the test-only key of tests/histories/record.py; people are synthetic.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.histories.record import HERE, time_skipping_cases


async def main() -> None:
    from tests.conftest import INTAKE
    from tests.helpers import CM, SUP, MC, act, referral, settle
    from tests.test_case_requests import example, trip

    async with time_skipping_cases() as (env, cases):
        s = await cases.refer(referral(first_name="Requests"), INTAKE)
        cid = s.case_id
        day = s.referral_date.isoformat()
        await cases.act(cid, "record_application", act(CM, received_on=day))
        await cases.act(cid, "record_records", act(CM, received_on=day))
        await cases.act(cid, "record_eligibility", act(CM, finances={"residential_in_county": True,
                                                                     "full_scope_medi_cal": True}))
        await cases.act(cid, "record_medical_determination", act(MC, condition_id="C1", eligible=True, reason="ok"))
        await cases.act(cid, "assign_case_manager", act(SUP, case_manager="cm.rivera"))
        # Meals and lodging: decided, receipted, paid.
        st = await cases.act(cid, "request_meals_lodging", act(CM, request=trip(s.referral_date)))
        ml = st.requests[-1].request_id
        await settle(cases, ml, lambda r: r.state == "awaiting_decision")
        await cases.act(cid, "decide_meals_lodging", example("decide_meals_lodging", request_id=ml))
        await env.sleep(timedelta(days=12))
        items = [dict(i, spent_on=trip(s.referral_date)["travel_start"]) for i in example("submit_receipts")["items"]]
        await cases.act(cid, "submit_receipts", example("submit_receipts", request_id=ml, items=items))
        await settle(cases, ml, lambda r: r.payment is not None)
        # A service authorization: pended, its information in, extended, timers fire, decided.
        st = await cases.act(cid, "request_authorization", example("request_authorization"))
        sar = st.requests[-1].request_id
        await settle(cases, sar, lambda r: r.state == "awaiting_decision")
        await cases.act(cid, "request_information", example("request_information", request_id=sar))
        await env.sleep(timedelta(days=1))
        await cases.act(cid, "record_information", example("record_information", request_id=sar))
        await env.sleep(timedelta(days=10))
        await cases.act(cid, "decide_authorization", example("decide_authorization", request_id=sar))
        # A grievance whose timers all fire, then resolved.
        st = await cases.act(cid, "file_grievance", example("file_grievance"))
        grv = st.requests[-1].request_id
        await settle(cases, grv, lambda r: r.state == "open")
        await env.sleep(timedelta(days=31))
        await cases.act(cid, "resolve_grievance", example("resolve_grievance", request_id=grv))
        # A second trip left undecided when the case closes: withdrawn.
        today = (await cases.show(cid)).referral_date
        st = await cases.act(cid, "request_meals_lodging", act(CM, request=trip(today + timedelta(days=45))))
        ml2 = st.requests[-1].request_id
        await settle(cases, ml2, lambda r: r.state == "awaiting_decision")
        await env.sleep(timedelta(days=3))
        await cases.act(cid, "close_case", act(CM, reason="family_withdrew"))
        await settle(cases, ml2, lambda r: r.state == "withdrawn")
        await env.sleep(timedelta(seconds=5))
        for wid, name in ((cid, "case"), (ml, "meals_lodging"), (sar, "authorization"), (grv, "grievance"),
                          (ml2, "meals_lodging_withdrawn")):
            history = await env.client.get_workflow_handle(wid).fetch_history()
            (HERE / f"before_engine_requests_{name}.json").write_text(history.to_json())


if __name__ == "__main__":
    asyncio.run(main())
