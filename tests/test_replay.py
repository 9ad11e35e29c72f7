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
