"""PHI never reaches the Temporal server in plaintext: the history as the server stores
it, the workflow ID, the search attributes and a rejected action's failure hold no
child's name, date of birth or Medi-Cal number. The same history decoded through the
data converter does hold them, so these checks can fail."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import Input, Meta, Request, WaitPolicy
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
    UpdateWorkflowExecutionRequest,
)

from models.converter import ENCODING
from starters.client import CcsError
from tests.api_helpers import api  # noqa: F401  (fixture)
from tests.conftest import CONVERTER, INTAKE
from tests.helpers import CM, act, referral, settle
from workflows.common import NOTICE_KEYS_PER_LIFE, PATCH_SET, TIMER_DRIVEN
from workflows.endings import PROGRAM_ENDINGS

FIRST, LAST = "Zephyrine", "Quillfeather"
DOB = date(2016, 7, 23)
CIN = "91234567Z"
GUARDIAN_EMAIL = "orsolya.quillfeather@example.org"


def child() -> dict:
    return referral(first_name=FIRST, last_name=LAST, date_of_birth=DOB.isoformat(), cin=CIN,
                    guardian={"name": f"Orsolya {LAST}", "email": GUARDIAN_EMAIL, "phone": "555-0142"})


def phi_forms() -> list[bytes]:
    """The child's identifiers as they could appear in bytes, in the usual spellings."""
    dob_forms = {DOB.isoformat(), DOB.strftime("%m/%d/%Y"), f"{DOB.month}/{DOB.day}/{DOB.year}",
                 DOB.strftime("%Y%m%d"), DOB.strftime("%d/%m/%Y"), DOB.strftime("%d-%m-%Y"),
                 DOB.strftime("%m-%d-%Y"), DOB.strftime("%B %d, %Y"), DOB.strftime("%d %b %Y")}
    forms = {FIRST, LAST, CIN, GUARDIAN_EMAIL, *dob_forms}
    return sorted({f.lower().encode() for f in forms} | {f.encode("utf-16-le").lower() for f in (FIRST, LAST)})


def assert_no_phi(raw: bytes, where: str) -> None:
    low = raw.lower()
    found = [f.decode(errors="replace") for f in phi_forms() if f in low]
    assert not found, f"PHI in plaintext in {where}: {found}"


async def raw_history(client, workflow_id: str) -> list:
    """Every event as the server stores and returns it: no data converter involved."""
    events, token = [], b""
    while True:
        resp = await client.workflow_service.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id),
            maximum_page_size=10, next_page_token=token))
        events.extend(resp.history.events)
        token = resp.next_page_token
        if not token:
            return events


def payloads_in(msg: Message, skip: str = "") -> list[Payload]:
    """Every Payload inside a proto message (inputs, results, failures, headers...), except
    under fields named ``skip``."""
    found: list[Payload] = []
    for field, value in msg.ListFields():
        if field.name == skip:
            continue
        if isinstance(value, Message):
            values = [value]
        elif isinstance(value, (str, bytes, int, float, bool)):
            continue
        elif hasattr(value, "values"):  # a map field
            values = list(value.values())
        else:  # a repeated field
            values = list(value)
        for v in values:
            if isinstance(v, Payload):
                found.append(v)
            elif isinstance(v, Message):
                found.extend(payloads_in(v, skip))
    return found


async def test_history_as_stored_holds_no_phi(ts_worker):
    async with asyncio.timeout(30):  # a wedged workflow fails the test instead of hanging it
        await _history_as_stored_holds_no_phi(*ts_worker)


