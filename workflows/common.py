"""What every workflow of the product shares: the error an action gets, the step draft,
how steps are persisted, and how an action's payload is read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from models.case import Notice, StepRecord, TaskRef
    from rules.deadlines import timer_length

# Runs started before this patch chose whether a deadline fired by reading workflow.now();
# a workflow task run on a stale clock (a query during a worker restart) then diverged on replay.
TIMER_DRIVEN = "timer-driven-deadlines"
# A notice key names the life of its case or request: a child referred again after closure
# starts a new workflow under the same ID whose steps count from 1 again.
NOTICE_KEYS_PER_LIFE = "notice-keys-per-life"

# New runs record one marker for every patch above and in PATCHES_IN_SET instead of one each:
# every patch marker also makes the SDK upsert the TemporalChangeVersion search attribute, a
# command and a visibility write (four per case, of its six upserts). The engine asks for the set
# first thing in each run (StepEngine._setup): a run begun before the set replays without its
# marker and keeps asking for each patch, as it did. A later patch is asked for on its own.
PATCH_SET = "patches-2026-11"
PATCHES_IN_SET = frozenset({
    TIMER_DRIVEN, NOTICE_KEYS_PER_LIFE, "program-endings", "policy-in-force", "wake-before-flush",
    "record-final-status", "record-request-changes", "state-decides-appeals-sars", "county-status-sourced",
    "enrollment-fee-rule", "enrollment-fee-renewal",
})


def patched(patch_id: str) -> bool:
    """``workflow.patched(patch_id)``, or true without a marker of its own in a run begun with the set."""
    if patch_id not in PATCHES_IN_SET:
        raise ValueError(f"patch {patch_id!r} is not in PATCHES_IN_SET: ask workflow.patched for it")
    return workflow.patched(PATCH_SET) or workflow.patched(patch_id)

INVALID = "InvalidAction"  # `ccs act` shows its message and, in details[0], the fields
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["InvalidStep"],
)


def invalid(message: str, **fields: str) -> ApplicationError:
    return ApplicationError(message, fields or None, type=INVALID, non_retryable=True)


def invalid_fields(what: str, fields: dict[str, str]) -> ApplicationError:
    """An InvalidAction naming each field's problem: "what: field: problem; field: problem"."""
    return invalid(f"{what}: " + "; ".join(f"{k}: {v}" for k, v in fields.items()), **fields)


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
        raise invalid_fields(f"{name}: invalid data", fields)
    except Exception as e:  # not JSON of the right shape at all
        raise invalid(f"{name}: cannot read the data ({type(e).__name__})")


async def record_steps(steps: list[StepRecord], status: BaseModel | None = None) -> None:
    """Persist steps through the one idempotent activity (audit, tasks, notices, read model).

    ``status`` (the workflow's status after the batch) becomes the case record in PostgreSQL.
    It is an argument, not a command: histories recorded without it replay unchanged."""
    # The heartbeat timeout, not the start-to-close one, notices a killed worker: its step is
    # retried after seconds. (Timeouts are not part of what a replay compares.)
    await workflow.execute_activity("record_steps", args=[steps] if status is None else [steps, status],
                                    start_to_close_timeout=timedelta(seconds=60),
                                    heartbeat_timeout=timedelta(seconds=10),
                                    retry_policy=STEP_RETRY, summary=f"record {len(steps)} step(s)")


async def wait_for_deadline(woken: Callable[[], bool], target: datetime | None) -> bool:
    """Wait until ``woken()`` or a timer reaches ``target``; True only if the timer did.

    The timer starts even when the target looks past: whether to wait never reads the clock,
    only how long. If the timer and a wake-up land together, the timer still counts (the
    caller fires the deadlines and handles the wake-up on its next pass), so the outcome does
    not depend on how the events were batched into workflow tasks."""
    if woken():
        return False
    if target is None:
        await workflow.wait_condition(woken)
        return False
    reached = False

    async def timer() -> None:
        nonlocal reached
        await asyncio.sleep(timer_length(target, workflow.now()).total_seconds())
        reached = True

    task = asyncio.create_task(timer())
    try:
        await workflow.wait_condition(lambda: reached or woken())
    finally:
        if not task.done():
            task.cancel()
    return reached
