"""What every workflow of the product shares: the error an action gets, the step draft,
how steps are persisted, and how an action's payload is read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from models.case import Notice, StepRecord, TaskRef

INVALID = "InvalidAction"  # `ccs act` shows its message and, in details[0], the fields
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["InvalidStep"],
)


def invalid(message: str, **fields: str) -> ApplicationError:
    return ApplicationError(message, fields or None, type=INVALID, non_retryable=True)


class Draft:
    """What the step under way changes outside the workflow."""

    def __init__(self) -> None:
        self.opened: list[TaskRef] = []
        self.closed: list[str] = []
        self.notices: list[Notice] = []


def decode(name: str, raw: RawValue, model: type[BaseModel]) -> Any:
    """An action's payload as its model, or an InvalidAction error naming each bad field."""
    try:
        return workflow.payload_converter().from_payload(raw.payload, model)
    except ValidationError as e:
        fields = {".".join(str(p) for p in err["loc"]) or name: err["msg"] for err in e.errors()}
        raise invalid(f"{name}: invalid data: " + "; ".join(f"{k}: {v}" for k, v in fields.items()), **fields)
    except Exception as e:  # not JSON of the right shape at all
        raise invalid(f"{name}: cannot read the data ({type(e).__name__})")


async def record_steps(steps: list[StepRecord], status: BaseModel | None = None) -> None:
    """Persist steps through the one idempotent activity (audit, tasks, notices, read model).

    ``status`` (the workflow's status after the batch) becomes the case record in PostgreSQL.
    It is an argument, not a command: histories recorded without it replay unchanged."""
    await workflow.execute_activity("record_steps", args=[steps] if status is None else [steps, status],
                                    start_to_close_timeout=timedelta(seconds=60),
                                    retry_policy=STEP_RETRY, summary=f"record {len(steps)} step(s)")
