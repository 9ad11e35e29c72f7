"""The handler table's types (workflows/handlers.py declares the tables): plain containers,
passed through the workflow sandbox, so a new workflow does not build their dataclasses
again (each sandbox still fills a table of its own)."""

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

    def _registrar(self, table: dict, key: str, entry: Callable[[Handler], Any] = lambda fn: fn
                   ) -> Callable[[Handler], Handler]:
        """A decorator putting ``entry(fn)`` in ``table`` under ``key`` (once: a second handler
        for the same key is an error) and returning ``fn`` itself."""
        def register(fn: Handler) -> Handler:
            if key in table:
                raise TypeError(f"{self.name}: {key!r} has two handlers")
            table[key] = entry(fn)
            return fn
        return register

    def action(self, name: str) -> Callable[[Handler], Handler]:
        return self._registrar(self.actions, name)

    def check(self, name: str) -> Callable[[Handler], Handler]:
        return self._registrar(self.checks, name)

    def clock(self, name: str, lasting: bool = False) -> Callable[[Handler], Handler]:
        return self._registrar(self.clocks, name, lambda fn: Clock(fn, lasting))

    def entry(self, stage: str) -> Callable[[Handler], Handler]:
        return self._registrar(self.entries, stage)

    def clock_of(self, key: str) -> Clock:
        """The clock a deadline key belongs to (``milestone:18`` -> ``milestone``)."""
        return self.clocks[key.partition(":")[0]]

    def outlives_stage_change(self, key: str) -> bool:
        """Whether a deadline stays when the case changes stage: only a clock declared lasting
        does (a key with no clock is dropped, as before clocks were declared: never a KeyError
        inside a workflow task)."""
        clock = self.clocks.get(key.partition(":")[0])
        return clock is not None and clock.lasting
