"""Bad input gets a clear, field-level error and changes nothing; it never fails or
wedges a workflow."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType
from temporalio.client import WithStartWorkflowOperation, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from models.actions import ACTIONS, Refer
from models.case import CaseInput
from models.policy import Policy
from models.referral import Referral
from starters.client import CcsError, case_id_for
from tests.conftest import INTAKE
from tests.helpers import CM, MC, SUP, act, referral
from workflows.case import ChildCaseWorkflow


def without(data: dict, path: str) -> dict:
    *parents, leaf = path.split(".")
    node = data
    for p in parents:
        node = node[p]
    del node[leaf]
    return data


@pytest.mark.parametrize("data,field,message", [
    (referral(county="Atlantis"), "child.county", "unknown California county"),
    (referral(date_of_birth="2000-01-01"), "child.date_of_birth", "21 or older"),
    (referral(date_of_birth=(date.today() + timedelta(days=30)).isoformat()), "child.date_of_birth", "future"),
    (referral() | {"conditions": [{"icd10": "Q99.99.9", "description": "x"}]}, "conditions.0.icd10", "not an ICD-10-CM code"),
    (referral() | {"conditions": [{"icd10": "ZZZ", "description": "x"}]}, "conditions.0.icd10", "not an ICD-10-CM code"),
    (referral() | {"conditions": []}, "conditions", "at least 1"),
    (without(referral(), "child.last_name"), "child.last_name", "Field required"),
    (without(referral(), "medi_cal"), "medi_cal", "Field required"),
    (referral(cin="12345"), "child.cin", "8 digits followed by a letter"),
    (referral() | {"referrer": {"kind": "neighbour"}}, "referrer.kind", "Input should be"),
])
async def test_invalid_referral_starts_nothing(ts_worker, data, field, message):
    env, cases = ts_worker
    with pytest.raises(CcsError) as err:
        await cases.refer(data, INTAKE)
    assert field in err.value.fields and message in err.value.fields[field]
    if "last_name" in data["child"]:  # no workflow exists under the child's case ID
        with pytest.raises(RPCError):
            await env.client.get_workflow_handle(case_id_for(_child(data), cases.secret)).describe()


def _child(data):
    from models.referral import Child

    return Child.model_construct(first_name=data["child"]["first_name"], last_name=data["child"]["last_name"],
                                 date_of_birth=date.fromisoformat(data["child"]["date_of_birth"]))


async def test_referral_invalid_by_the_workflows_clock_fails_fast_not_wedged(ts_worker):
    """A client that skipped the checks: the update is refused and the workflow ends."""
    env, cases = ts_worker
    bad = Referral.model_validate(referral(date_of_birth="2001-01-01"))
    cid = f"case-test-{uuid.uuid4().hex[:12]}"
    start = WithStartWorkflowOperation(
        ChildCaseWorkflow.run, CaseInput(case_id=cid, policy=Policy(), referral=bad, referral_id="r" * 16),
        id=cid, task_queue=cases.task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await env.client.execute_update_with_start_workflow(
            "refer", Refer(actor=INTAKE, referral=bad, referral_id="r" * 16), start_workflow_operation=start)
    assert "21 or older" in str(err.value.cause)
    handle = env.client.get_workflow_handle(cid)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert failed.value.cause.message == "invalid referral"


async def test_actions_that_do_not_fit_are_refused_with_what_the_case_waits_for(ts_worker):
    env, cases = ts_worker
    status = await cases.refer(referral(first_name="Strict"), INTAKE)
    cid = status.case_id
    before = status.model_dump()
    cases_of_error = [
        ("record_eligibility", act(CM, finances={"residential_in_county": True}), "waiting for the signed application"),
        ("record_application", act(MC), "must be taken by one of"),
        ("record_application", act(CM, received_on="2099-01-01"), "in the future"),
        ("record_application", act(CM, received_on="2000-01-01"), "before"),
        ("decide_appeal", act(SUP, outcome="overturned", reason="x"), "stage 'intake'"),
        ("complete_task", act(CM, task_id="T99"), "no open task T99"),
        ("complete_task", act(CM, task_id="T1"), "closes by itself"),
        ("transfer_county", act(CM, county="Kern"), "already in Kern"),
        ("assign_case_manager", act(SUP, case_manager="has space"), "case_manager"),
        ("launch_rocket", act(CM), "unknown action"),
        ("close_case", act(CM, reason="bored"), "reason"),
        ("record_application", {"received_on": "2026-01-01"}, "actor"),
    ]
    for name, data, message in cases_of_error:
        with pytest.raises(CcsError) as err:
            await cases.act(cid, name, data)
        assert message in err.value.message + str(err.value.fields), (name, err.value.message)
    assert (await cases.show(cid)).model_dump() == before
    with pytest.raises(CcsError, match="no case"):
        await cases.act("case-does-not-exist", "record_application", act(CM))


def _payloads():
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=30),
                       st.sampled_from(["2026-01-01", "C1", "T1", "Kern", "overturned", "P1D", "-5"]))
    return st.dictionaries(st.sampled_from(["actor", "received_on", "finances", "condition_id", "eligible",
                                             "reason", "outcome", "county", "task_id", "amount", "x"]),
                           st.one_of(scalar, st.dictionaries(st.text(max_size=8), scalar, max_size=3)),
                           max_size=5)


_CASES: dict[int, tuple[str, dict]] = {}


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(batch=st.lists(st.tuples(st.sampled_from(sorted(ACTIONS) + ["nope", "x"]), _payloads()),
                      min_size=15, max_size=15))
async def test_generated_malformed_actions_never_change_or_wedge_a_case(ts_worker, batch):
    env, cases = ts_worker
    if id(ts_worker) not in _CASES:  # one case for every generated batch
        status = await cases.refer(referral(first_name="Fuzz"), INTAKE)
        _CASES[id(ts_worker)] = (status.case_id, status.model_dump())
    cid, before = _CASES[id(ts_worker)]
    handle = env.client.get_workflow_handle(cid)
    for name, data in batch:
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(name, data)
    assert (await cases.show(cid)).model_dump() == before, "a rejected action changed the case"
    history = await handle.fetch_history()
    assert not [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
