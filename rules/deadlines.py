"""When deadlines fire: when a timer reaches its target, never when the clock says so.

A workflow waits for its earliest deadline with a timer. When that timer elapses, the
deadlines at or before its target fire, whatever the workflow's clock reads at that moment
(after a worker restart a workflow task can run on the previous task's clock). A wake-up by
anything else (an action, a signal, an activity result) fires nothing. The clock only sets
how long the next timer runs, a value that never decides which commands a workflow issues.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

# A timer whose target has passed still runs, for this long (Temporal needs a positive timer).
SHORTEST_TIMER = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Plan:
    fire: list[str]            # the deadlines the reached target fires, earliest first
    next_target: datetime | None  # what the next timer waits for (None: wait for a wake-up only)


def due_by(deadlines: Mapping[str, datetime], target: datetime) -> list[str]:
    """The deadlines at or before ``target``, earliest first (ties in name order)."""
    return [key for at, key in sorted((at, key) for key, at in deadlines.items() if at <= target)]


def next_target(deadlines: Mapping[str, datetime]) -> datetime | None:
    return min(deadlines.values(), default=None)


def plan(deadlines: Mapping[str, datetime], reached: datetime | None) -> Plan:
    """What a pass of a loop does: fire what a reached timer target made due (nothing when the
    pass began with a wake-up, ``reached`` None), then wait for the earliest deadline left."""
    fire = due_by(deadlines, reached) if reached is not None else []
    rest = {k: at for k, at in deadlines.items() if k not in fire}
    return Plan(fire=fire, next_target=next_target(rest))


def timer_length(target: datetime, now: datetime) -> timedelta:
    """How long the timer for ``target`` runs from ``now``: a value only, never a decision."""
    return max(target - now, SHORTEST_TIMER)
