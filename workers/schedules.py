"""What the product sets on its Temporal namespace: how long Temporal keeps a closed
workflow (PostgreSQL keeps the record) and the daily purge Schedule."""

from __future__ import annotations

from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.workflowservice.v1 import UpdateNamespaceRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
)

from workflows.retention import PURGE_WORKFLOW_ID

PURGE_SCHEDULE_ID = "ccs-records-purge"
PURGE_AT = "0 2 * * *"  # 02:00 every day, county time: a quiet hour


def purge_schedule(task_queue: str, timezone: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow("RecordsPurgeWorkflow", id=PURGE_WORKFLOW_ID, task_queue=task_queue,
                                           execution_timeout=timedelta(hours=6)),
        spec=ScheduleSpec(cron_expressions=[PURGE_AT], time_zone_name=timezone),
        # A missed day is caught up once; never two purges at a time.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def ensure_purge_schedule(client: Client, task_queue: str, timezone: str,
                                schedule_id: str = PURGE_SCHEDULE_ID) -> None:
    """Create the daily purge schedule, or bring an existing one in line with this deployment."""
    schedule = purge_schedule(task_queue, timezone)
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(schedule_id).update(lambda _: ScheduleUpdate(schedule=schedule))


async def set_namespace_retention(client: Client, retention: timedelta) -> None:
    """Temporal keeps closed workflows this long; their records live on in PostgreSQL."""
    await client.workflow_service.update_namespace(UpdateNamespaceRequest(
        namespace=client.namespace,
        config=NamespaceConfig(workflow_execution_retention_ttl=Duration(seconds=int(retention.total_seconds()))),
    ))
