"""One child, one case, through the Python client and the identity index in PostgreSQL:
CIN first, folded name + DOB, possible duplicates decided by a supervisor, referrals
sent twice, and many referrals of one new child at once."""

from __future__ import annotations

import asyncio
import os
from datetime import date

import pytest
from sqlalchemy import select
from temporalio.worker import Replayer

from activities.identity import find_cases, keys_of, resolve_and_claim
from activities.tables import AuditRow, CaseRow, IdentityKeyRow
from models.referral import Child
from starters.client import CcsError
from tests.conftest import CONVERTER, INTAKE
from tests.helpers import SUP, act, referral, settle
from workflows.registry import WORKFLOWS

DOB = "2018-05-05"


def maria(cin: str | None = "91234567A", first="Maria", last="Garcia", icd10="E84.0", dob=DOB) -> dict:
    data = referral(first_name=first, last_name=last, date_of_birth=dob, cin=cin)
    data["conditions"] = [{"icd10": icd10, "description": "referred condition"}]
    return data


def child(**kw) -> Child:
    return Child.model_validate({"first_name": "Maria", "last_name": "Garcia", "date_of_birth": DOB,
                                 "county": "Kern", **kw})


async def test_twenty_claims_of_one_new_child_at_once_reach_one_case(sessions):
    secret = os.urandom(32)
    # Half the referrals carry the CIN, half do not: whichever comes first, all reach one case.
    keys = [keys_of(child(cin="91234567A" if i % 2 else None), secret) for i in range(20)]
    found = await asyncio.gather(*(resolve_and_claim(sessions, k) for k in keys))
    assert len({f.case_id for f in found}) == 1
    async with sessions() as s:
        rows = (await s.scalars(select(IdentityKeyRow).where(IdentityKeyRow.case_id == found[0].case_id))).all()
    assert sorted(r.kind for r in rows) == ["cin", "last_dob", "name_dob"]


async def test_find_cases_by_cin_full_name_or_last_name(sessions):
    secret = os.urandom(32)
    first = await resolve_and_claim(sessions, keys_of(child(cin="91234567A"), secret))
    twin = await resolve_and_claim(sessions, keys_of(child(first_name="Lucia", cin="97654321B"), secret))
    async with sessions() as s:
        assert await find_cases(s, secret, cin="91234567a") == [first.case_id]
        assert await find_cases(s, secret, first_name="MARÍA", last_name="garcía",
                                date_of_birth=date(2018, 5, 5)) == [first.case_id]
        assert await find_cases(s, secret, last_name="Garcia", date_of_birth=date(2018, 5, 5)) == sorted(
            [first.case_id, twin.case_id])
        assert await find_cases(s, secret, cin="91234567A", last_name="Garcia", date_of_birth=date(2018, 5, 5)) == [
            first.case_id]
        assert await find_cases(s, secret, cin="11111111C") == []
        with pytest.raises(ValueError, match="last name and the date of birth"):
            await find_cases(s, secret, first_name="Maria")


async def test_same_cin_other_spelling_and_resent_referral_reach_the_case(ts_worker):
    env, cases = ts_worker
    first = await cases.submit_referral(maria(), INTAKE)
    assert (first.identity, first.duplicate_referral, first.conditions_added) == ("new_case", False, ["C1"])
    # The hospital registers her as "María García-Lopez": the CIN says it is her.
    hospital = await cases.submit_referral(maria(first="María", last="García-Lopez", icd10="Q90.9"), INTAKE)
    assert hospital.case_id == first.case_id and hospital.identity == "same_cin"
    assert hospital.conditions_added == ["C2"] and not hospital.duplicate_referral
    # The fax is resent: same case, nothing changes.
    resent = await cases.submit_referral(maria(first="María", last="García-Lopez", icd10="Q90.9"), INTAKE)
    assert resent.case_id == first.case_id and resent.duplicate_referral and resent.conditions_added == []
    assert [c.icd10 for c in resent.status.conditions] == ["E84.0", "Q90.9"]
    # Without a CIN, the new spelling now finds her too.
    no_cin = await cases.submit_referral(maria(cin=None, first="MARIA", last="garcia lopez"), INTAKE)
    assert no_cin.case_id == first.case_id and no_cin.identity == "same_name_dob" and no_cin.duplicate_referral


