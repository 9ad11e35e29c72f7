"""Record workflow histories for the replay test (tests/test_replay.py).

Run from the repository root when a history should be added (never to "fix" a failing
replay: a failing replay means the code change is not safe for running cases):

    python -m tests.histories.record PREFIX        # the lifecycles, as PREFIX_case_*.json
    python -m tests.histories.record --restart     # a query while the worker restarts
    python -m tests.histories.record --requests    # requests under dated and published policies

The files without a prefix were written before the timer-driven-deadlines patch; those with
``timer_driven_`` after it, those with ``patch_set_`` after the patch set (workflows/common.py
PATCH_SET) and with compressed payloads. Old files are kept: running cases of that code must
still replay.

Payloads are encrypted with the fixed, test-only key below; the people are synthetic.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from models.converter import Keyring, data_converter
from models.policy import Policy

HERE = Path(__file__).resolve().parent
# Test-only key: these histories hold synthetic people only.
TEST_KEYRING = Keyring(keys={"replay-test": base64.b64decode("q9Qk3z7b1mV0m8mJ6c2QyWn9r1b0T5n3y6kV8x2Lh4E=")},
                       active="replay-test", case_id_secret=b"replay-test-secret")
CONVERTER = data_converter(TEST_KEYRING)


@asynccontextmanager
async def time_skipping_cases():
    """An embedded PostgreSQL, a time-skipping server and a worker: (env, cases) to record with."""
    import tempfile

    from activities.db import make_engine, session_factory, start_embedded
    from activities.notify import MailboxChannel, Notifier
    from activities.storage import CaseActivities
    from migrations import upgrade_async
    from starters.client import Cases
    from tests.conftest import _binary
    from workers.worker import build_worker, ensure_search_attributes

    base = Path(tempfile.mkdtemp())
    base.chmod(0o755)
    url = start_embedded(base / "pg")
    await upgrade_async(url)
    sessions = session_factory(make_engine(url))
    activities = CaseActivities(sessions, Notifier(sessions, MailboxChannel(base / "mail"), "a@b.c", "s@b.c"))
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"), data_converter=CONVERTER)
    await ensure_search_attributes(env.client, "default", known=False)
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    try:
        async with build_worker(env.client, queue, activities):
            yield env, Cases(env.client, queue, Policy(), TEST_KEYRING.case_id_secret)
    finally:
        await env.shutdown()


async def main(prefix: str) -> None:
    from tests.conftest import INTAKE
    from tests.helpers import CM, MC, SUP, act, referral

    async with time_skipping_cases() as (env, cases):
        # 1. Referral to active through a denial, an appeal and its reversal.
        s = await cases.refer(referral(first_name="Replay"), INTAKE)
        cid = s.case_id
        await cases.act(cid, "record_application", act(CM))
        await env.sleep(timedelta(days=8))
        await cases.act(cid, "record_records", act(CM))
        await cases.act(cid, "record_eligibility", act(CM, finances={"residential_in_county": True, "full_scope_medi_cal": True}))
        await cases.act(cid, "record_medical_determination", act(MC, condition_id="C1", eligible=False, reason="x"))
        await cases.act(cid, "file_appeal", act(CM, grounds="new report"))
        await cases.act(cid, "decide_appeal", act(SUP, outcome="overturned", reason="report"))
        await cases.act(cid, "assign_case_manager", act(SUP, case_manager="cm.replay"))
        await env.sleep(timedelta(days=2))
        history = await env.client.get_workflow_handle(cid).fetch_history()
        (HERE / f"{prefix}case_appeal_to_active.json").write_text(history.to_json())
        # 2. The first yearly run of a case that continued as new.
        first_run = (await env.client.get_workflow_handle(cid).describe()).run_id
        await env.sleep(timedelta(days=400))
        history = await env.client.get_workflow_handle(cid, run_id=first_run).fetch_history()
        (HERE / f"{prefix}case_first_run_continued.json").write_text(history.to_json())


async def query_during_restart() -> None:
    """A case's second-notice timer fires while its `ccs worker` is killed and `ccs show` asks;
    the history a restarted worker then writes (see tests/test_faults.py and tests/canary/)."""
    import shutil
    import tempfile
    from datetime import datetime, timezone


    from activities.db import start_embedded, stop_embedded
    from migrations import upgrade_async
    from starters.client import Cases
    from tests.canary.test_stale_clock import fired_then_waiting
    from tests.conftest import INTAKE
    from tests.helpers import referral
    from tests.rig import CCS, DevServer
    from tests.test_faults import worker_env

    base = Path(tempfile.mkdtemp())
    base.chmod(0o755)
    url = start_embedded(base / "pg")
    await upgrade_async(url)
    server = DevServer(base)
    server.start()
    worker = None
    try:
        client = await server.connect(CONVERTER)
        queue = f"tq-{uuid.uuid4().hex[:8]}"
        env = worker_env(base, url, server.address, queue, 0)
        env.update(CCS_ENCRYPTION_KEYS=f"replay-test:{base64.b64encode(TEST_KEYRING.keys['replay-test']).decode()}",
                   CCS_CASE_ID_SECRET=base64.b64encode(TEST_KEYRING.case_id_secret).decode(),
                   CCS_NOTIFY_CHANNEL="mailbox", CCS_MAILBOX_DIR=str(base / "mail"))

        def start():
            return subprocess.Popen([CCS, "worker"], env=env, cwd=base, start_new_session=True)

        worker = start()
        policy = Policy.model_validate({"intake": {"second_notice_after": "PT8S"}})
        cases = Cases(client, queue, policy, TEST_KEYRING.case_id_secret)
        status = await cases.refer(referral(first_name="Restart"), INTAKE)
        cid, due = status.case_id, status.deadlines["second_notice"]
        handle = client.get_workflow_handle(cid)
        await asyncio.sleep(2)  # at rest: its first steps recorded
        assert datetime.now(timezone.utc) < due
        worker.send_signal(signal.SIGKILL)
        worker.wait()

        async def ask():
            while True:
                try:
                    return await cases.show(cid)
                except Exception:
                    await asyncio.sleep(0.2)

        queries = [asyncio.create_task(ask())]
        while not fired_then_waiting((await handle.fetch_history()).events):
            await asyncio.sleep(0.2)
        queries += [asyncio.create_task(ask()) for _ in range(2)]
        await asyncio.sleep(0.5)
        worker = start()
        await asyncio.wait_for(asyncio.gather(*queries), 60)
        deadline = time.monotonic() + 60
        while "second_notice" not in [k.split("/")[-2] for k in (await cases.show(cid)).notices_sent]:
            assert time.monotonic() < deadline, "no second notice"
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # its step recorded
        history = await handle.fetch_history()
        (HERE / "timer_driven_case_query_during_restart.json").write_text(history.to_json())
    finally:
        if worker is not None:
            worker.kill()
            worker.wait()
        await server.stop_async()
        stop_embedded(base / "pg")
        shutil.rmtree(base, ignore_errors=True)


async def requests_under_changing_policy() -> None:
    """A case whose trips take the values in force on their dates (a dated change) and a policy
    published while it runs (the ``current_policy`` local activity), recorded after the
    policy-in-force patch: the case's history and its last trip's."""
    import shutil
    import tempfile
    from decimal import Decimal

    from activities.db import make_engine, session_factory, start_embedded, stop_embedded
    from activities.notify import MailboxChannel, Notifier
    from activities.policy import publish_policy
    from activities.storage import CaseActivities
    from migrations import upgrade_async
    from starters.client import Cases
    from tests.conftest import INTAKE, _binary
    from tests.helpers import CM, MC, act, referral
    from tests.test_case_requests import trip
    from workers.worker import build_worker, ensure_search_attributes

    base = Path(tempfile.mkdtemp())
    base.chmod(0o755)
    url = start_embedded(base / "pg")
    engine = make_engine(url)
    try:
        await upgrade_async(url)
        sessions = session_factory(engine)
        activities = CaseActivities(sessions, Notifier(sessions, MailboxChannel(base / "mail"), "a@b.c", "s@b.c"))
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=_binary("temporal-test-server"), data_converter=CONVERTER)
        await ensure_search_attributes(env.client, "default", known=False)
        queue = f"tq-{uuid.uuid4().hex[:8]}"
        today = (await env.get_current_time()).date()
        policy = Policy.model_validate({"changes": [{"effective": today + timedelta(days=20), "values": {
            "meals_lodging": {"meals_per_person_per_day": "18.00", "receipts_within": "P30D"}}}]})
        cases = Cases(env.client, queue, policy, TEST_KEYRING.case_id_secret)
        async with build_worker(env.client, queue, activities):
            s = await cases.refer(referral(first_name="ReplayPolicy"), INTAKE)
            cid, day = s.case_id, s.referral_date
            await cases.act(cid, "record_application", act(CM, received_on=day.isoformat()))
            await cases.act(cid, "record_records", act(CM, received_on=day.isoformat()))
            await cases.act(cid, "record_eligibility", act(CM, finances={"residential_in_county": True,
                                                                         "full_scope_medi_cal": True}))
            await cases.act(cid, "record_medical_determination", act(MC, condition_id="C1", eligible=True, reason="x"))
            await cases.act(cid, "request_meals_lodging", act(CM, request=trip(day, 10)))
            await cases.act(cid, "request_meals_lodging", act(CM, request=trip(day, 30)))
            await env.sleep(timedelta(days=1))
            await publish_policy(sessions, policy.model_copy(update={"meals_lodging": policy.meals_lodging.model_copy(
                update={"mileage_rate": Decimal("0.30")})}))
            s = await cases.act(cid, "request_meals_lodging", act(CM, request=trip(day + timedelta(days=1), 12)))
            await env.sleep(timedelta(days=2))
            last = s.requests[-1].request_id
            for wid, name in ((cid, "case"), (last, "meals_lodging")):
                history = await env.client.get_workflow_handle(wid).fetch_history()
                (HERE / f"policy_in_force_{name}.json").write_text(history.to_json())
        await env.shutdown()
    finally:
        await engine.dispose()
        stop_embedded(base / "pg")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--restart"]:
        asyncio.run(query_during_restart())
    elif sys.argv[1:] == ["--requests"]:
        asyncio.run(requests_under_changing_policy())
    else:
        asyncio.run(main(sys.argv[1] + "_" if sys.argv[1:] else ""))
