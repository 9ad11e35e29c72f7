"""StepEngine: the machinery every long-lived workflow of the product shares.

A workflow built on it (the case, each request kind) keeps only its own rules; the engine
owns the clock a step reads, the step draft and its commit (one ``StepRecord`` per step, with
the tasks it opened and closed and the notices it queued), tasks, notices and letters, the
timer-driven deadline loop, recording pending steps, search attributes and the bookkeeping
that tells a run when to continue as new.

What a workflow supplies (hooks, each a few lines): where its tasks live (``_open_tasks``,
``_keep_task``, ``_drop_task``, ``_task_id``), who a notice goes to (``_address_of``), the
letter fields and notice key of its source (``_letter_fields``, ``_notice_life``,
``_notice_about``), what it waits for (``_timed``, ``_due``, ``_take``), and its status.
None of this changes a command: the code moved here from case.py and meals_lodging.py as it
was, and the recorded histories in tests/histories/ replay.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from temporalio import workflow

from workflows.common import PATCH_SET, Draft, record_steps, wait_for_deadline
from workflows.handlers import HandlerTable

with workflow.unsafe.imports_passed_through():
    from models.case import SYSTEM, Actor, Notice, StepRecord, Task, TaskRef
    from rules.ages import local_today
    from rules.deadlines import next_target
    from letters.catalog import KINDS as LETTERS, letter_language, subject as letter_subject
    from letters.notices import notice_words


class StepEngine:
    """Base of ChildCaseWorkflow and RequestWorkflow. Subclasses set ``self.s`` (their state)."""

    s: Any
    HANDLERS: HandlerTable  # its clocks (and, for the case, actions and stage entries)
    LETTER_TO: tuple[str, ...] = ("family",)  # recipients whose notice is a letter

    def _setup(self) -> None:
        if workflow.in_workflow():  # (tests build one outside a workflow to read its notices)
            workflow.patched(PATCH_SET)  # first in every run: whether it is begun with the patch set
        self._draft = Draft()
        self._wake = False
        self._sa: dict[str, object] = {}
        self._firing_at: datetime | None = None  # the timer target being fired: the clock for its values
        self._events = 0  # this run's history events, over-estimated: continue-as-new comes before the limit
        self._run_over = False

    # ---- the clock a step reads ---------------------------------------------------------

    def _clock(self) -> datetime:
        """Now, for values; while a timer fires, its target (the task's clock may be stale)."""
        return self._firing_at or workflow.now()

    def _today(self) -> date:
        return local_today(self._clock(), self.s.policy.timezone)

    def _day(self, at: datetime) -> str:
        """A due time's date in California, for a letter."""
        return local_today(at, self.s.policy.timezone).isoformat()

    # ---- steps ----------------------------------------------------------------------------

    def _begin(self) -> None:
        self._draft = Draft()

    def _commit(self, actor: Actor, action: str, detail: dict) -> None:
        """Queue the step under way as one StepRecord; the loop records it (``_record_pending``)."""
        s, d = self.s, self._draft
        s.seq += 1
        fields = self._step_fields(detail)
        opened, still_open = {t.id for t in d.opened}, {t.id for t in self._open_tasks()}
        s.pending_steps.append(StepRecord(
            case_id=s.case_id, seq=s.seq, at=self._clock(), actor_id=actor.id, actor_role=actor.role,
            action=action, county=s.county, tasks_opened=[t for t in d.opened if t.id in still_open],
            tasks_closed=[i for i in d.closed if i not in opened], notices=d.notices, **fields,
        ))
        self._draft = Draft()
        self._wake = True

    def _step_fields(self, detail: dict) -> dict:
        """The StepRecord fields of this workflow's steps: source, stage, detail (and the case record)."""
        raise NotImplementedError

    async def _record_pending(self) -> None:
        """Persist pending steps through the one idempotent activity, with the status after them."""
        while self.s.pending_steps:
            batch = list(self.s.pending_steps)
            await record_steps(batch, self._status())
            del self.s.pending_steps[: len(batch)]
            self._events += 6 + 3 * len(batch)  # the activity's, its workflow task's, and each step's update

    def _status(self) -> Any:
        raise NotImplementedError

    def _closed(self) -> bool:
        raise NotImplementedError

    # ---- tasks ----------------------------------------------------------------------------

    def _worker(self) -> str:
        """The case manager, or the county's unassigned queue."""
        return self.s.case_manager or f"{self.s.county}:unassigned"

    def _open_task(self, kind: str, title: str, assignee: str, due: datetime) -> None:
        self.s.task_counter += 1
        task = Task(id=self._task_id(self.s.task_counter), kind=kind, title=title, assignee=assignee,
                    due=due, opened_at=self._clock())
        self._keep_task(task)
        self._draft.opened.append(TaskRef(**task.model_dump(exclude={"escalated"})))

    def _close_task(self, task_id: str) -> None:
        if self._drop_task(task_id):
            self._draft.closed.append(task_id)

    def _close_tasks(self, kind: str | None = None) -> None:
        """Close the open tasks of this kind (all of them without one)."""
        for task in [t for t in self._open_tasks() if kind is None or t.kind == kind]:
            self._close_task(task.id)

    def _task_id(self, n: int) -> str:
        raise NotImplementedError

    def _open_tasks(self) -> list[Task]:
        raise NotImplementedError

    def _keep_task(self, task: Task) -> None:
        raise NotImplementedError

    def _drop_task(self, task_id: str) -> bool:
        """Remove an open task; False if it was not open."""
        raise NotImplementedError

    # ---- notices and letters ------------------------------------------------------------------

    def _notify(self, kind: str, to: str, address: str | None = None, **facts) -> None:
        """Queue a notice with the step; to a family (or a provider) it is a letter (letters/), to
        staff its words are those of its kind (letters/notices.py) filled with ``facts``."""
        s = self.s
        letter = self._letter(kind, to, facts)
        subject, body = notice_words(kind, to, self._notice_about(), facts if letter is None else {})
        if letter is not None:
            subject = letter_subject(kind, letter_language(letter["preferred_language"]))
        if address is None:
            address = self._address_of(to)
        key = f"{self._notice_source()}/{self._notice_life()}{s.seq + 1}/{kind}/{len(self._draft.notices)}"
        self._draft.notices.append(Notice(key=key, kind=kind, to=to, address=address, subject=subject,
                                          body=body, letter=letter))
        s.notices_sent.append(key)

    def _letter(self, kind: str, to: str, facts: dict) -> dict | None:
        """A family's or provider's notice is a letter: its template data (letters.render.LetterData)."""
        if to not in self.LETTER_TO or kind not in LETTERS:
            return None
        return dict(kind=kind, **self._letter_fields(), on=self._today().isoformat(),
                    facts={k: str(v) for k, v in facts.items() if v is not None})

    def _address_of(self, to: str) -> str | None:
        raise NotImplementedError

    def _letter_fields(self) -> dict:
        """case_id (and request_id), child_name, county, jurisdiction, preferred_language."""
        raise NotImplementedError

    def _notice_source(self) -> str:
        return self.s.case_id

    def _notice_life(self) -> str:
        """The life of the case or request, in its notice keys (``""`` before that patch)."""
        raise NotImplementedError

    def _notice_about(self) -> dict:
        """What every notice names (its heading): the case, and the request a request's notice is about."""
        return {"case_id": self.s.case_id}

    # ---- deadlines (timer-driven) ---------------------------------------------------------------

    def _timed(self) -> dict[str, datetime]:
        """Everything the workflow waits for, by key: the earliest is the next timer."""
        raise NotImplementedError

    async def _wait_and_fire(self) -> None:
        """Wait for the earliest deadline; if its timer elapsed, fire what it made due."""
        target = next_target(self._timed())
        self._events += 5  # the timer's two events and the workflow task's three
        if await wait_for_deadline(lambda: self._wake, target):
            self._fire_due(until=target)

    def _fire_due(self, until: datetime | None = None) -> None:
        """Fire the deadlines due by ``until``, a timer's target (runs before the timer-driven
        patch passed none and read the clock); their steps take that target as their time."""
        now = until or workflow.now()
        self._firing_at = until
        try:
            for key, at in self._due(now, timer_driven=until is not None):
                name, _, arg = key.partition(":")
                if self._closed():
                    return
                if not self._take(key, at, now):
                    continue
                self._begin()
                detail = self.HANDLERS.clock_of(key).fire(self, arg) or {}
                self._commit(SYSTEM, f"timer:{name}", {"deadline": self._deadline_detail(key, at), **detail})
        finally:
            self._firing_at = None

    def _due(self, now: datetime, timer_driven: bool) -> list[tuple[str, datetime]]:
        """The keys due by ``now``, earliest first, each with its time when the pass began."""
        raise NotImplementedError

    def _take(self, key: str, at: datetime, now: datetime) -> bool:
        """Whether ``key`` still fires (an earlier timer of this pass may have moved it); if so,
        its deadline is removed before its handler runs."""
        raise NotImplementedError

    def _deadline_detail(self, key: str, at: datetime) -> str:
        return key

    def _run_is_over(self) -> bool:
        """Its year is up (a timer said so), or its history is long (counted, not asked for)."""
        return self._run_over or self._events >= self.s.policy.run.continue_as_new_after_events

    # ---- search attributes ------------------------------------------------------------------

    def _search_attributes(self) -> dict:
        """The search attributes this workflow keeps (key -> value; None unsets)."""
        return {}

    def _upsert_search_attributes(self) -> None:
        updates = []
        for key, value in self._search_attributes().items():
            if self._sa.get(key.name, ...) != value:
                self._sa[key.name] = value
                updates.append(key.value_set(value) if value is not None else key.value_unset())
        if updates:
            workflow.upsert_search_attributes(updates)