async def test_cin_arriving_later_joins_the_case(ts_worker):
    env, cases = ts_worker
    first = await cases.submit_referral(maria(cin=None), INTAKE)
    later = await cases.submit_referral(maria(icd10="Q90.9"), INTAKE)
    assert later.case_id == first.case_id and later.identity == "cin_added"
    assert later.status.child.cin == "91234567A"
    async with cases.identity() as s:
        assert await find_cases(s, cases.secret, cin="91234567A") == [first.case_id]


async def test_cin_on_a_child_with_another_birth_date_is_refused(ts_worker):
    env, cases = ts_worker
    await cases.submit_referral(maria(), INTAKE)
    other = maria(first="Rosa", last="Lopez", dob="2019-01-02")
    with pytest.raises(CcsError) as refused:
        await cases.submit_referral(other, INTAKE)
    assert "different date of birth" in refused.value.message
    for leak in ("Maria", "Garcia", DOB, "case-"):
        assert leak not in refused.value.message
    async with cases.identity() as s:  # nothing was claimed for her
        assert await find_cases(s, cases.secret, first_name="Rosa", last_name="Lopez",
                                date_of_birth=date(2019, 1, 2)) == []


async def _two_children_one_name(cases):
    first = await cases.submit_referral(maria(), INTAKE)
    second = await cases.submit_referral(maria(cin="97654321B", icd10="Q90.9"), INTAKE)
    assert second.case_id != first.case_id and second.identity == "possible_duplicate"
    assert second.possible_duplicate_of == [first.case_id]
    assert [c.icd10 for c in second.status.conditions] == ["Q90.9"]  # nothing landed on the first child's case
    newer = second.status
    assert [t.kind for t in newer.open_tasks if t.assignee == "supervisor"] == [f"possible_duplicate:{first.case_id}"]
    older = await settle(cases, first.case_id, lambda s: any(t.kind.startswith("possible_duplicate") for t in s.open_tasks))
    assert [c.icd10 for c in older.conditions] == ["E84.0"]
    assert [t.kind for t in older.open_tasks if t.assignee == "supervisor"] == [f"possible_duplicate:{second.case_id}"]
    return first.case_id, second.case_id


async def _audited(sessions, case_id: str) -> list[str]:
    async with sessions() as s:
        return list((await s.scalars(select(AuditRow.action).where(AuditRow.case_id == case_id)
                                     .order_by(AuditRow.seq))).all())


async def _wait_audited(sessions, case_id: str, action: str) -> None:
    """Steps reach the audit log just after the action answers."""
    for _ in range(100):
        if action in await _audited(sessions, case_id):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{action} not audited on {case_id}: {await _audited(sessions, case_id)}")


async def test_different_children_keep_their_cases(ts_worker, sessions):
    env, cases = ts_worker
    older, newer = await _two_children_one_name(cases)
    with pytest.raises(CcsError, match="supervisor"):
        await cases.act(newer, "confirm_different_children", act(INTAKE, other_case_id=older))
    status = await cases.act(newer, "confirm_different_children", act(SUP, other_case_id=older))
    assert not [t for t in status.open_tasks if t.kind.startswith("possible_duplicate")]
    status = await settle(cases, older, lambda s: not [t for t in s.open_tasks if t.kind.startswith("possible_dup")])
    assert status.possible_duplicates[0].decision == "different_children"
    with pytest.raises(CcsError, match="not an open possible duplicate"):
        await cases.act(older, "confirm_same_child", act(SUP, other_case_id=newer))
    # Each child's next referral goes to her own case, and is not flagged again.
    again = await cases.submit_referral(maria(cin="97654321B", icd10="G80.9"), INTAKE)
    assert again.case_id == newer and not [t for t in again.status.open_tasks if t.kind.startswith("possible_dup")]
    await _wait_audited(sessions, newer, "confirm_different_children")
    await _wait_audited(sessions, older, "duplicate_resolved")