async def _history_as_stored_holds_no_phi(env, cases):
    status = await cases.refer(child(), INTAKE)
    case_id = status.case_id
    # Case managers type names into notes: those are PHI too.
    status = await cases.act(case_id, "record_application", act(
        CM, received_on=status.referral_date.isoformat(), note=f"signed by the mother of {FIRST} {LAST}, CIN {CIN}"))
    assert status.stage == "records"
    await env.sleep(timedelta(days=8))  # a timer fires: the records reminder
    assert any("/records_reminder/" in k for k in (await cases.show(case_id)).notices_sent)
    status = await cases.act(case_id, "record_records", act(
        CM, received_on=status.referral_date.isoformat(), note=f"{LAST}, {FIRST} DOB {DOB:%m/%d/%Y}: chart received"))
    assert status.stage == "eligibility"

    events = await raw_history(env.client, case_id)
    assert len(events) > 5
    raw = b"".join(e.SerializeToString() for e in events)
    assert_no_phi(raw, "the workflow history")

    # No PHI in the workflow ID or the search attributes (upserted just after the last step).
    assert_no_phi(case_id.encode(), "the workflow ID")
    for _ in range(100):
        typed = (await env.client.get_workflow_handle(case_id).describe()).search_attributes
        if typed.get("CcsStage") == ["eligibility"]:
            break
        await asyncio.sleep(0.05)
    desc = await env.client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=case_id)))
    attrs = desc.workflow_execution_info.search_attributes.indexed_fields
    assert {"CcsStage", "CcsCounty", "CcsCaseManager"} <= set(attrs)
    assert_no_phi(desc.workflow_execution_info.search_attributes.SerializeToString(), "the search attributes")
    assert_no_phi(desc.SerializeToString(), "the workflow description")
    typed = (await env.client.get_workflow_handle(case_id).describe()).search_attributes
    assert typed["CcsCounty"] == ["Kern"] and typed["CcsStage"] == ["eligibility"]

    # Every payload in the history is encrypted...
    # (search attributes are plaintext by design; they were checked above).
    # Version markers (workflow.patched) hold only a patch ID, written by the SDK's core.
    patches = [e for e in events if e.HasField("marker_recorded_event_attributes")
               and e.marker_recorded_event_attributes.marker_name == "core_patch"]
    known = (b"wake-before-flush", TIMER_DRIVEN.encode(), PROGRAM_ENDINGS.encode(), NOTICE_KEYS_PER_LIFE.encode(),
             PATCH_SET.encode())
    assert patches and all(any(k in e.SerializeToString() for k in known) for e in patches)
    data_payloads = [p for e in events if e not in patches for p in payloads_in(e, skip="search_attributes")]
    assert len(data_payloads) > 5
    assert all(p.metadata["encoding"] == ENCODING for p in data_payloads)
    # ...and decoded through the data converter the child is there: the checks above could fail.
    decoded = b"".join(p.SerializeToString() for p in await CONVERTER.payload_codec.decode(data_payloads))
    for needle in (FIRST.encode(), LAST.encode(), CIN.encode(), DOB.isoformat().encode()):
        assert needle in decoded

    # A family's grievance is typed in the family's words, names and all: its own workflow
    # (ID, history, staff notices) holds them only sealed.
    status = await cases.act(case_id, "file_grievance", act(CM, request={
        "about": "delay", "summary": f"{FIRST} {LAST} (CIN {CIN}, born {DOB:%m/%d/%Y}) waited six weeks"}))
    grievance = status.requests[0].request_id
    assert_no_phi(grievance.encode(), "the grievance's workflow ID")
    await settle(cases, grievance, lambda g: g.state == "open")
    grv_events = await raw_history(env.client, grievance)
    assert len(grv_events) > 5
    assert_no_phi(b"".join(e.SerializeToString() for e in grv_events), "the grievance's history")
    decoded = b"".join(p.SerializeToString() for p in await CONVERTER.payload_codec.decode(
        [p for e in grv_events for p in payloads_in(e, skip="search_attributes")]))
    assert FIRST.encode() in decoded  # sealed, not absent: the check above could fail


async def test_rejected_action_failure_is_encoded(ts_worker):
    async with asyncio.timeout(30):
        await _rejected_action_failure_is_encoded(*ts_worker)


async def _rejected_action_failure_is_encoded(env, cases):
    status = await cases.refer(child(), INTAKE)
    case_id = status.case_id
    too_early = (status.referral_date - timedelta(days=3)).isoformat()
    data = act(CM, received_on=too_early, note=f"application for {FIRST} {LAST}, CIN {CIN}")

    # The case manager sees the clear message (decoded by the data converter)...
    with pytest.raises(CcsError) as rejected:
        await cases.act(case_id, "record_application", data)
    assert "received_on is before" in rejected.value.message
    assert rejected.value.fields == {"received_on": "too early"}

    # ...while what the server holds and sends is ciphertext.
    resp = await env.client.workflow_service.update_workflow_execution(UpdateWorkflowExecutionRequest(
        namespace=env.client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=case_id),
        request=Request(meta=Meta(update_id=str(uuid.uuid4()), identity="phi-test"),
                        input=Input(name="record_application",
                                    args=Payloads(payloads=await CONVERTER.encode([data])))),
        wait_policy=WaitPolicy(lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.
                               UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED),
    ))
    failure = resp.outcome.failure
    assert failure.message == "Encoded failure"
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    raw = resp.SerializeToString()
    assert_no_phi(raw, "the rejected update's failure")
    for text in (b"received_on is before", b"too early", too_early.encode()):
        assert text not in raw
    decoded = await CONVERTER.decode_failure(failure)
    assert "received_on is before" in str(decoded)

    # Nothing of the rejected action is in the history, and the case did not move.
    assert_no_phi(b"".join(e.SerializeToString() for e in await raw_history(env.client, case_id)), "the history")
    assert (await cases.show(case_id)).stage == "intake"


