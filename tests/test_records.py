"""A closed case stays a record: shown after Temporal deletes its workflow, purged past
retention unless on legal hold (leaving only the audit skeleton), re-encrypted on rotation."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.service import RPCError, RPCStatusCode

from activities.records import unseal
from activities.retention import purge_due
from activities.tables import AuditRow, CaseRecordRow, CaseRow, LetterRow, SnapshotRow
from models.case import CaseStatus
from models.converter import EncryptionCodec
from starters.cli import render
from starters.client import CcsError
from starters.records import Records, add_key
from tests.conftest import CONVERTER, INTAKE, KEYRING
from tests.helpers import CM, MC, SUP, act, referral, settle
from tests.test_lifecycle import to_active

pytestmark = pytest.mark.usefixtures("clean_db")


def person(n: int) -> dict:
    """A synthetic child with identifiers unlikely to occur anywhere else."""
    return dict(first_name=f"Ysolde{n}x", last_name=f"Brackenwhit{n}q", date_of_birth=date(2015, 3, n + 1).isoformat(),
                cin=f"9{n}7654321X"[-9:], guardian={"name": f"Odalys Brackenwhit{n}q",
                                                     "email": f"odalys{n}.brackenwhit@example.org", "phone": "555-0100"})


def phi_of(n: int) -> list[bytes]:
    p = person(n)
    return [p["first_name"].lower().encode(), p["last_name"].lower().encode(), p["guardian"]["email"].encode()]


async def delete_workflow(client, workflow_id: str) -> None:
    handle = client.get_workflow_handle(workflow_id)
    run_id = (await handle.describe()).run_id
    await client.workflow_service.delete_workflow_execution(DeleteWorkflowExecutionRequest(
        namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id)))
    for _ in range(600):  # deletion is asynchronous on the server
        try:
            await handle.describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                return
            raise
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} was not deleted")


async def close_case(cases, n: int, reason="family_withdrew") -> str:
    status = await cases.refer(referral(**person(n)), INTAKE)
    status = await cases.act(status.case_id, "close_case", act(CM, reason=reason))
    assert status.stage == "closed"
    await cases.client.get_workflow_handle(status.case_id).result()
    return status.case_id


async def every_table_as_text(sessions) -> bytes:
    """Every row of every table in plaintext, and every snapshot decrypted: what a PHI scan sees."""
    out = []
    async with sessions() as s:
        names = (await s.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars().all()
        for name in names:
            out += (await s.execute(text(f'SELECT t::text FROM "{name}" t'))).scalars().all()
        for row in (await s.execute(select(SnapshotRow))).scalars():
            out.append(json.dumps(await unseal(CONVERTER.payload_codec, row.key_id, row.ciphertext)))
    return "\n".join(out).lower().encode()


async def test_closed_case_reads_from_record_after_workflow_is_deleted(dev_worker, sessions):
    # On the dev server: the time-skipping test server does not implement workflow deletion.
    env, cases = dev_worker
    cases.records = Records(sessions, CONVERTER.payload_codec)
    status = await cases.refer(referral(**person(1)), INTAKE)
    cid = status.case_id
    await to_active(cases, cid)
    ask = json.loads(open("examples/actions/request_authorization.json").read())
    await cases.act(cid, "request_authorization", ask)
    rid = f"{cid}-sar-1"
    await settle(cases, rid, lambda r: r.state == "awaiting_decision")
    await cases.act(cid, "decide_authorization", act(MC, request_id=rid, decision="deny", reason="not a CCS benefit"))
    await cases.act(cid, "close_case", act(CM, reason="family_withdrew"))
    final = await cases.client.get_workflow_handle(cid, result_type=CaseStatus).result()
    request = await settle(cases, rid, lambda r: r.state == "denied" and r.notices_sent)
    await cases.client.get_workflow_handle(rid).result()
    live = await cases.show(cid)

    for wf in (rid, cid):
        await delete_workflow(env.client, wf)
    shown = await cases.show(cid)
    assert shown.from_record and shown.stage == "closed" and shown.closure.reason == "family_withdrew"
    assert shown.model_dump(exclude={"from_record"}) == live.model_dump(exclude={"from_record"})
    assert shown.model_dump(exclude={"from_record"}) == final.model_dump(exclude={"from_record"})
    assert shown.child.first_name == person(1)["first_name"]
    assert "from the case record" in render(shown) and "family_withdrew" in render(shown)
    with pytest.raises(CcsError, match="is closed and takes no more actions"):
        await cases.act(cid, "assign_case_manager", act(SUP, case_manager="cm.lee"))
    shown_request = await cases.show(rid)
    assert shown_request.from_record and shown_request.state == "denied"
    assert shown_request.model_dump(exclude={"from_record"}) == request.model_dump(exclude={"from_record"})
    # The record is sealed: no PHI in its plaintext columns (the decrypted record holds it).
    async with sessions() as s:
        raw = "\n".join([*(await s.execute(text("SELECT t::text FROM record_snapshots t"))).scalars(),
                         *(await s.execute(text("SELECT t::text FROM case_records t"))).scalars()]).lower().encode()
    assert not [f for f in phi_of(1) if f in raw]
    assert all(f in shown.model_dump_json().lower().encode() for f in phi_of(1))
    # Without the record, the case is gone as before.
    cases.records = None
    with pytest.raises(CcsError, match="no case"):
        await cases.show(cid)


async def test_purge_removes_exactly_records_past_retention_and_not_on_hold(ts_worker, sessions):
    env, cases = ts_worker
    records = Records(sessions, CONVERTER.payload_codec)
    old, held = await close_case(cases, 2), await close_case(cases, 3)
    await env.sleep(timedelta(days=20))
    recent = await close_case(cases, 4)
    still_open = (await cases.refer(referral(**person(5)), INTAKE)).case_id
    await cases.act(still_open, "record_application", act(CM, received_on=(await cases.show(still_open)).referral_date.isoformat()))

    with pytest.raises(CcsError, match="only a supervisor"):
        await records.place_hold(held, CM, "LIT-2026-014")
    with pytest.raises(CcsError, match="not a reference"):
        await records.place_hold(held, SUP, "Brackenwhit3q v. County")
    await records.place_hold(held, SUP, "LIT-2026-014")
    await records.place_hold(old, SUP, "PRA-77")
    await records.release_hold(old, SUP, "PRA-77")
    with pytest.raises(CcsError, match="no hold"):
        await records.release_hold(old, SUP, "PRA-77")

    before = await every_table_as_text(sessions)
    for n in (2, 3, 4, 5):
        assert all(f in before for f in phi_of(n)), "the scan must see each child before the purge"
    async with sessions() as s:
        audit_before = (await s.execute(select(func.count()).select_from(AuditRow).where(AuditRow.case_id == old))).scalar_one()
        closed = {r.case_id: r.closed_at for r in (await s.execute(select(CaseRecordRow))).scalars()}
    assert set(closed) == {old, held, recent, still_open} and closed[still_open] is None

    now = closed[recent] + timedelta(days=1)
    result = await purge_due(sessions, timedelta(days=10), now, batch=1)
    assert (result.purged, result.held) == (1, 1)

    after = await every_table_as_text(sessions)
    assert not [f for f in phi_of(2) if f in after], "PHI of the purged child remains"
    for n in (3, 4, 5):
        assert all(f in after for f in phi_of(n))
    async with sessions() as s:
        audit = (await s.execute(select(AuditRow.action).where(AuditRow.case_id == old).order_by(AuditRow.id))).scalars().all()
        summary = await s.get(CaseRow, old)
        rec = await s.get(CaseRecordRow, old)
    assert len(audit) == audit_before + 1 and audit[-1] == "record_purged" and "close_case" in audit
    assert summary.stage == "closed" and summary.closure_reason == "family_withdrew" and summary.conditions == []
    assert rec.purged_at is not None
    async with sessions() as s:  # its letters (sealed, but they name the child) are gone; the held child's stay
        letters = dict((await s.execute(select(LetterRow.case_id, func.count()).where(
            LetterRow.case_id.in_([old, held])).group_by(LetterRow.case_id))).all())
    assert old not in letters and letters.get(held, 0) > 0
    with pytest.raises(CcsError, match="was purged"):
        await records.status(old)
    with pytest.raises(CcsError, match="already purged"):
        await records.place_hold(old, SUP, "LIT-2026-015")
    # Idempotent: a second run purges nothing more; releasing the hold lets the next run purge it.
    assert (await purge_due(sessions, timedelta(days=10), now)).purged == 0
    await records.release_hold(held, SUP, "LIT-2026-014")
    assert (await purge_due(sessions, timedelta(days=10), now)).purged == 1
    assert not [f for f in phi_of(3) if f in await every_table_as_text(sessions)]


async def test_key_rotation_reencrypts_every_snapshot(ts_worker, sessions, tmp_path):
    env, cases = ts_worker
    ids = [await close_case(cases, n) for n in (6, 7, 8)]
    old = Records(sessions, CONVERTER.payload_codec)
    usage = await old.key_usage()
    assert set(usage) == {KEYRING.active}
    before = {cid: await old.status(cid) for cid in ids}

    keys = {"rotated-k3": b"\x07" * 32, **KEYRING.keys}
    new = Records(sessions, EncryptionCodec(keys, "rotated-k3"))
    assert await new.reencrypt(batch=2) == sum(usage.values())
    assert await new.key_usage() == {"rotated-k3": sum(usage.values())}
    for cid in ids:
        assert (await new.status(cid)).model_dump() == before[cid].model_dump()
    assert await new.reencrypt() == 0  # resumable: nothing left to do
    # The old keyring alone no longer reads the records: they really are under the new key.
    with pytest.raises(Exception, match="unknown key"):
        await old.status(ids[0])


def test_keys_rotate_adds_a_key_first(tmp_path):
    from models.converter import load_keyring
    from models.settings import Settings

    settings = Settings(CCS_HOME=str(tmp_path), CCS_ENCRYPTION_KEYS=None, CCS_CASE_ID_SECRET=None)
    first = load_keyring(settings)
    kid = add_key(settings)
    after = load_keyring(settings)
    assert after.active == kid != first.active and first.active in after.keys
    assert after.case_id_secret == first.case_id_secret
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600


async def test_daily_schedule_runs_the_purge(dev_worker, sessions):
    from activities.records import seal
    from workers.schedules import ensure_purge_schedule

    env, cases = dev_worker
    schedule_id = f"purge-{uuid.uuid4().hex[:8]}"
    await ensure_purge_schedule(env.client, cases.task_queue, "America/Los_Angeles", schedule_id)
    await ensure_purge_schedule(env.client, cases.task_queue, "America/Los_Angeles", schedule_id)  # idempotent
    handle = env.client.get_schedule_handle(schedule_id)
    desc = await handle.describe()
    assert desc.schedule.spec.cron_expressions == ["0 2 * * *"] or desc.schedule.spec.calendars
    assert desc.schedule.action.workflow == "RecordsPurgeWorkflow"
    assert desc.schedule.action.task_queue == cases.task_queue

    closed = datetime.now(timezone.utc) - timedelta(days=3653 + 30)  # past the default ten years
    ids = [f"case-{uuid.uuid4().hex[:20]}" for _ in range(2)]
    records = Records(sessions, CONVERTER.payload_codec)
    async with sessions.begin() as s:
        for cid in ids:
            key_id, sealed = await seal(CONVERTER.payload_codec, {"case_id": cid})
            s.add(CaseRecordRow(case_id=cid, closed_at=closed, events=0))
            s.add(SnapshotRow(source=cid, case_id=cid, kind="case", key_id=key_id, ciphertext=sealed,
                              started_at=closed, last_seq=1))
    await records.place_hold(ids[1], SUP, "LIT-2026-020")
    await handle.trigger()
    for _ in range(200):
        async with sessions() as s:
            purged = {r.case_id: r.purged_at for r in (await s.execute(
                select(CaseRecordRow).where(CaseRecordRow.case_id.in_(ids)))).scalars()}
        if purged[ids[0]] is not None:
            break
        await asyncio.sleep(0.1)
    assert purged[ids[0]] is not None and purged[ids[1]] is None
    await handle.delete()


async def test_a_referral_after_closure_is_a_new_life_of_the_record(sessions):
    """The same child referred again after closure: a new workflow under the same case ID,
    its steps numbered from 1 again. Its record replaces the old one and is not purgeable."""
    from activities.records import write_snapshot

    cid = f"case-{uuid.uuid4().hex[:20]}"
    first = {"case_id": cid, "stage_history": [{"stage": "intake", "at": "2015-01-05T17:00:00Z"}],
             "stage": "closed", "stage_since": "2015-06-01T17:00:00Z"}
    again = {"case_id": cid, "stage_history": [{"stage": "intake", "at": "2026-02-01T17:00:00Z"}],
             "stage": "intake", "stage_since": "2026-02-01T17:00:00Z"}
    for status, seq in ((first, 9), (again, 1), (first, 9)):  # the last: a late retry of the first life
        async with sessions.begin() as s:
            await write_snapshot(s, CONVERTER.payload_codec, cid, cid, seq, status)
    async with sessions() as s:
        row = await s.get(SnapshotRow, cid)
        rec = await s.get(CaseRecordRow, cid)
    assert await unseal(CONVERTER.payload_codec, row.key_id, row.ciphertext) == again
    assert rec.closed_at is None
    assert (await purge_due(sessions, timedelta(days=1), datetime(2040, 1, 1, tzinfo=timezone.utc))).purged == 0


async def test_purge_expires_old_sign_in_failures_and_idempotency_keys(sessions):
    from sqlalchemy import insert

    from activities.tables import IdempotencyRow, SignInFailureRow

    now = datetime.now(timezone.utc)  # other tests' fresh rows are not this test's to expire
    tag = uuid.uuid4().hex[:8]
    async with sessions.begin() as s:
        for days in (40, 1):
            await s.execute(insert(SignInFailureRow).values(user_id=f"u{days}.{tag}", address="10.0.0.9",
                                                            at=now - timedelta(days=days)))
            await s.execute(insert(IdempotencyRow).values(user_id=f"u{days}.{tag}", key="k", body_mac="0" * 64,
                                                          case_id="case-x", created_at=now - timedelta(days=days)))
    result = await purge_due(sessions, timedelta(days=3650), now)
    assert result.expired >= 2
    async with sessions() as s:
        failures = set((await s.execute(select(SignInFailureRow.user_id).where(
            SignInFailureRow.user_id.like(f"%.{tag}")))).scalars())
        keys = set((await s.execute(select(IdempotencyRow.user_id).where(
            IdempotencyRow.user_id.like(f"%.{tag}")))).scalars())
    assert failures == {f"u1.{tag}"} and keys == {f"u1.{tag}"}, "a month of failures and a week of keys stay"
