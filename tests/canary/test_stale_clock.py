"""Canary for a temporalio core bug (seen with temporalio 1.35.0): a timer that fired while no
worker was up is applied on the previous workflow task's clock when a query reaches a freshly
started worker first. See README.md here; this test starts passing (and, being a strict xfail,
fails the suite) the day an upgrade fixes it: then drop the xfail.

Needs only temporalio and the `temporal` CLI (its dev server) on PATH or next to Python."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, TaskQueueKind
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from tests.canary.stale_clock import SleepThenReadTheClock

SLEEP = 5.0  # seconds; each workflow's timer
WORKFLOWS = 4  # the race (a query or the workflow task first) goes either way: several make it near certain


class TimerFiredEarly(AssertionError):
    """A workflow's clock, read just after its timer fired, was before the timer's due time."""


def temporal_cli() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    assert Path(found).exists(), "the `temporal` CLI is needed for its dev server"
    return found


def start_worker(address: str, queue: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.canary.stale_clock", address, queue],
                            cwd=Path(__file__).resolve().parents[2], start_new_session=True)


def fired_then_waiting(events) -> bool:
    """The history ends TimerFired, ..., WorkflowTaskScheduled on the normal task queue."""
    fired = [i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED]
    last = events[-1]
    return bool(fired) and last.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED and \
        last.workflow_task_scheduled_event_attributes.task_queue.kind == TaskQueueKind.TASK_QUEUE_KIND_NORMAL


async def ask(handle) -> str:
    """Query until answered: with no worker up for a while the server refuses queries at once."""
    while True:
        try:
            return await handle.query(SleepThenReadTheClock.ping)
        except RPCError:
            await asyncio.sleep(0.2)


async def timers_taken(handle) -> int | None:
    """The workflow's result; None if it never finished (its next task failed on the worker)."""
    try:
        return await asyncio.wait_for(handle.result(), 30)
    except (asyncio.TimeoutError, WorkflowFailureError):
        return None


async def wait_for(probe, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@pytest.mark.timeout(90)
@pytest.mark.xfail(raises=TimerFiredEarly, strict=True, reason=(
    "temporalio core bug: a query reaching a new worker while a TimerFired event waits for its workflow "
    "task applies that event with workflow time still at the previous task (not replaying); the "
    "workflow sees its timer fire before its time, and commands computed then go out with the next task"))
async def test_a_timer_never_fires_early_by_the_workflow_clock():
    async with await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli()) as env:
        address = env.client.service_client.config.target_host
        queue = f"canary-{uuid.uuid4().hex[:8]}"
        worker = start_worker(address, queue)
        try:
            handles = [await env.client.start_workflow(SleepThenReadTheClock.run, SLEEP, id=f"canary-{uuid.uuid4()}",
                                                       task_queue=queue) for _ in range(WORKFLOWS)]

            async def histories() -> list[list]:
                return [(await h.fetch_history()).events for h in handles]

            async def timers_started() -> bool:  # each workflow's first task is done
                started = EventType.EVENT_TYPE_TIMER_STARTED
                return all(any(e.event_type == started for e in h) for h in await histories())

            async def timer_tasks_back_on_the_normal_queue() -> bool:
                # The timer fired and its workflow task left the dead worker's sticky queue (after its
                # 10 s timeout): each history ends TimerFired, ..., WorkflowTaskScheduled (normal queue).
                return all(fired_then_waiting(h) for h in await histories())

            await wait_for(timers_started, 30)
            worker.send_signal(signal.SIGKILL)  # the worker dies with every workflow in its cache
            worker.wait()
            # Queries asked while no worker is up, as a status page refreshed during a deploy would.
            queries = [asyncio.create_task(ask(h)) for h in handles]
            await wait_for(timer_tasks_back_on_the_normal_queue, 40)
            queries += [asyncio.create_task(ask(h)) for h in handles for _ in range(2)]
            await asyncio.sleep(0.5)
            worker = start_worker(address, queue)
            await asyncio.wait_for(asyncio.gather(*queries, return_exceptions=True), 60)
            timers = [await timers_taken(h) for h in handles]
            kept = [await h.fetch_history() for h in handles]
        finally:
            worker.kill()
            worker.wait()
    replayer = Replayer(workflows=[SleepThenReadTheClock])
    diverged = [str((await replayer.replay_workflow(h, raise_on_replay_failure=False)).replay_failure)[:300]
                for h in kept]
    if timers != [1] * WORKFLOWS or any(d != "None" for d in diverged):
        raise TimerFiredEarly(f"timers per workflow {timers} (expected one each); replays: {diverged}")
