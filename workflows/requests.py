"""RequestWorkflow: what every request kind's workflow shares, on the step engine.

A request is a child workflow of its case (ID ``{case_id}-{prefix}-{n}``, models/request_kinds.py):
its main loop, telling the case about every change, the case closing under it, reading and
checking an action, the due-time timers of a decision, and ending the request.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import FailureError

from workflows.common import NOTICE_KEYS_PER_LIFE, TIMER_DRIVEN, decode, invalid, patched, wait_for_deadline
from workflows.engine import StepEngine

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from models.case import SYSTEM, Actor, Task
    from models.request_kinds import RequestKindSpec
    from models.requests import RequestSummary
    from rules.deadlines import due_by, next_target
    from rules.reimbursement import local_when


class RequestWorkflow(StepEngine):
    """Subclasses set ``SPEC`` (their kind), ``CLOSED`` (their final states) and ``self.s``."""

    SPEC: RequestKindSpec
    CLOSED: frozenset[str]

    def _setup(self) -> None:
        super()._setup()
        self._told: RequestSummary | None = None

    # ---- main loop ------------------------------------------------------------------

    async def _loop(self) -> None:
        timer_driven = patched(TIMER_DRIVEN)
        while True:
            if timer_driven:
                self._wake = False  # before the awaits: a step taken during them wakes the next pass
            await self._flush()
            if self._closed():
                break
            if await self._work():
                continue
            if timer_driven:
                target = next_target(self._timed())
                if await wait_for_deadline(lambda: self._wake, target):
                    self._fire_due(until=target)
                continue
            self._wake = False
            wake_at = min(self.s.deadlines.values(), default=None)
            if wake_at is None or wake_at > workflow.now():
                try:
                    await workflow.wait_condition(
                        lambda: self._wake, timeout=None if wake_at is None else wake_at - workflow.now())
                except asyncio.TimeoutError:
                    pass
            self._fire_due()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()

    async def _work(self) -> bool:
        """Work the loop does outside handlers (activities); True if it took a step."""
        return False

    def _closed(self) -> bool:
        return self.s.state in self.CLOSED

    async def _flush(self) -> None:
        """Persist pending steps, then tell the case if its view of this request changed."""
        while True:
            await self._record_pending()
            summary = self._summary()
            if summary == self._told:
                return
            self._told = summary
            try:
                await workflow.get_external_workflow_handle(self.s.case_id).signal("request_changed", summary)
            except FailureError as e:  # the case has closed or never existed: the request goes on
                workflow.logger.info("case %s not told about %s: %s", self.s.case_id, self.s.request_id, e)

    def _summary(self) -> RequestSummary:
        s = self.s
        return RequestSummary(request_id=s.request_id, kind=self.SPEC.kind, state=s.state, summary=self._describe(),
                              next_deadline=s.next_deadline, closed=self._closed())

    def _describe(self) -> str:
        raise NotImplementedError

    def _status(self) -> Any:
        status = self.SPEC.status
        return status.model_validate(self.s.model_dump(include=set(status.model_fields)))

    # ---- timers: the request's own deadlines ----------------------------------------

    def _timed(self) -> dict[str, datetime]:
        return self.s.deadlines

    def _due(self, now: datetime, timer_driven: bool) -> list[tuple[str, datetime]]:
        d = self.s.deadlines
        keys = due_by(d, now) if timer_driven else [k for k, at in sorted(d.items(), key=lambda kv: kv[1]) if at <= now]
        return [(k, d[k]) for k in keys]

    def _take(self, key: str, at: datetime, now: datetime) -> bool:
        if self.s.deadlines.get(key) != at:
            return False  # an earlier timer in this pass moved or removed it
        del self.s.deadlines[key]
        return True

    def _deadline_detail(self, key: str, at: datetime) -> str:
        return at.isoformat()

    def _set_due_timers(self, timers: dict[str, datetime]) -> None:
        """(Re)set timers before a due time (reminder, escalation, overdue); one already past is dropped."""
        now = workflow.now()
        for key, at in timers.items():
            self.s.deadlines.pop(key, None)
            if at > now:
                self.s.deadlines[key] = at

    # ---- actions --------------------------------------------------------------------

    def _decode(self, name: str, raw: RawValue, model: type[BaseModel]) -> Any:
        action = decode(name, raw, model)
        if action.request_id != self.s.request_id:
            raise invalid(f"this is request {self.s.request_id}, not {action.request_id}", request_id="mismatch")
        return action

    def _check_open(self, name: str, actor: Actor, roles: tuple[str, ...] | None = None) -> None:
        """The actor may take ``name`` (its kind's roles, unless narrowed) and the request is open."""
        roles = self.SPEC.actions[name].roles if roles is None else roles
        if actor.role not in roles:
            raise invalid(f"{name} must be taken by one of: {', '.join(roles)} (not {actor.role})",
                          **{"actor.role": "not allowed"})
        if self._closed():
            raise invalid(f"request {self.s.request_id} is closed ({self.s.state}): {self.s.outcome_note}")

    @workflow.signal(name="case_closed")
    def case_closed(self, reason: str | None = None, on: date | None = None) -> None:
        """The case closed (on the date it decided, sent with the signal: the request never
        reads its own clock to decide): resolve the request as the subclass sees fit, once."""
        if self.s.case_closed or self._closed():
            return
        self._begin()
        self.s.case_closed = True
        detail = self._on_case_closed(reason or "case closed", on or self._today())
        self._commit(SYSTEM, "case_closed", {"reason": reason, **detail})

    def _on_case_closed(self, reason: str, on: date) -> dict:
        raise NotImplementedError

    # ---- the engine's hooks: tasks, notices, steps --------------------------------------

    def _when(self, at: datetime, time: bool = True) -> str:
        """A due time as people in the county read it."""
        return local_when(at, self.s.policy.timezone, time)

    def _last_day(self, due: datetime) -> str:
        """The last whole day before a due time at midnight."""
        return self._when(due - timedelta(minutes=1), time=False)

    def _task_id(self, n: int) -> str:
        return f"{self.SPEC.task_prefix}{self.s.request_id.rsplit('-', 1)[1]}-T{n}"  # ML2-T1

    def _open_tasks(self) -> list[Task]:
        return self.s.open_tasks

    def _keep_task(self, task: Task) -> None:
        self.s.open_tasks.append(task)

    def _drop_task(self, task_id: str) -> bool:
        task = next((t for t in self.s.open_tasks if t.id == task_id), None)
        if task is not None:
            self.s.open_tasks.remove(task)
        return task is not None

    def _end(self, state: str, note: str) -> None:
        """Close the request: no task or timer outlives it."""
        self.s.state, self.s.outcome_note = state, note
        self._close_tasks()
        self.s.deadlines.clear()

    def _address_of(self, to: str) -> str | None:
        return {"family": self.s.family_address, "case_manager": self._worker()}.get(to)

    def _letter_fields(self) -> dict:
        s = self.s
        return dict(case_id=s.case_id, request_id=s.request_id, child_name=s.child_name, county=s.county,
                    jurisdiction=s.jurisdiction if s.jurisdiction == "state" else "county",
                    preferred_language=s.preferred_language)

    def _notice_source(self) -> str:
        return self.s.request_id

    def _notice_life(self) -> str:
        # A request ID repeats in a child's later life of the case (CASE-ml-1 again): the key
        # names the request's own start, so its letters are never taken for the earlier one's.
        return f"{self.s.received_at:%Y%m%dT%H%M%S}/" if patched(NOTICE_KEYS_PER_LIFE) else ""

    def _notice_about(self) -> dict:
        return {"case_id": self.s.case_id, "request_id": self.s.request_id}

    def _notice_of_action(self, action: str, reason: str, details: str | None = None) -> None:
        p = self.s.policy.notices
        self._notify("notice_of_action", "family", action=action, reason=reason, details=details,
                     basis=self.SPEC.kind, appeal_until=self._day(workflow.now() + p.appeal_window),
                     answer_days=p.appeal_answer_within.days, hearing_days=p.fair_hearing_window.days)

    def _step_fields(self, detail: dict) -> dict:
        s = self.s
        # The due times people must meet (tasks), not reminder timers.
        s.next_deadline = min((t.due for t in s.open_tasks), default=None)
        return dict(source=s.request_id, stage="closed" if s.case_closed else "active",
                    detail={"request_id": s.request_id, "state": s.state, **detail})