async def test_identity_index_holds_no_phi(ts_worker, sessions):
    """The identity index finds the child by CIN and by name + DOB, from keyed hashes only."""
    from sqlalchemy import select

    from activities.identity import find_cases
    from activities.tables import IdentityKeyRow

    env, cases = ts_worker
    answer = await cases.submit_referral(child(), INTAKE)
    async with sessions() as s:
        assert await find_cases(s, cases.secret, cin=CIN) == [answer.case_id]
        assert await find_cases(s, cases.secret, first_name=FIRST.upper(), last_name=LAST,
                                date_of_birth=DOB) == [answer.case_id]
        rows = (await s.execute(select(IdentityKeyRow.__table__).where(
            IdentityKeyRow.case_id == answer.case_id))).all()
    assert sorted(r.kind for r in rows) == ["cin", "last_dob", "name_dob"]
    assert_no_phi(repr([tuple(r) for r in rows]).encode(), "the identity index")
    assert_no_phi(answer.case_id.encode(), "the case ID")
async def test_api_tables_hold_no_phi(api):
    """Through the HTTP API: a referral with an Idempotency-Key, reads of the case, its audit
    trail and its holds, searches for the child by CIN and by name, a failed sign-in named after the child. No row of the API's tables (users,
    failed sign-ins, access log, idempotency keys) holds the child's identifiers."""
    from sqlalchemy import text

    clerk = api.auth("intake_clerk", "Kern", "clerk.phi")
    r = await api.http.post("/api/v1/referrals", json=child(), headers={**clerk, "Idempotency-Key": "phi-1"})
    assert r.status_code == 201, r.text
    case_id = r.json()["case_id"]
    assert r.json()["status"]["child"]["first_name"] == FIRST  # the answer does carry PHI, to a signed-in reader
    assert (await api.http.get(f"/api/v1/cases/{case_id}", headers=clerk)).status_code == 200
    assert (await api.http.get(f"/api/v1/cases/{case_id}/audit", headers=clerk)).status_code == 200
    assert (await api.http.get(f"/api/v1/cases/{case_id}/holds", headers=clerk)).status_code == 200
    for search in ({"cin": CIN}, {"first_name": FIRST, "last_name": LAST, "date_of_birth": DOB.isoformat()}):
        found = await api.http.post("/api/v1/find", json=search, headers=clerk)  # logged, what was typed not
        assert found.json() == {"case_ids": [case_id]}, found.text
    await api.http.post("/api/v1/sign-in", json={"user_id": "clerk.phi", "password": f"{FIRST} {DOB}"})
    async with api.services.engine.connect() as conn:
        for table in ("users", "sign_in_failures", "access_log", "idempotency_keys"):
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            assert_no_phi(repr(rows).encode(), f"the {table} table")
        assert (await conn.execute(text("SELECT count(*) FROM access_log WHERE case_id = :c"),
                                   {"c": case_id})).scalar() == 5
async def test_letters_hold_phi_only_sealed_and_e_mail_subjects_none(ts_worker, sessions, mailbox):
    """The letter names the child (it must: the family reads it); at rest it is sealed, and
    neither the outbox, the letters table's other columns nor an e-mail's subject or text
    says who the child is."""
    from email import message_from_bytes, policy as email_policy

    from sqlalchemy import select

    from activities.letters import LetterStore
    from activities.tables import LetterRow, OutboxRow
    from tests.conftest import KEYRING
    from tests.helpers import letter_text

    _, cases = ts_worker
    case_id = (await cases.refer(child(), INTAKE)).case_id
    rows: list = []
    for _ in range(200):  # recorded by an activity just after the referral returns
        async with sessions() as s:
            rows = (await s.scalars(select(LetterRow).where(LetterRow.case_id == case_id))).all()
            outbox = (await s.scalars(select(OutboxRow).where(OutboxRow.case_id == case_id))).all()
        if rows and outbox and outbox[0].status != "pending":
            break
        await asyncio.sleep(0.05)
    assert rows
    for row in rows:
        plain = [row.key, row.case_id, row.kind, row.recipient, row.language, row.sha256, row.key_id]
        assert_no_phi(" ".join(plain).encode() + row.sealed + row.data, "the letters table")
        assert f"{FIRST} {LAST}" in letter_text(LetterStore(sessions, KEYRING).unseal(row))  # so this can fail
    for row in outbox:
        assert_no_phi(f"{row.key} {row.kind} {row.subject} {row.body}".encode(), "the outbox")
    for eml in mailbox.glob("*.eml"):
        msg = message_from_bytes(eml.read_bytes(), policy=email_policy.default)
        assert_no_phi(f"{msg['Subject']} {msg.get_body(('plain',)).get_content()}".encode(), "an e-mail")
