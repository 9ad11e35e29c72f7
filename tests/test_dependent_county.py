"""Dependent counties: the State CCS regional office answers appeals (22 CCR 42160(c)(2))
and the State decides service authorization requests; pharmacy is refused with a pointer
to Medi-Cal Rx (DHCS Medi-Cal Rx page: carved out since 2022-01-01). Time-skipping."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from temporalio.worker import Replayer

from models.requests import AuthorizationRequest
from rules.authorization import service_problems
from starters.client import CcsError
from tests.conftest import INTAKE
from tests.helpers import CM, MC, STATE, SUP, act, referral, settle
from tests.test_lifecycle import FULL_SCOPE, to_active
from workflows.registry import WORKFLOWS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "actions"


def sar(**changes) -> dict:
    data = json.loads((EXAMPLES / "request_authorization.json").read_text())
    data["request"].update(changes)
    return data


async def replays(env, *workflow_ids: str) -> None:
    """The histories the new branches write replay (the patches are deterministic)."""
    from tests.conftest import CONVERTER

    for wid in workflow_ids:
        history = await env.client.get_workflow_handle(wid).fetch_history()
        await Replayer(workflows=WORKFLOWS, data_converter=CONVERTER).replay_workflow(history)


def test_pharmacy_is_medi_cal_rx_since_2022():
    req = AuthorizationRequest(provider="Example Pharmacy", service="Dornase alfa refill", condition_id="C1",
                               service_type="pharmacy")
    assert "Medi-Cal Rx" in service_problems(req, date(2022, 1, 1))["service_type"]
    assert service_problems(req, date(2021, 12, 31)) == {}
    assert service_problems(req.model_copy(update={"service_type": "equipment"}), date(2026, 1, 1)) == {}


async def _denied(cases, county: str, first_name: str) -> str:
    status = await cases.refer(referral(first_name=first_name, county=county), INTAKE)
    cid, day = status.case_id, status.referral_date.isoformat()
    await cases.act(cid, "record_application", act(CM, received_on=day))
    await cases.act(cid, "record_records", act(CM, received_on=day))
    status = await cases.act(cid, "record_eligibility", act(CM, finances={
        "residential_in_county": True, "family_agi": "90000", "expected_annual_cost": "5000"}))
    assert status.stage == "denied"
    return cid


async def test_appeal_in_a_dependent_county_is_answered_by_the_state(ts_worker):
    env, cases = ts_worker
    cid = await _denied(cases, "Lake", "Sierra")
    status = await cases.act(cid, "file_appeal", act(CM, grounds="income was miscounted"))
    assert status.appeals_and_sars_by == "state"
    task = next(t for t in status.open_tasks if t.kind == "appeal_answer")
    assert task.assignee == "state:ccs_regional_office"
    with pytest.raises(CcsError, match=r"answered by the State CCS regional office \(state_reviewer\)"):
        await cases.act(cid, "decide_appeal", act(SUP, outcome="overturned", reason="x"))
    status = await cases.act(cid, "decide_appeal", act(STATE, outcome="upheld", reason="over the income limit"))
    assert status.appeal.outcome == "upheld"
    await replays(env, cid)

    # An independent county: a county supervisor answers, the State may not.
    cid = await _denied(cases, "Kern", "Kerney")
    status = await cases.act(cid, "file_appeal", act(CM, grounds="income was miscounted"))
    assert status.appeals_and_sars_by == "county"
    with pytest.raises(CcsError, match="answered by a county supervisor"):
        await cases.act(cid, "decide_appeal", act(STATE, outcome="overturned", reason="x"))


async def test_sar_in_a_dependent_county_is_decided_by_the_state_and_pharmacy_is_refused(ts_worker):
    env, cases = ts_worker
    status = await cases.refer(referral(first_name="Modo", county="Modoc"), INTAKE)
    await to_active(cases, status.case_id, reviewer=STATE, finances=FULL_SCOPE)
    cid = status.case_id
    with pytest.raises(CcsError, match="Medi-Cal Rx"):
        await cases.act(cid, "request_authorization", sar(service_type="pharmacy", service="Dornase alfa refill"))
    assert not (await cases.show(cid)).requests  # refused: nothing started
    status = await cases.act(cid, "request_authorization", sar())
    rid = status.requests[0].request_id
    req = await settle(cases, rid, lambda r: r.state == "awaiting_decision")
    assert req.decided_by == "state" and req.open_tasks[0].assignee == "state:ccs_sar"
    with pytest.raises(CcsError, match="state_reviewer"):
        await cases.act(cid, "decide_authorization", {"actor": MC.model_dump(), "request_id": rid,
                                                      "decision": "approve"})
    req = await cases.act(cid, "decide_authorization", {"actor": STATE.model_dump(), "request_id": rid,
                                                        "decision": "approve"})
    assert req.state == "approved" and req.decision.role == "state_reviewer"
    await replays(env, cid, rid)
