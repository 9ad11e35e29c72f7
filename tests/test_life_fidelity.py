"""The scenario of the 21-year life benchmark (bench/life21.py, issue 15), in brief, on the
time-skipping server: one case in a dependent county with a Kaiser Permanente Whole Child Model
plan, a pended SAR, a refused pharmacy SAR, a grievance, a condition-level appeal and two policy
changes while the case runs (a dated change in the file, a policy published later); then every
history it wrote replays.

Sources: DHCS CCS Whole Child Model page (Kaiser in Napa since 2024-01-01); 22 CCR 42160(c)(2)
(the State in a dependent county); HSC 1367.01 (SAR pend); DHCS Medi-Cal Rx (pharmacy);
HSC 1368.01 (grievances); 22 CCR 42160/42180 (condition appeal); SPEC §1 (rates change on dates).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from temporalio.worker import Replayer

from activities.policy import publish_policy
from models.policy import Policy
from starters.client import CcsError
from tests.conftest import CONVERTER, INTAKE
from tests.helpers import CM, STATE, SUP, act, born_years_ago, referral, settle
from tests.test_case_requests import example, trip
from tests.test_lifecycle import to_active
from tests.test_policy_dates import unpublished  # noqa: F401  (fixture)
from workflows.registry import WORKFLOWS


def napa_dependent(change_on: date) -> Policy:
    # Napa is independent in the shipped data (its FAQ); no Kaiser WCM county is dependent, so
    # the deployment's override makes one, as Napa was before.
    return Policy.model_validate({
        "counties": {"Napa": {"jurisdiction": "dependent"}},
        "changes": [{"effective": change_on, "values": {"meals_lodging": {"meals_per_person_per_day": "18.00"}}}],
    })


async def _new_request(cases, cid, action: str, data: dict, state: str):
    before = {r.request_id for r in (await cases.show(cid)).requests}
    status = await cases.act(cid, action, data)
    rid = next(r.request_id for r in status.requests if r.request_id not in before)
    return await settle(cases, rid, lambda r: r.state == state)


async def test_a_dependent_kaiser_case_through_the_life21_scenario(ts_worker, sessions, unpublished):  # noqa: F811
    env, cases = ts_worker
    today = (await env.get_current_time()).date()
    cases.policy = napa_dependent(today + timedelta(days=40))
    data = referral(first_name="Fidelity", county="Napa", date_of_birth=born_years_ago(today, 6))
    data["medi_cal"] = {"full_scope": True, "plan": "Kaiser Permanente"}
    status = await cases.refer(data, INTAKE)
    cid, today = status.case_id, status.referral_date
    assert (status.jurisdiction, status.appeals_and_sars_by, status.case_management) == (
        "state", "state", "Kaiser Permanente")
    await to_active(cases, cid, reviewer=STATE)

    with pytest.raises(CcsError, match="Medi-Cal Rx"):
        await cases.act(cid, "request_authorization", example("request_authorization", request=dict(
            example("request_authorization")["request"], service_type="pharmacy", service="Dornase alfa")))
    assert (await cases.show(cid)).requests == []

    sar = await _new_request(cases, cid, "request_authorization", example("request_authorization"),
                             "awaiting_decision")
    assert sar.decided_by == "state"
    on_sar = {"request_id": sar.request_id, "actor": STATE.model_dump()}
    # The State decides this county's SARs, so the State pends them; the county's consultant may not.
    with pytest.raises(CcsError, match="state_reviewer"):
        await cases.act(cid, "request_information", example("request_information", request_id=sar.request_id))
    sar = await cases.act(cid, "request_information", example("request_information") | on_sar)
    assert sar.state == "pended"
    await cases.act(cid, "record_information", example("record_information", request_id=sar.request_id))
    sar = await cases.act(cid, "decide_authorization", example("decide_authorization") | on_sar)
    assert sar.state == "approved"

    grv = await _new_request(cases, cid, "file_grievance", example("file_grievance"), "open")
    grv = await cases.act(cid, "resolve_grievance", example("resolve_grievance", request_id=grv.request_id))
    assert grv.state == "resolved"

    data["conditions"] = [{"icd10": "Q90.9", "description": "Down syndrome, unspecified"}]
    await cases.refer(data, INTAKE)
    await cases.act(cid, "record_medical_determination",
                    act(STATE, condition_id="C2", eligible=False, reason="not a CCS-eligible condition"))
    await cases.act(cid, "file_condition_appeal", act(CM, condition_id="C2", grounds="a second opinion"))
    status = await cases.act(cid, "decide_condition_appeal",
                             act(SUP, condition_id="C2", outcome="upheld", reason="no new findings"))
    assert status.conditions[1].status == "not_eligible" and status.stage == "active"

    # Policy changes mid-life: the dated meal cap ($15 -> $18), then a published mileage rate.
    before = await _new_request(cases, cid, "request_meals_lodging", act(CM, request=trip(today, 10)),
                                "awaiting_decision")
    await env.sleep(timedelta(days=45))
    later = today + timedelta(days=45)
    after = await _new_request(cases, cid, "request_meals_lodging", act(CM, request=trip(later, 10)),
                               "awaiting_decision")
    raised = cases.policy.model_copy(update={"meals_lodging": cases.policy.meals_lodging.model_copy(
        update={"mileage_rate": D("0.30")})})
    await publish_policy(sessions, raised)
    published = await _new_request(cases, cid, "request_meals_lodging", act(CM, request=trip(later, 12)),
                                   "awaiting_decision")
    assert [(r.caps["meals"], r.caps["mileage"]) for r in (before, after, published)] == [
        (D("60.00"), D("50.40")), (D("72.00"), D("50.40")), (D("72.00"), D("72.00"))]

    replayer = Replayer(workflows=WORKFLOWS, data_converter=CONVERTER)
    for wid in [cid, sar.request_id, grv.request_id, published.request_id]:
        await replayer.replay_workflow(await env.client.get_workflow_handle(wid).fetch_history())
