"""Handlers bound by declaration: an action's check and effect, a clock's handler, a stage's
entry, each registered with a decorator on the method that does it. A workflow reads its
table; nothing is looked up by a method's name, and tests/test_handlers.py checks that every
declared action, clock and stage has exactly one handler.

    @CASE.check("record_records")      # optional: raises InvalidAction, changes nothing
    def _check_record_records(self, a): ...

    @CASE.action("record_records")     # the step: returns the audit detail
    def _do_record_records(self, a): ...

    @CASE.clock("records_reminder")    # a deadline key (``name`` or ``name:arg``) fires it
    def _fire_records_reminder(self, arg): ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Clock:
    fire: Handler
    # Whether the deadline outlives a stage change (the 21st birthday, age milestones); the
    # others belong to the stage that set them and go when the case leaves it.
    lasting: bool = False


@dataclass
class HandlerTable:
    """One workflow's handlers (its mixins register into the same table)."""

    name: str
    actions: dict[str, Handler] = field(default_factory=dict)
    checks: dict[str, Handler] = field(default_factory=dict)
    clocks: dict[str, Clock] = field(default_factory=dict)
    entries: dict[str, Handler] = field(default_factory=dict)

    def _register(self, table: dict, key: str, value: Any) -> None:
        if key in table:
            raise TypeError(f"{self.name}: {key!r} has two handlers")
        table[key] = value

    def action(self, name: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self._register(self.actions, name, fn)
            return fn
        return register

    def check(self, name: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self._register(self.checks, name, fn)
            return fn
        return register

    def clock(self, name: str, lasting: bool = False) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self._register(self.clocks, name, Clock(fn, lasting))
            return fn
        return register

    def entry(self, stage: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self._register(self.entries, stage, fn)
            return fn
        return register

    def clock_of(self, key: str) -> Clock:
        """The clock a deadline key belongs to (``milestone:18`` -> ``milestone``)."""
        return self.clocks[key.partition(":")[0]]

    def outlives_stage_change(self, key: str) -> bool:
        """Whether a deadline stays when the case changes stage: only a clock declared lasting
        does (a key with no clock is dropped, as before clocks were declared: never a KeyError
        inside a workflow task)."""
        clock = self.clocks.get(key.partition(":")[0])
        return clock is not None and clock.lasting


# The case's table: ChildCaseWorkflow and its mixins (identity, endings, condition appeals).
CASE = HandlerTable("ChildCaseWorkflow")
