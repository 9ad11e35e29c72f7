"""The firing rule (rules/deadlines.py): what fires depends on the timer's target, never on the
clock a workflow task happens to run on (after a worker restart it can be the previous task's)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from rules.deadlines import SHORTEST_TIMER, due_by, plan, timer_length

T0 = datetime(2026, 3, 1, 8, tzinfo=timezone.utc)
KEYS = ["second_notice", "records_reminder", "records_escalation", "task_due:T1", "task_grace:T1", "run_ends"]

offsets = st.integers(min_value=0, max_value=30 * 24 * 3600).map(lambda s: T0 + timedelta(seconds=s))
deadline_sets = st.dictionaries(st.sampled_from(KEYS), offsets, min_size=1)


@st.composite
def a_timer_firing(draw):
    """Deadlines, the target the last timer waited for (their earliest), and the clock a task
    may run on when that timer fires: anywhere from the previous task's time to the target."""
    deadlines = draw(deadline_sets)
    target = min(deadlines.values())
    previous_task = target - draw(st.integers(0, 7 * 24 * 3600).map(lambda s: timedelta(seconds=s)))
    clock = previous_task + (target - previous_task) * draw(st.floats(0, 1))
    return deadlines, target, previous_task, clock


@given(a_timer_firing(), st.floats(0, 1))
def test_the_same_deadlines_fire_and_the_same_timer_follows_whatever_the_clock(firing, other):
    deadlines, target, previous_task, clock = firing
    other_clock = previous_task + (target - previous_task) * other
    here, there = plan(deadlines, target), plan(deadlines, target)
    assert here == there
    assert here.fire == due_by(deadlines, target) and here.fire  # the target's own deadline fires
    assert all(deadlines[k] <= target for k in here.fire)
    # What is left is later than the target: no timer is re-armed for a deadline already reached.
    assert here.next_target is None or here.next_target > target
    # The clock only sets how long the next timer runs, and the wait is never skipped.
    if here.next_target is not None:
        for now in (clock, other_clock):
            assert timer_length(here.next_target, now) >= SHORTEST_TIMER


@given(deadline_sets)
def test_a_wake_up_fires_nothing(deadlines):
    assert plan(deadlines, None).fire == []
    assert plan(deadlines, None).next_target == min(deadlines.values())


def test_ties_fire_in_name_order_and_past_targets_still_get_a_timer():
    at = T0 + timedelta(days=1)
    p = plan({"records_reminder": at, "records_escalation": at, "second_notice": at + timedelta(days=1)}, at)
    assert p.fire == ["records_escalation", "records_reminder"] and p.next_target == at + timedelta(days=1)
    assert timer_length(at, at + timedelta(hours=5)) == SHORTEST_TIMER  # a late worker still waits on a timer


def test_reading_the_clock_instead_would_decide_differently():
    """Why the rule takes the target: on the previous task's clock a due deadline looks early."""
    deadlines = {"second_notice": T0 + timedelta(days=20)}
    stale_clock = T0 + timedelta(days=19, hours=23)
    assert due_by(deadlines, stale_clock) == [] != plan(deadlines, deadlines["second_notice"]).fire
