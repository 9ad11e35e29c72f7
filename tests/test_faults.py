"""Fault tests on the real Temporal dev server and real PostgreSQL (issue 6, item 1).

- a `ccs worker` process killed with SIGKILL at seeded random points of six lifecycles;
- the one kill the outbox cannot cover: between the SMTP server's "250" and the outbox commit;
- PostgreSQL stopped mid-lifecycle, then started again;
- the Temporal dev server restarted on its persisted file;
- generated malformed referrals and actions against a live case.

Each test bounds its own time; every wait polls with a deadline. The worker-kill test draws
its random moments from a seed it prints on failure; CCS_FAULT_SEED=<seed> replays that draw.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import random
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from activities.db import make_engine, session_factory, start_embedded, stop_embedded
from activities.notify import MailboxChannel, Notifier, message_id
from activities.storage import CaseActivities
from activities.tables import AuditRow, CaseRow, OutboxRow, TaskRow
from migrations import upgrade_async
from models.actions import ACTIONS
from models.case import CaseStatus, StepRecord
from models.policy import Policy
from rules.ages import local_today, start_of_day
from starters.client import Cases, CcsError, case_id_for
from tests.conftest import CONVERTER, INTAKE, KEYRING, cases_for
from tests.helpers import CM, MC, SUP, act, kinds, referral
from tests.test_bad_input import _payloads
from tests.canary.test_stale_clock import fired_then_waiting
from tests.rig import DevServer, WorkerProcess, start_postgres
from tests.rig import worker_env as stack_worker_env
from tests.helpers import free_port
from tests.test_notify import CountingChannel
from workers.worker import build_worker
from workflows.registry import WORKFLOWS

MAIL_FROM = "ccs@county.example"
SUPERVISOR = "supervisor@county.example"
ELIGIBLE = {"residential_in_county": True, "full_scope_medi_cal": True}
NOT_RESIDENT = {"residential_in_county": False}

# Timers in seconds. The appeal and hearing windows close cases by themselves.
FAST = Policy.model_validate({
    "intake": {"second_notice_after": "PT2S"},
    "records": {"reminder_every": "PT2S", "escalate_after": "PT4S"},
    "notices": {"appeal_window": "PT3S", "fair_hearing_window": "PT3S"},
    "supervision": {"escalation_grace": "PT2S"},
})
# The same, with an appeal window long enough that a dead worker cannot make the appeal late.
FAST_APPEAL = FAST.model_copy(update={"notices": FAST.notices.model_copy(update={"appeal_window": timedelta(hours=1)})})


# ---- waiting --------------------------------------------------------------------------


async def until(probe, timeout: float, what: str, every: float = 0.2):
    """Await ``probe()`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = await probe()
        except (CcsError, RPCError, asyncio.TimeoutError) as e:  # worker or server away for a moment
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")
        await asyncio.sleep(every)


async def show(cases: Cases, case_id: str) -> CaseStatus:
    # A query waits for a worker; with the worker dead, give up quickly and ask again.
    return await asyncio.wait_for(cases.show(case_id), 5)


async def wait_status(cases: Cases, case_id: str, predicate, timeout: float, what: str) -> CaseStatus:
    async def probe():
        status = await show(cases, case_id)
        return status if predicate(status) else None

    return await until(probe, timeout, f"{what} on {case_id}")


# ---- what the workflow asked to record, and what PostgreSQL holds ------------------------


async def steps_of(client: Client, case_id: str) -> tuple[list[StepRecord], bool]:
    """Every step the case workflow handed to `record_steps`, decoded from its history, and
    whether the workflow is busy: a workflow task or a `record_steps` activity not finished
    (an idle case has no step waiting: its run loop flushes before it waits)."""
    history = await client.get_workflow_handle(case_id).fetch_history()
    steps: list[StepRecord] = []
    scheduled, completed = set(), set()
    task_open = False
    for e in history.events:
        t = e.event_type
        if t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = e.activity_task_scheduled_event_attributes
            scheduled.add(e.event_id)
            if attrs.activity_type.name == "record_steps":
                [batch] = await CONVERTER.decode(list(attrs.input.payloads), [list[StepRecord]])
                steps.extend(batch)
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed.add(e.activity_task_completed_event_attributes.scheduled_event_id)
        elif t == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            task_open = True
        elif t in (EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED):
            task_open = False
        elif t == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            raise AssertionError(f"{case_id}: a workflow task failed")
    return steps, task_open or bool(scheduled - completed)


async def db_view(sessions, case_id: str) -> dict:
    async with sessions() as s:
        audit = (await s.execute(select(AuditRow.seq, AuditRow.action).where(AuditRow.source == case_id)
                                 .order_by(AuditRow.seq, AuditRow.id))).all()
        case = (await s.execute(select(CaseRow).where(CaseRow.case_id == case_id))).scalar_one_or_none()
        tasks = (await s.execute(select(TaskRow.task_id, TaskRow.status).where(TaskRow.case_id == case_id))).all()
        outbox = (await s.execute(select(OutboxRow.key, OutboxRow.status).where(OutboxRow.case_id == case_id))).all()
    return {"audit": [tuple(r) for r in audit], "case": case, "tasks": dict(tasks), "outbox": dict(outbox)}


async def settled(client: Client, sessions, case_id: str) -> dict | None:
    """The case once every step it took is in PostgreSQL and every notice is out."""
    steps, busy = await steps_of(client, case_id)
    if busy:
        return None
    view = await db_view(sessions, case_id)
    if view["case"] is None or view["case"].last_seq != len(steps):
        return None
    if any(status == "pending" for status in view["outbox"].values()):
        return None  # deferred notices go out with the worker's dispatcher
    return {"steps": steps, **view}


async def replay_failures(client: Client, case_ids, keep: Path) -> dict[str, str]:
    """Replay each case's history against the current code (a restarted worker does just that);
    the histories are kept in ``keep`` for a look afterwards."""
    replayer = Replayer(workflows=WORKFLOWS, data_converter=CONVERTER)
    failures = {}
    for cid in case_ids:
        history = await client.get_workflow_handle(cid).fetch_history()
        (keep / f"{cid}.json").write_text(history.to_json())
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures[cid] = f"{result.replay_failure}"
    return failures


def assert_recorded_once(case_id: str, status: CaseStatus, view: dict) -> None:
    """Every step reached PostgreSQL exactly once and the tables agree with the workflow."""
    steps, audit = view["steps"], view["audit"]
    n = len(steps)
    assert [s.seq for s in steps] == list(range(1, n + 1)), f"{case_id}: the workflow's own steps are not 1..N"
    assert [seq for seq, _ in audit] == list(range(1, n + 1)), \
        f"{case_id}: audit seqs are not contiguous 1..{n} (a step lost or doubled): {[seq for seq, _ in audit]}"
    assert [a for _, a in audit] == [s.action for s in steps], f"{case_id}: audit actions differ from the steps"
    case = view["case"]
    assert (case.stage, case.last_seq) == (status.stage, n), f"{case_id}: read model behind the workflow"
    opened = {t.id for s in steps for t in s.tasks_opened}
    assert set(view["tasks"]) == opened, f"{case_id}: task rows differ from the tasks the steps opened"
    open_rows = {tid for tid, st_ in view["tasks"].items() if st_ == "open"}
    assert open_rows == {t.id for t in status.open_tasks}, f"{case_id}: open task rows differ from the workflow"
    notices = [n.key for s in steps for n in s.notices]
    assert len(notices) == len(set(notices)) and set(notices) == set(status.notices_sent)
    assert set(view["outbox"]) == set(notices), f"{case_id}: outbox rows differ from the workflow's notices"
    assert set(view["outbox"].values()) <= {"sent"}, f"{case_id}: outbox rows not sent: {view['outbox']}"


# ---- an SMTP server that counts, and can kill the worker at a chosen SMTP command -----------


class FaultSmtp:
    """aiosmtpd handler: accepts every message, counts accepted messages per X-CCS-Notice-Key.

    ``on_rcpt(address)`` / ``on_quit(n)``, if set, are awaited (on the test's event loop) at
    each RCPT TO / the n-th QUIT: the worker is then inside ``record_steps`` (or the
    dispatcher), between its outbox commit and the send, or just after the send.
    A message is accepted under ``gate``; a message whose sender was killed while it waited
    for the gate is refused (451), as a real server drops a transaction whose client is gone.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.counts: Counter[str] = Counter()
        self.message_ids: dict[str, list[str]] = {}
        self.gate = threading.Lock()
        self.generation = 0
        self.mails = self.quits = 0
        self.on_rcpt = self.on_quit = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> "FaultSmtp":
        self.loop = asyncio.get_running_loop()
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    async def _call_test_loop(self, hook, n: int) -> None:
        if hook is not None:
            # Shielded: killing the worker closes this SMTP session, which cancels this handler;
            # the hook (kill, then restart) must run to its end all the same.
            await asyncio.shield(asyncio.wrap_future(asyncio.run_coroutine_threadsafe(hook(n), self.loop)))

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.ccs_generation = self.generation
        self.mails += 1
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await self._call_test_loop(self.on_rcpt, address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        while not self.gate.acquire(blocking=False):
            await asyncio.sleep(0.002)
        try:
            if getattr(envelope, "ccs_generation", None) != self.generation:
                return "451 4.4.2 sender went away; try again"
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            key = msg["X-CCS-Notice-Key"].strip()  # a long key is folded onto its own line
            self.counts[key] += 1
            self.message_ids.setdefault(key, []).append(msg["Message-ID"])
            return "250 OK"
        finally:
            self.gate.release()

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        await self._call_test_loop(self.on_quit, self.quits)
        return "221 Bye"

    async def hold_gate(self) -> None:
        while not self.gate.acquire(blocking=False):
            await asyncio.sleep(0.002)


def worker_env(home: Path, database_url: str, address: str, queue: str, smtp_port: int) -> dict:
    """`ccs worker` with the test keyring, sending notices to the fault SMTP server."""
    return stack_worker_env(
        home, database_url, address, queue, KEYRING,
        CCS_NOTIFY_CHANNEL="smtp", CCS_SMTP_HOST="127.0.0.1", CCS_SMTP_PORT=str(smtp_port),
        CCS_SMTP_ALLOW_PLAIN="true",  # a plain local test server (TLS: tests/test_letter_delivery.py)
        CCS_MAIL_FROM=MAIL_FROM, CCS_SUPERVISOR_EMAIL=SUPERVISOR,
    )


class KillableWorker(WorkerProcess):
    """`ccs worker` (tests/rig.py), SIGKILLed at chosen moments and restarted."""

    def __init__(self, env: dict, home: Path, smtp: FaultSmtp, sessions, rng: random.Random) -> None:
        super().__init__(env, home)
        self.smtp, self.sessions, self.rng = smtp, sessions, rng
        self.kills: list[str] = []
        self.lock = asyncio.Lock()
        self.t0 = time.monotonic()

    async def _outbox_caught_up(self) -> None:
        """Every message the SMTP server accepted is committed 'sent' (no kill inside that window)."""
        async def probe():
            keys = list(self.smtp.counts)
            if not keys:
                return True
            async with self.sessions() as s:
                behind = (await s.scalars(select(OutboxRow.key).where(
                    OutboxRow.key.in_(keys), OutboxRow.status != "sent"))).all()
            return not behind

        await until(probe, 10, "the outbox to record what the SMTP server accepted", every=0.01)

    async def kill(self, why: str, pid: int | None = None, restart_after: tuple[float, float] = (0.3, 1.5)) -> bool:
        """SIGKILL the running worker (if it is ``pid``), then start a new one."""
        async with self.lock:
            proc = self.proc  # (a killed worker is replaced before the lock is let go)
            if proc.poll() is not None:
                raise AssertionError(f"the worker exited by itself ({proc.returncode}):\n{self.logs()}")
            if pid is not None and proc.pid != pid:
                return False  # another kill got there first
            await self.smtp.hold_gate()
            try:
                await self._outbox_caught_up()
                proc.send_signal(signal.SIGKILL)
                await asyncio.to_thread(proc.wait)
                self.smtp.generation += 1
            finally:
                self.smtp.gate.release()
            assert proc.returncode == -signal.SIGKILL, f"worker exited by itself ({proc.returncode}):\n{self.logs()}"
            self.kills.append(f"{time.monotonic() - self.t0:5.1f}s {why}")
            await asyncio.sleep(self.rng.uniform(*restart_after))
            self.start()
            return True


@pytest_asyncio.fixture
async def worker_rig(dev_env, database_url, engine, sessions):
    """A real SMTP server, a `ccs worker` subprocess against the session's dev server and
    PostgreSQL, and a Cases client sharing the worker's keys."""
    home = Path(tempfile.mkdtemp(prefix="ccs-fault-worker-"))
    seed = int(os.environ.get("CCS_FAULT_SEED", "0")) or random.SystemRandom().randrange(1, 10**6)
    rng = random.Random(seed)
    queue = f"tq-fault-{uuid.uuid4().hex[:8]}"
    address = dev_env.client.service_client.config.target_host
    with FaultSmtp() as smtp:
        workers = KillableWorker(worker_env(home, database_url, address, queue, smtp.port), home, smtp, sessions, rng)
        workers.start()
        try:
            yield workers, smtp, cases_for(dev_env, queue, FAST), rng, seed
        finally:
            await workers.stop_async()
            shutil.rmtree(home, ignore_errors=True)


# ---- 1. the worker killed ----------------------------------------------------------------


# A step in flight when the worker dies waits out record_steps' 10 s heartbeat timeout before
# its retry, and a restarted worker takes seconds to start on a loaded machine; the case's
# timers wait with them.
LIFE_WAIT = 80


async def wait_notice(sessions, case_id: str, kind: str) -> None:
    """Wait for the case's notice of ``kind`` to be recorded (in PostgreSQL, so the waiting
    adds no queries of its own to the ones the tests below make on purpose)."""
    async def probe():
        async with sessions() as s:
            return await s.scalar(select(OutboxRow.key).where(OutboxRow.case_id == case_id, OutboxRow.kind == kind)
                                  .limit(1))

    await until(probe, LIFE_WAIT, f"the {kind} notice of {case_id}")


def family(name: str) -> str:
    return f"{name.lower()}@family.example"


def child(name: str) -> dict:
    """A referral whose family has an address of its own, so SMTP can tell the cases apart."""
    return referral(first_name=name, guardian={"name": "Pat Example", "email": family(name)})


async def _full_path(cases: Cases, sessions, name: str) -> tuple[str, str]:
    cid = (await cases.refer(child(name), INTAKE)).case_id
    await wait_notice(sessions, cid, "second_notice")
    await cases.act(cid, "record_application", act(CM))
    await wait_notice(sessions, cid, "records_escalation")
    await cases.act(cid, "record_records", act(CM))
    await cases.act(cid, "record_eligibility", act(CM, finances=ELIGIBLE))
    await cases.act(cid, "record_medical_determination", act(MC, condition_id="C1", eligible=True, reason="CF"))
    await cases.act(cid, "assign_case_manager", act(SUP, case_manager="cm.fault"))
    return cid, "active"


async def _denied_then_window_closes(cases: Cases, sessions, name: str) -> tuple[str, str]:
    cid = (await cases.refer(child(name), INTAKE)).case_id
    await cases.act(cid, "record_application", act(CM))
    await cases.act(cid, "record_records", act(CM))
    status = await cases.act(cid, "record_eligibility", act(CM, finances=NOT_RESIDENT))
    assert status.stage == "denied"
    return cid, "closed"  # the 3-second appeal window closes it


async def _withdrawn_in_records(cases: Cases, sessions, name: str) -> tuple[str, str]:
    cid = (await cases.refer(child(name), INTAKE)).case_id
    await cases.act(cid, "record_application", act(CM))
    await wait_notice(sessions, cid, "records_reminder")
    await cases.act(cid, "close_case", act(CM, reason="family_withdrew"))
    return cid, "closed"


async def _active_then_moved(cases: Cases, sessions, name: str) -> tuple[str, str]:
    cid = (await cases.refer(child(name) | {"records_attached": True}, INTAKE)).case_id
    await cases.act(cid, "record_application", act(CM))
    await cases.act(cid, "record_eligibility", act(CM, finances=ELIGIBLE))
    await cases.act(cid, "record_medical_determination", act(MC, condition_id="C1", eligible=True, reason="CF"))
    await cases.act(cid, "close_case", act(CM, reason="moved_out_of_state"))
    return cid, "closed"


async def _appeal_upheld_then_hearing_window_closes(cases: Cases, sessions, name: str) -> tuple[str, str]:
    cases = Cases(cases.client, cases.task_queue, FAST_APPEAL, cases.secret)
    cid = (await cases.refer(child(name), INTAKE)).case_id
    await cases.act(cid, "record_application", act(CM))
    await cases.act(cid, "record_records", act(CM))
    await cases.act(cid, "record_eligibility", act(CM, finances=ELIGIBLE))
    await cases.act(cid, "record_medical_determination", act(MC, condition_id="C1", eligible=False, reason="no"))
    await cases.act(cid, "file_appeal", act(CM, grounds="new report"))
    await cases.act(cid, "decide_appeal", act(SUP, outcome="upheld", reason="still not eligible"))
    return cid, "closed"  # the 3-second fair-hearing window closes it


async def _left_in_intake(cases: Cases, sessions, name: str) -> tuple[str, str]:
    cid = (await cases.refer(child(name), INTAKE)).case_id
    await wait_notice(sessions, cid, "task_escalation")
    return cid, "intake"


LIFECYCLES = [_full_path, _denied_then_window_closes, _withdrawn_in_records, _active_then_moved,
              _appeal_upheld_then_hearing_window_closes, _left_in_intake]
CLOSURES = {"_denied_then_window_closes": "not_eligible", "_withdrawn_in_records": "family_withdrew",
            "_active_then_moved": "moved_out_of_state", "_appeal_upheld_then_hearing_window_closes": "not_eligible"}


# CCS_FAULT_CASES=50 runs the lifecycles over and over, 50 cases in all (the suite runs six).
FAULT_CASES = max(len(LIFECYCLES), int(os.environ.get("CCS_FAULT_CASES", "0") or 0))
SLACK = 3 * (FAULT_CASES - len(LIFECYCLES))  # seconds more per wait on a larger run


@pytest.mark.timeout(150 + 3 * SLACK)
async def test_worker_killed_at_random_points(worker_rig, sessions, tmp_path):
    """Six lifecycles (or CCS_FAULT_CASES cases) while the `ccs worker` process is SIGKILLed three times: once inside
    `record_steps` after its commit and before the SMTP send, twice at seeded random moments,
    each time restarted after a seeded random pause. Every case ends where it should; every
    notice went out exactly once; every step is in the audit log exactly once; every history
    replays against the code (as the next restarted worker will replay it)."""
    workers, smtp, cases, rng, seed = worker_rig
    started = time.monotonic()
    tag = uuid.uuid4().hex[:6]
    lives = [LIFECYCLES[i % len(LIFECYCLES)] for i in range(FAULT_CASES)]
    names = [f"Fault{tag}{i}" for i in range(FAULT_CASES)]
    pauses = [rng.uniform(1.0, 4.0) for _ in range(2)]

    # First a kill inside record_steps, after its commit, at the RCPT TO of the intake case's first
    # notice: that step waits out record_steps' heartbeat timeout, and so do that case's timers
    # (the intake case is the one with the least left to do after that). Then two kills at
    # random moments of the lifecycles that go on meanwhile.
    target, rcpt_killed = family(names[LIFECYCLES.index(_left_in_intake)]), []

    async def kill_on_rcpt(address: str) -> None:
        if address == target and not rcpt_killed and time.monotonic() - started < 20:
            rcpt_killed.append(address)  # (if a random kill gets there first, it lands at this point too)
            await workers.kill("in record_steps between its commit and the SMTP send", pid=workers.proc.pid)

    smtp.on_rcpt = kill_on_rcpt

    async def killer() -> None:
        await until(lambda: asyncio.sleep(0, result=bool(workers.kills)), 30, "the kill inside record_steps")
        for pause in pauses:
            await asyncio.sleep(pause)
            await workers.kill(f"at random, {pause:.1f} s after the previous one")

    try:
        results = await asyncio.wait_for(asyncio.gather(
            killer(), *(life(cases, sessions, name) for life, name in zip(lives, names))), 85 + SLACK)
    except BaseException as e:
        raise AssertionError(f"seed {seed}; kills {workers.kills}: {e!r}\n{workers.logs()}") from e
    expected = [(life, cid, stage) for life, (cid, stage) in zip(lives, results[1:])]
    assert len(workers.kills) >= 2 and rcpt_killed, f"seed {seed}: too few kills landed: {workers.kills}"

    client = cases.client

    async def finished(life, cid: str, stage: str):
        # At rest first (every step recorded, nothing pending), then the first query.
        view = await until(lambda: settled(client, sessions, cid), 85 + SLACK, f"{cid} to reach PostgreSQL")
        if stage == "closed":
            result = await client.get_workflow_handle(cid, result_type=CaseStatus).result()
            assert result.closure.reason == CLOSURES[life.__name__], (life.__name__, result.closure)
        status = await show(cases, cid)
        assert status.stage == stage == view["case"].stage, (life.__name__, status.stage, view["case"].stage)
        return cid, (status, view)

    case_ids = [cid for _, cid, _ in expected]
    first = {life: cid for life, cid, _ in reversed(expected)}
    try:
        views = dict(await asyncio.gather(*(finished(life, cid, stage) for life, cid, stage in expected)))
    except BaseException as e:
        failures = await replay_failures(client, case_ids, tmp_path)
        raise AssertionError(f"seed {seed}; kills {workers.kills}; histories in {tmp_path}; "
                             f"replay failures: {failures}: {e!r}") from e
    active = views[first[_full_path]][0]
    assert active.case_manager == "cm.fault" and [h.stage for h in active.stage_history] == [
        "intake", "records", "eligibility", "medical_review", "active"]
    intake = views[first[_left_in_intake]][0]
    assert Counter(kinds(intake)) == {"application_packet": 1, "second_notice": 1, "task_overdue": 1,
                                       "task_escalation": 1}

    # Exactly once, end to end: every notice the workflows took was accepted by SMTP once.
    keys = set()
    for cid, (status, view) in views.items():  # every case is at rest: no timer due any more
        assert_recorded_once(cid, status, view)
        keys |= set(status.notices_sent)
    # (The worker's dispatcher also sends notices that earlier tests left pending in the shared
    # database: only this test's cases count.)
    ours = {k: n for k, n in smtp.counts.items() if k.split("/")[0] in views}
    twice = {k: n for k, n in ours.items() if n > 1}
    assert not twice, f"seed {seed}; kills {workers.kills}: notices sent more than once: {twice}"
    assert set(ours) == keys, f"seed {seed}: SMTP got {len(ours)} keys, the cases sent {len(keys)}"
    async with sessions() as s:
        attempts = dict((await s.execute(
            select(OutboxRow.key, OutboxRow.attempts).where(OutboxRow.key.in_(keys)))).all())
    assert len(attempts) == len(keys) and all(a >= 1 for a in attempts.values())
    print(f"seed {seed}; kills {workers.kills}; {len(keys)} notices; {time.monotonic() - started:.1f} s")

    # A restarted worker replays these histories: they must replay against the code.
    failures = await replay_failures(client, case_ids, tmp_path)
    assert not failures, f"seed {seed}; kills {workers.kills}: histories in {tmp_path} do not replay: {failures}"


@pytest.mark.timeout(90)
async def test_worker_killed_between_smtp_accept_and_outbox_commit(worker_rig, sessions):
    """SIGKILL the worker when the SMTP server has accepted the first notice (the client is
    waiting for the reply to QUIT, the outbox row is still locked and 'pending'). Notices are
    at least once: the notice is sent again (never lost), under the same Message-ID, so a
    receiving mail system can drop the copy."""
    workers, smtp, cases, rng, seed = worker_rig

    async def kill_on_quit(n: int) -> None:
        if n == 1:
            pid = workers.proc.pid
            workers.proc.send_signal(signal.SIGKILL)  # no gate: this is the window itself
            await asyncio.to_thread(workers.proc.wait)
            workers.kills.append(f"after SMTP accepted message 1 (pid {pid})")

    smtp.on_quit = kill_on_quit
    status = await cases.refer(referral(first_name=f"Window{uuid.uuid4().hex[:6]}"), INTAKE)
    cid = status.case_id
    [packet] = status.notices_sent
    await until(lambda: asyncio.sleep(0, result=bool(workers.kills)), 20, "the kill after the first SMTP accept")
    assert smtp.counts[packet] == 1
    async with sessions() as s:
        row = (await s.execute(select(OutboxRow).where(OutboxRow.key == packet))).scalar_one()
    assert (row.status, row.attempts) == ("pending", 0)  # the worker's transaction died with it
    workers.start()

    async def sent():
        async with sessions() as s:
            return await s.scalar(select(OutboxRow.status).where(OutboxRow.key == packet)) == "sent"

    await until(sent, 45, "the dispatcher to deliver the pending notice")  # older than 10 s, every 15 s
    ids = smtp.message_ids[packet]
    assert smtp.counts[packet] == 2, f"{packet} reached the SMTP server {smtp.counts[packet]} times"
    assert set(ids) == {message_id(packet, "county.example")}  # a receiver can drop the copy by Message-ID


async def query_through_a_restart(workers: KillableWorker, cases: Cases, wid: str, due: datetime) -> None:
    """SIGKILL the worker while ``wid`` waits on a timer due at ``due``; ask `ccs show` three
    times while no worker is up and the timer fires; then start a worker, which answers."""
    workers.proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(workers.proc.wait)
    assert datetime.now(timezone.utc) < due, "the worker died after the timer: nothing to see"
    async def ask():  # a status page refreshed during a deploy: the server refuses a query with no worker
        return await until(lambda: asyncio.wait_for(cases.show(wid), 30), 60, f"an answer from {wid}", every=0.2)

    queries = [asyncio.create_task(ask())]

    async def back_on_the_normal_queue() -> bool:
        # The timer fired and its workflow task left the dead worker's sticky queue (after its 10 s
        # timeout): a worker that starts now may get a query on a history that ends TimerFired, ...,
        # WorkflowTaskScheduled, the case the SDK runs on a stale clock (tests/canary/).
        return fired_then_waiting((await cases.client.get_workflow_handle(wid).fetch_history()).events)

    await until(back_on_the_normal_queue, 40, "the timer to fire and its task to wait on the normal queue")
    queries += [asyncio.create_task(ask()) for _ in range(2)]
    await asyncio.sleep(0.5)
    workers.start()
    answers = await asyncio.gather(*queries)
    assert all(getattr(a, "case_id", None) and wid.startswith(a.case_id) for a in answers)


@pytest.mark.timeout(90)
async def test_query_while_the_worker_restarts_keeps_the_history_replayable(worker_rig, sessions, tmp_path):
    """`ccs show` on a case waiting on a timer, while its worker is down (SIGKILL) and the timer
    fires; then a worker comes back and answers. The timer's task then runs on the previous
    task's clock (temporalio 1.35.0, see tests/canary/); the case fires the deadline all the
    same, and its history replays afterwards."""
    workers, smtp, cases, rng, seed = worker_rig
    intake = FAST.intake.model_copy(update={"second_notice_after": timedelta(seconds=5)})
    policy = FAST.model_copy(update={"intake": intake})
    cases = Cases(cases.client, cases.task_queue, policy, cases.secret)
    status = await cases.refer(child(f"Asked{uuid.uuid4().hex[:6]}"), INTAKE)
    cid, due = status.case_id, status.deadlines["second_notice"]
    await until(lambda: settled(cases.client, sessions, cid), 15, "the case at rest, waiting on its timer")
    await query_through_a_restart(workers, cases, cid, due)
    await wait_notice(sessions, cid, "second_notice")
    view = await until(lambda: settled(cases.client, sessions, cid), 20, "the second notice in PostgreSQL")
    assert [a for _, a in view["audit"]].count("timer:second_notice") == 1
    failures = await replay_failures(cases.client, [cid], tmp_path)
    assert not failures, f"{cid}'s history (in {tmp_path}) does not replay: {failures}"


async def request_at_rest(client: Client, sessions, request_id: str) -> bool:
    steps, busy = await steps_of(client, request_id)
    async with sessions() as s:
        recorded = await s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.source == request_id))
    return not busy and recorded == len(steps) > 0


@pytest.mark.timeout(120)
async def test_query_on_a_request_while_the_worker_restarts(worker_rig, sessions, tmp_path):
    """The same for a meals-and-lodging request whose receipts window is open: `ccs show` on the
    request while its worker is down and its receipts reminder fires. The reminder goes out
    once; the request's and the case's histories replay."""
    workers, smtp, cases, rng, seed = worker_rig
    tz = FAST.timezone
    today = local_today(datetime.now(timezone.utc), tz)
    # An emergency trip that ended yesterday: receipts are due in 60 days, the first reminder is
    # due (this policy) 40 seconds from now, counted from the start of today: time enough to set
    # the request up on a loaded machine.
    first_reminder = datetime.now(timezone.utc) + timedelta(seconds=40) - start_of_day(today, tz)
    policy = FAST.model_copy(update={"meals_lodging": FAST.meals_lodging.model_copy(
        update={"receipts_reminder_every": first_reminder})})
    cases = Cases(cases.client, cases.task_queue, policy, cases.secret)
    cid = (await cases.refer(child(f"Trip{uuid.uuid4().hex[:6]}") | {"records_attached": True}, INTAKE)).case_id
    await cases.act(cid, "record_application", act(CM))
    await cases.act(cid, "record_eligibility", act(CM, finances=ELIGIBLE))
    await cases.act(cid, "record_medical_determination", act(MC, condition_id="C1", eligible=True, reason="CF"))
    yesterday = (today - timedelta(days=1)).isoformat()
    trip = {"travel_start": yesterday, "travel_end": yesterday, "nights": 0, "emergency": True,
            "travellers": [{"relationship": "child"}, {"relationship": "parent"}], "round_trip_miles": "40",
            "condition_id": "C1", "treatment": "Emergency visit",
            "estimated": {"meals": "30.00", "lodging": "0", "mileage": "8.40", "parking": "0", "tolls": "0"}}
    status = await cases.act(cid, "request_meals_lodging", act(CM, request=trip))
    rid = status.requests[0].request_id
    await until(lambda: request_at_rest(cases.client, sessions, rid), 15, "the request started")
    req = await cases.act(cid, "decide_meals_lodging", act(CM, request_id=rid, decision="approve"))
    assert req.state == "approved" and set(req.deadlines) == {"receipts_due", "receipts_reminder"}, req.deadlines
    due = req.deadlines["receipts_reminder"]
    await until(lambda: request_at_rest(cases.client, sessions, rid), 15, "the request at rest")
    await until(lambda: settled(cases.client, sessions, cid), 15, "the case at rest")
    await query_through_a_restart(workers, cases, rid, due)
    await wait_notice(sessions, cid, "receipts_reminder")
    await until(lambda: request_at_rest(cases.client, sessions, rid), 30, "the reminder in PostgreSQL")
    failures = await replay_failures(cases.client, [rid, cid], tmp_path)
    assert not failures, f"histories (in {tmp_path}) do not replay: {failures}"
    req = await show(cases, rid)
    assert req.state == "approved" and kinds(req).count("receipts_reminder") == 1
    assert req.deadlines["receipts_reminder"] == due + first_reminder  # the next, counted from the last


# ---- 2. PostgreSQL down ---------------------------------------------------------------------


@pytest.fixture
def private_pg():
    """A PostgreSQL of this test's own, so stopping it disturbs no other test."""
    base = Path(tempfile.mkdtemp(prefix="ccs-fault-pg-"))
    pgdata = base / "data"
    url = start_postgres(pgdata)
    yield pgdata, url
    stop_embedded(pgdata)
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.timeout(120)
async def test_postgres_down_mid_lifecycle(dev_env, private_pg, tmp_path):
    """PostgreSQL stops while a case is in records: a timer fires and an action is taken while
    it is down (the workflow moves on, its steps wait in a retrying activity); PostgreSQL
    starts again on the same data directory; every step reaches it exactly once and the
    case goes on."""
    started = time.monotonic()
    pgdata, url = private_pg
    await upgrade_async(url)
    engine = make_engine(url, pre_ping=False)  # as the worker's (workers/worker.py)
    sessions = session_factory(engine)
    channel = CountingChannel(MailboxChannel(tmp_path / "mailbox"))
    notifier = Notifier(sessions, channel, MAIL_FROM, SUPERVISOR)
    policy = Policy.model_validate({"records": {"reminder_every": "PT2S", "escalate_after": "PT4S"}})
    queue = f"tq-fault-pg-{uuid.uuid4().hex[:8]}"
    cases = cases_for(dev_env, queue, policy)
    dispatcher = asyncio.create_task(notifier.dispatch_forever(every=timedelta(seconds=1)))
    try:
        async with build_worker(dev_env.client, queue, CaseActivities(sessions, notifier)):
            cid = (await cases.refer(referral(first_name="Outage"), INTAKE)).case_id
            status = await cases.act(cid, "record_application", act(CM))
            assert status.stage == "records"
            view = await until(lambda: settled(dev_env.client, sessions, cid), 15, "the first steps in PostgreSQL")
            before = len(view["steps"])

            await asyncio.to_thread(stop_embedded, pgdata)
            down_at = time.monotonic()
            with pytest.raises(Exception):
                async with engine.connect() as conn:
                    await conn.execute(text("select 1"))

            # While PostgreSQL is down the workflow still takes its timer and the action.
            status = await wait_status(cases, cid, lambda s: "records_reminder" in kinds(s), 10, "a reminder")
            status = await cases.act(cid, "assign_case_manager", act(SUP, case_manager="cm.outage"))
            assert status.case_manager == "cm.outage"

            async def retrying():
                desc = await dev_env.client.get_workflow_handle(cid).describe()
                pending = desc.raw_description.pending_activities
                return pending and pending[0].attempt >= 3 and pending[0].last_failure

            failure = await until(retrying, 15, "record_steps to fail and retry")
            # Short and free of the statement's parameters (the driver's own message carries them).
            assert failure.application_failure_info.type == "DatabaseUnavailable", failure
            assert not failure.HasField("cause"), "the driver's error rode along as the cause"
            assert failure.ByteSize() < 2000, f"a {failure.ByteSize()}-byte failure"
            failure = (await CONVERTER.decode_failure(failure)).message
            assert failure.startswith("PostgreSQL unavailable") and len(failure) < 120, failure
            steps, busy = await steps_of(dev_env.client, cid)
            # A reminder is in the batch being retried; the action waits in the workflow for the next.
            assert busy and len(steps) > before and steps[-1].action == "timer:records_reminder"
            assert "assign_case_manager" not in [s.action for s in steps]
            escalation_due = status.deadlines.get("records_escalation", datetime.now(timezone.utc))
            await until(lambda: asyncio.sleep(0, result=datetime.now(timezone.utc) > escalation_due), 10,
                        "the records escalation to come due while PostgreSQL is down")

            await asyncio.to_thread(start_embedded, pgdata)
            up_again = time.monotonic()
            status = await wait_status(cases, cid, lambda s: "records_escalation" in kinds(s), 40,
                                       "the escalation after PostgreSQL came back")
            status = await cases.act(cid, "record_records", act(CM))
            assert status.stage == "eligibility" and status.case_manager == "cm.outage"
            view = await until(lambda: settled(dev_env.client, sessions, cid), 40, "every step in PostgreSQL")
            assert_recorded_once(cid, status, view)
            actions = [a for _, a in view["audit"]]
            assert actions.count("timer:records_escalation") == 1 and "assign_case_manager" in actions
            sends = Counter(channel.sent)
            assert set(sends) == set(status.notices_sent) and set(sends.values()) == {1}
            assert not await replay_failures(dev_env.client, [cid], tmp_path)
            print(f"down {up_again - down_at:.1f} s; failure seen: {failure!r}; "
                  f"steps {len(view['steps'])}; {time.monotonic() - started:.1f} s")
    finally:
        dispatcher.cancel()
        await engine.dispose()


# ---- 3. the Temporal server restarted ------------------------------------------------------


@pytest_asyncio.fixture
async def own_dev_server():
    home = Path(tempfile.mkdtemp(prefix="ccs-fault-temporal-"))
    server = DevServer(home)
    server.start()
    try:
        yield server
    finally:
        await server.stop_async()
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(120)
async def test_temporal_server_restarted(own_dev_server, activities, sessions, tmp_path):
    """The dev server is stopped (SIGTERM) while two cases wait on timers, stays down past
    their due times (a second notice, a records reminder), and starts again on the same file
    and port. The worker keeps running through it; a new client finds both cases open (and
    visibility still lists them), the overdue timers fire, later timers too, and the cases
    take actions; PostgreSQL holds every step once."""
    started = time.monotonic()
    server = own_dev_server
    client = await server.connect(CONVERTER, timeout=30)
    policy = Policy.model_validate({"intake": {"second_notice_after": "PT6S"}, "records": {"reminder_every": "PT5S"}})
    queue = f"tq-fault-restart-{uuid.uuid4().hex[:8]}"
    secret = os.urandom(32)
    cases = Cases(client, queue, policy, secret)
    async with build_worker(client, queue, activities):
        a = await cases.refer(referral(first_name="Waiting"), INTAKE)
        b = await cases.refer(referral(first_name="Reminded"), INTAKE)
        b = await cases.act(b.case_id, "record_application", act(CM))
        assert b.stage == "records"
        dues = [a.deadlines["second_notice"], b.deadlines["records_reminder"]]
        for cid in (a.case_id, b.case_id):  # at rest: no step in flight while the server goes
            await until(lambda cid=cid: settled(client, sessions, cid), 10, f"{cid} at rest")

        await server.stop_async()
        stopped_at = datetime.now(timezone.utc)
        assert stopped_at < min(dues), "the server stopped too late for the test to mean anything"
        await until(lambda: asyncio.sleep(0, result=datetime.now(timezone.utc) > max(dues) + timedelta(seconds=1)),
                    10, "the timers to come due while the server is down")
        server.start()
        client2 = await server.connect(CONVERTER, timeout=30)
        restarted_at = time.monotonic()
        cases2 = Cases(client2, queue, policy, secret)
        for cid in (a.case_id, b.case_id):
            desc = await client2.get_workflow_handle(cid).describe()
            assert desc.status == WorkflowExecutionStatus.RUNNING
        await wait_status(cases2, a.case_id, lambda s: "second_notice" in kinds(s), 40, "the overdue second notice")
        b_now = await wait_status(cases2, b.case_id, lambda s: "records_reminder" in kinds(s), 40,
                                  "the overdue records reminder")
        resumed = time.monotonic() - restarted_at
        assert a.stage == "intake" and kinds(a) == ["application_packet"]  # neither had fired before the stop
        # A timer set after the restart fires too.
        await wait_status(cases2, b.case_id, lambda s: kinds(s).count("records_reminder") >= 2, 20,
                          "the next records reminder")
        assert b_now.stage == "records"

        async def listed():
            found = [w.id async for w in client2.list_workflows(
                f"WorkflowId = '{a.case_id}' AND CcsStage = 'intake' AND ExecutionStatus = 'Running'")]
            return found == [a.case_id]

        await until(listed, 15, "visibility to list the open case by CcsStage")
        status = await cases2.act(a.case_id, "record_application", act(CM))
        assert status.stage == "records"  # the case goes on
        for cid in (a.case_id, b.case_id):  # closed, so nothing moves while PostgreSQL is compared
            status = await cases2.act(cid, "close_case", act(CM, reason="family_withdrew"))
            assert status.stage == "closed"
            assert (await client2.get_workflow_handle(cid, result_type=CaseStatus).result()).stage == "closed"
            view = await until(lambda cid=cid: settled(client2, sessions, cid), 20, f"{cid} in PostgreSQL")
            assert_recorded_once(cid, status, view)
            if cid == a.case_id:
                assert [x for _, x in view["audit"]].count("timer:second_notice") == 1
        assert not await replay_failures(client2, [a.case_id, b.case_id], tmp_path)
    print(f"restarted {restarted_at - started:.1f} s in; overdue timers fired {resumed:.1f} s after the "
          f"restart; {time.monotonic() - started:.1f} s")


# ---- 4. malformed input on the dev server ---------------------------------------------------


def _days_from_today(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


# Each mutation alone makes a referral invalid, so any combination does.
_BAD_NAME = st.sampled_from(["", "   ", None, 12, "x" * 101, ["Ada"]])
_MUTATIONS = {
    "child.first_name": _BAD_NAME,
    "child.last_name": _BAD_NAME,
    "child.date_of_birth": st.one_of(
        st.sampled_from(["", "not a date", "2019-02-30", "2019-13-01", None]),
        st.integers(2, 4000).map(_days_from_today),                # in the future
        st.integers(22 * 366, 90 * 365).map(lambda d: _days_from_today(-d)),  # 21 or older
    ),
    "child.county": st.text(alphabet="0123456789#%", max_size=12),
    "child.cin": st.one_of(st.text(alphabet="0123456789", min_size=1, max_size=7), st.just("123456789"),
                           st.just("ABCDEFGHI")),
    "child.guardian": st.just({"email": "not-an-email"}),
    "child.nickname": st.text(max_size=5),
    "referrer.kind": st.sampled_from(["neighbour", "", "PARENT", "doctor", None, 3]),
    "referrer.email": st.sampled_from(["no-at-sign", "a@b", "two@@example.org"]),
    "referrer": st.just(...),
    "conditions": st.sampled_from([
        [], None, "E84.0", [{"icd10": "ZZZ", "description": "x"}], [{"icd10": "E84.0"}],
        [{"icd10": "E84.0", "description": ""}],
        [{"icd10": "E84.0", "description": "a"}, {"icd10": "e840", "description": "b"}],
        [{"icd10": "E84.0", "description": "x"}] * 21,
    ]),
    "medi_cal": st.sampled_from([..., {"full_scope": "maybe"}, {"share_of_cost": False}, "yes"]),
    "received_on": st.one_of(st.integers(2, 400).map(_days_from_today), st.just("1990-01-01"), st.just("soon")),
    "records_attached": st.sampled_from(["sometimes", 7, None]),
    "unexpected": st.integers(),
}


def _mutate(data: dict, path: str, value) -> dict:
    *parents, leaf = path.split(".")
    node = data
    for p in parents:
        node = node.get(p) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return data  # an earlier mutation removed the parent: already invalid
    if value is ...:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return data


@st.composite
def malformed_referrals(draw) -> dict:
    data = referral(first_name="Malformed")
    paths = draw(st.lists(st.sampled_from(sorted(_MUTATIONS)), min_size=1, max_size=3, unique=True))
    for path in paths:
        data = _mutate(data, path, draw(_MUTATIONS[path]))
    return data


def _identity(data: dict):
    from models.referral import Child

    try:
        child = data["child"]
        return Child.model_construct(first_name=str(child["first_name"]), last_name=str(child["last_name"]),
                                     date_of_birth=date.fromisoformat(child["date_of_birth"]))
    except Exception:
        return None  # no identity, no case ID: nothing can have been started under it


@pytest.mark.timeout(120)
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(batch=st.lists(malformed_referrals(), min_size=6, max_size=6))
async def test_generated_malformed_referrals_start_nothing_on_dev_server(dev_worker, batch):
    env, cases = dev_worker
    for data in batch:
        with pytest.raises(CcsError) as err:
            await cases.refer(data, INTAKE)
        assert err.value.fields, f"no field-level error for {data!r}: {err.value.message}"
        child = _identity(data)
        if child is not None:
            with pytest.raises(RPCError) as missing:
                await env.client.get_workflow_handle(case_id_for(child, cases.secret)).describe()
            assert missing.value.status == RPCStatusCode.NOT_FOUND
    started = [w.id async for w in env.client.list_workflows(f"TaskQueue = '{cases.task_queue}'")]
    assert started == []


_LIVE = {"n": 0}


@pytest.mark.timeout(120)
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(batch=st.lists(st.tuples(st.sampled_from(sorted(ACTIONS) + ["nope", "x"]), _payloads()),
                      min_size=10, max_size=10),
       referrals=st.lists(malformed_referrals(), min_size=3, max_size=3))
async def test_generated_malformed_actions_rejected_on_dev_server(dev_worker, batch, referrals):
    """Raw payloads, past the client's checks (malformed actions, and `refer` updates carrying
    malformed referrals): each update is rejected by the workflow's validator; the case does
    not change, no workflow task fails, and it still takes a valid action."""
    env, cases = dev_worker
    _LIVE["n"] += 1
    status = await cases.refer(referral(first_name=f"Live{_LIVE['n']}"), INTAKE)
    cid, before = status.case_id, status.model_dump()
    handle = env.client.get_workflow_handle(cid)
    refers = [("refer", {"actor": INTAKE.model_dump(), "referral": data, "referral_id": uuid.uuid4().hex})
              for data in referrals]
    for name, data in batch + refers:
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(name, data)
    assert (await cases.show(cid)).model_dump() == before, "a rejected action changed the case"
    history = await handle.fetch_history()
    assert not [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert (await cases.act(cid, "record_application", act(CM))).stage == "records"  # not wedged
