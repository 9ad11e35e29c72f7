"""A workflow that sleeps until a due time, and returns how many timers that took.

    python -m tests.canary.stale_clock HOST:PORT TASK_QUEUE    # a worker for it

No database, no data converter, nothing of the CCS product: only temporalio.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker


@workflow.defn
class SleepThenReadTheClock:
    @workflow.run
    async def run(self, seconds: float) -> int:
        """Sleep until a due time the usual way; return how many timers that took (one)."""
        due = workflow.now() + timedelta(seconds=seconds)
        timers = 0
        while workflow.now() < due:  # a timer that fired means the due time has come: one pass
            timers += 1
            await asyncio.sleep((due - workflow.now()).total_seconds())
        return timers

    @workflow.query
    def ping(self) -> str:
        return "pong"


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    async with Worker(client, task_queue=task_queue, workflows=[SleepThenReadTheClock]):
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
