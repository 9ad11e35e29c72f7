"""The engine floor for bench/floor_vs_product.py: a bare workflow with the product's shape
and none of its work.

Like ChildCaseWorkflow (workflows/case/), it is started by update-with-start, takes each
step as a (dynamic, validated) update, queues a step record per step, and its main loop
records queued steps with one activity per batch, upserts a search attribute when its stage
changed, then waits for the next update or a timer (``wait_condition`` with a timeout: a
timer per wait). So under the same load it issues the same commands as
the product. What it leaves out is the product itself: the case state and its validation,
the rules, the large payloads (policy, status, step records), and the activity's work.

Its activity is either a no-op (``floor_noop``: the engine alone) or one INSERT per step in
one transaction (``floor_db``: the engine plus a PostgreSQL commit per activity).

`python -m bench._floor` runs its worker as a process of its own, as `ccs worker` runs the
product's (same settings from the environment, same data converter and cache setting); it
writes how many steps it has recorded to ``--status`` so the bench knows when cases are done.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RawValue, RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models import search

STEPS = ("refer", "record_application", "record_records", "record_eligibility", "record_medical_determination")
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=1))


@workflow.defn
class FloorWorkflow:
    @workflow.init
    def __init__(self, inp: dict) -> None:
        self.activity = inp["activity"]
        self.stage = 0
        self.seq = 1  # the opening step, as the product commits "referral_received"
        self.pending = [1]
        self.wake = False
        self.sa: str | None = None

    @workflow.run
    async def run(self, inp: dict) -> int:
        self._upsert()
        while True:
            self.wake = False  # cleared before the awaits, as the product's loop does
            while self.pending:
                batch = list(self.pending)
                await workflow.execute_activity(self.activity, batch, start_to_close_timeout=timedelta(seconds=60),
                                                retry_policy=RETRY)
                del self.pending[: len(batch)]
            self._upsert()
            if self.stage >= len(STEPS) and inp.get("finish"):
                break
            if not self.wake:
                try:
                    await workflow.wait_condition(lambda: self.wake, timeout=timedelta(days=20))
                except asyncio.TimeoutError:
                    pass
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.seq

    def _upsert(self) -> None:
        value = f"floor-{self.stage}"
        if value != self.sa:
            self.sa = value
            workflow.upsert_search_attributes([search.STAGE.value_set(value)])

    @workflow.update(dynamic=True)
    def act(self, name: str, args: Sequence[RawValue]) -> dict:
        self.stage += 1
        self.seq += 1
        self.pending.append(self.seq)
        self.wake = True
        return {"stage": self.stage, "seq": self.seq}

    @act.validator
    def _validate(self, name: str, args: Sequence[RawValue]) -> None:
        if name not in STEPS:
            raise ValueError(f"unknown step {name}")


class FloorActivities:
    """Counts recorded steps, so the bench knows when a case is fully recorded."""

    def __init__(self, engine=None, status: str | None = None) -> None:
        self.engine = engine
        self.status = status
        self.recorded = 0

    def _count(self, n: int) -> None:
        self.recorded += n
        if self.status:  # a few microseconds: the bench polls this file
            with open(self.status + ".tmp", "w") as fh:
                fh.write(str(self.recorded))
            os.replace(self.status + ".tmp", self.status)

    @activity.defn(name="floor_noop")
    async def noop(self, batch: list[int]) -> int:
        self._count(len(batch))
        return len(batch)

    @activity.defn(name="floor_db")
    async def db(self, batch: list[int]) -> int:
        from sqlalchemy import text

        wf = activity.info().workflow_id
        async with self.engine.begin() as conn:
            await conn.execute(text("INSERT INTO bench_floor_steps (workflow_id, seq) VALUES (:w, :s)"),
                               [{"w": wf, "s": s} for s in batch])
        self._count(len(batch))
        return len(batch)


CREATE_TABLE = """CREATE TABLE IF NOT EXISTS bench_floor_steps (
    id bigserial PRIMARY KEY, workflow_id text NOT NULL, seq int NOT NULL,
    at timestamptz NOT NULL DEFAULT now())"""


async def _serve(status: str) -> None:
    """The floor's worker process: settings from the environment, like `ccs worker`."""
    import signal

    from temporalio.worker import Worker

    from activities.db import make_engine
    from models.settings import Settings
    from starters.client import connect

    settings = Settings()
    client = await connect(settings)
    engine = make_engine(settings.database_url)
    async with engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(text(CREATE_TABLE))
    acts = FloorActivities(engine, status)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(client, task_queue=settings.task_queue, workflows=[FloorWorkflow],
                    activities=[acts.noop, acts.db], max_cached_workflows=settings.max_cached_workflows)
    async with worker:
        print(f"worker on {settings.temporal_address} task queue {settings.task_queue}", flush=True)
        await stop.wait()
    await engine.dispose()


if __name__ == "__main__":
    import sys

    asyncio.run(_serve(sys.argv[1]))
