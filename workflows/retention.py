"""RecordsPurgeWorkflow: what the daily purge Schedule starts (see workers/schedules.py)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.records import PurgeRequest, PurgeResult

PURGE_WORKFLOW_ID = "ccs-records-purge"


@workflow.defn
class RecordsPurgeWorkflow:
    @workflow.run
    async def run(self) -> PurgeResult:
        # The schedule's clock, not the worker's: the purge is decided by when it was meant to run.
        return await workflow.execute_activity(
            "purge_records", PurgeRequest(now=workflow.now()), result_type=PurgeResult,
            start_to_close_timeout=timedelta(minutes=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=10))
