"""Code changes must be safe for running cases: recorded histories replay against the
current workflow code without nondeterminism."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.histories.record import CONVERTER
from workflows.registry import WORKFLOWS

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=CONVERTER)
    await replayer.replay_workflow(history)


def test_there_are_histories_to_replay():
    assert len(HISTORIES) >= 2


async def test_a_fresh_history_replays(ts_worker):
    """The histories the current code writes replay too (a changed branch shows up here)."""
    from tests.conftest import CONVERTER as LIVE, INTAKE
    from tests.helpers import CM, act, referral

    env, cases = ts_worker
    status = await cases.refer(referral(first_name="Fresh"), INTAKE)
    await cases.act(status.case_id, "record_application", act(CM))
    history = await env.client.get_workflow_handle(status.case_id).fetch_history()
    await Replayer(workflows=WORKFLOWS, data_converter=LIVE).replay_workflow(history)


async def test_a_new_case_records_one_patch_marker_for_the_patch_set(ts_worker):
    """Each patch marker costs a command and a TemporalChangeVersion upsert (a visibility write):
    a case begun now records the set's one marker, wherever its patches are asked for."""
    from temporalio.api.enums.v1 import EventType
    from temporalio.converter import PayloadConverter

    from tests.conftest import CONVERTER as LIVE, INTAKE
    from tests.helpers import CM, MC, act, referral
    from workflows.common import PATCH_SET

    env, cases = ts_worker
    status = await cases.refer(referral(first_name="Patchset"), INTAKE)
    for name, data in [("record_application", act(CM)), ("record_records", act(CM)),
                       ("record_eligibility", act(CM, finances={"residential_in_county": True,
                                                                "full_scope_medi_cal": True})),
                       ("record_medical_determination", act(MC, condition_id="C1", eligible=True, reason="x"))]:
        status = await cases.act(status.case_id, name, data)
    assert status.stage == "active"
    history = await env.client.get_workflow_handle(status.case_id).fetch_history()
    markers = [e.marker_recorded_event_attributes for e in history.events
               if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    ids = [PayloadConverter.default.from_payloads(m.details["patch-data"].payloads)[0]["id"] for m in markers]
    assert ids == [PATCH_SET]
    # (The dev server also gets one TemporalChangeVersion upsert per marker; this test server none.)
    await Replayer(workflows=WORKFLOWS, data_converter=LIVE).replay_workflow(history)