@pytest.mark.parametrize("decided_on", ["older", "newer"])
async def test_same_child_merges_the_newer_case_into_the_older(ts_worker, sessions, decided_on):
    env, cases = ts_worker
    older, newer = await _two_children_one_name(cases)
    # Decided on either case: the newer one closes as merged and its condition moves over.
    here, there = (older, newer) if decided_on == "older" else (newer, older)
    await cases.act(here, "confirm_same_child", act(SUP, other_case_id=there, note="same child, CIN typo"))
    merged = await settle(cases, newer, lambda s: s.stage == "closed")
    assert merged.closure.reason == "merged" and merged.closure.merged_into == older
    kept = await settle(cases, older, lambda s: len(s.conditions) == 2)
    assert [c.icd10 for c in kept.conditions] == ["E84.0", "Q90.9"]
    assert not [t for t in kept.open_tasks if t.kind.startswith("possible_duplicate")]
    # The merged case's CIN now finds the case kept, and a referral with it reaches that case.
    async with sessions() as s:
        assert await find_cases(s, cases.secret, cin="97654321B") == [older]
    again = await cases.submit_referral(maria(cin="97654321B", icd10="G80.9"), INTAKE)
    assert again.case_id == older and again.identity == "same_cin" and again.conditions_added == ["C3"]
    await _wait_audited(sessions, here, "confirm_same_child")
    await _wait_audited(sessions, there, "duplicate_resolved")
    # Both histories (signals both ways, the re-pointing activity, the closure) replay.
    for case_id in (older, newer):
        history = await env.client.get_workflow_handle(case_id).fetch_history()
        await Replayer(workflows=WORKFLOWS, data_converter=CONVERTER).replay_workflow(history)


async def test_twenty_concurrent_referrals_of_one_new_child(dev_worker):
    """The Python client on the real dev server: 20 referrals of one new child at once."""
    env, cases = dev_worker
    answers = await asyncio.gather(*(cases.submit_referral(maria(cin="93333333C"), INTAKE) for _ in range(20)))
    assert len({a.case_id for a in answers}) == 1
    assert sorted(a.duplicate_referral for a in answers) == [False] + [True] * 19
    status = await cases.show(answers[0].case_id)
    assert [c.icd10 for c in status.conditions] == ["E84.0"]


async def test_reindex_adds_cases_opened_before_the_index(dev_worker):
    """A case opened before the identity index existed (its ID from the old rule) is found
    by its CIN after `ccs reindex`, so the child's next referral reaches it."""
    from temporalio.client import WithStartWorkflowOperation
    from temporalio.common import WorkflowIDConflictPolicy

    from models.actions import Refer
    from models.case import CaseInput
    from models.referral import Referral
    from starters.identity import reindex

    env, cases = dev_worker
    legacy_id = "case-" + os.urandom(10).hex()
    data = Referral.model_validate(maria(cin="95555555D"))
    start = WithStartWorkflowOperation(
        "ChildCaseWorkflow", CaseInput(case_id=legacy_id, policy=cases.policy, referral=data, referral_id="legacy-1"),
        id=legacy_id, task_queue=cases.task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    await env.client.execute_update_with_start_workflow(
        "refer", Refer(actor=INTAKE, referral=data, referral_id="legacy-1"), start_workflow_operation=start)
    for _ in range(100):  # visibility lists a new workflow after a moment
        counts = await reindex(cases, cases.identity)
        if counts["cases"]:
            break
        await asyncio.sleep(0.1)
    assert counts == {"cases": 1, "keys_added": 3}
    again = await cases.submit_referral(maria(cin="95555555D", icd10="Q90.9"), INTAKE)
    assert again.case_id == legacy_id and again.identity == "same_cin" and again.conditions_added == ["C2"]
    assert await reindex(cases, cases.identity) == {"cases": 1, "keys_added": 0}


async def test_a_closed_case_with_the_same_name_is_no_possible_duplicate(ts_worker):
    env, cases = ts_worker
    first = await cases.submit_referral(maria(), INTAKE)
    await cases.act(first.case_id, "close_case", act(SUP, reason="moved_out_of_state"))
    for _ in range(100):  # the read model records the closure just after the action
        async with cases.identity() as s:
            if await s.scalar(select(CaseRow.stage).where(CaseRow.case_id == first.case_id)) == "closed":
                break
        await asyncio.sleep(0.05)
    other = await cases.submit_referral(maria(cin="97654321B"), INTAKE)
    assert other.identity == "new_case" and other.possible_duplicate_of == []
    assert not [t for t in other.status.open_tasks if t.kind.startswith("possible_duplicate")]
