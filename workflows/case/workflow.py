"""ChildCaseWorkflow: one long-running workflow per child, from referral to closure at 21.

All state lives in one ``CaseState``. Case-manager actions are updates (validated before
anything changes); deadlines are absolute times in the state, so they survive
continue-as-new; every step queues one ``StepRecord`` that the main loop persists
(audit row, tasks, notices, read model) through one idempotent activity. The machinery is the
step engine's (workflows/engine.py). This module is the workflow: its start, loop, updates,
queries and signals, and the engine's hooks; its rules are the mixins beside it, each declared
with its handlers (workflows/handlers.py ``CASE``): ``actions.py``, ``stages.py`` (the stage
machine), ``clocks.py``, ``requests.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from workflows.case.actions import CaseActions
from workflows.case.clocks import CaseClocks
from workflows.case.requests import CaseRequests
from workflows.case.stages import CaseStages
from workflows.common import NOTICE_KEYS_PER_LIFE, TIMER_DRIVEN, decode, invalid, patched
from workflows.condition_appeals import ConditionAppeals
from workflows.endings import ProgramEndings
from workflows.engine import StepEngine
from workflows.handlers import CASE
from workflows.identity import DuplicateHandling

with workflow.unsafe.imports_passed_through():
    from models import search
    from models.actions import ACTIONS, WAITING_FOR, Action
    from models.case import (
        SYSTEM,
        CaseInput,
        CaseRecord,
        CaseState,
        CaseStatus,
        Condition,
        Milestone,
        RequestSummary,
        StageChange,
        Task,
    )
    from models.counties import COUNTIES, PREVIOUS_JURISDICTION, find_county
    from models.referral import Referral, icd10_codes

    # Loaded once per process, on the host: a workflow's sandbox may not load it (it takes seconds).
    icd10_codes()
    from rules.ages import birthday, local_today, start_of_day
    from rules.case_management import case_management
    from rules.referral import referral_problems


@workflow.defn
class ChildCaseWorkflow(CaseRequests, CaseStages, CaseActions, CaseClocks,  # its rules, by concern
                        DuplicateHandling, ProgramEndings, ConditionAppeals, StepEngine):
    HANDLERS = CASE  # actions, clocks and stage entries, each declared on its method
    LETTER_TO = ("family", "referrer")

    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        self._setup()
        self._invalid: dict[str, str] = {}
        # The referral that starts the case arrives again as the start's `refer` update: not a duplicate.
        self._opening_referral = inp.referral_id if inp.state is None else None
        if inp.state is not None:
            self.s = inp.state
            self.s.runs += 1
        else:
            assert inp.referral is not None, "a new case needs a referral"
            self.s = self._open(inp)

    # ---- run loop -------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseStatus:
        if self._invalid:
            # The client checks first; a referral that is invalid by the workflow's clock
            # ends the workflow at once (the update was rejected), never wedges it.
            raise ApplicationError("invalid referral", self._invalid, type="InvalidReferral", non_retryable=True)
        run_started = workflow.now()
        self._upsert_search_attributes()
        if self.s.runs > 1:
            workflow.logger.info("case continued as new (run %d)", self.s.runs)
        # Runs begun before this patch cleared the wake flag after the awaits below, so a step
        # taken during them waited for the next timer to reach search attributes.
        wake_first = patched("wake-before-flush")
        timer_driven = patched(TIMER_DRIVEN)
        while True:
            if wake_first:
                self._wake = False  # cleared before the awaits: a step taken during them wakes the next pass
            await self._record_pending()
            await self._start_requests()
            if wake_first:
                self._upsert_search_attributes()
            if timer_driven:
                if self.s.stage == "closed" or self._run_is_over():
                    break
                await self._wait_and_fire()
                continue
            if self.s.stage == "closed" or self._should_continue_as_new(run_started):
                break
            wake_in = self._next_wake(run_started) - workflow.now()
            if not wake_first:
                self._wake = False
            if wake_in > timedelta(0) and not self._wake:
                try:
                    await workflow.wait_condition(lambda: self._wake, timeout=wake_in)
                except asyncio.TimeoutError:
                    pass
            self._fire_due()
            if not wake_first:
                self._upsert_search_attributes()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._record_pending()
        if self.s.stage == "closed":
            await self._tell_requests_case_closed()
            if patched("record-final-status"):
                await self._record_pending()  # what the requests said meanwhile reaches the final record
            return self._status()
        workflow.continue_as_new(CaseInput(case_id=self.s.case_id, policy=self.s.policy, state=self.s))

    def _timed(self) -> dict[str, datetime]:
        """Everything the case waits for: its deadlines, task escalations, the end of this run."""
        run_ends = workflow.info().workflow_start_time + self.s.policy.run.continue_as_new_after
        return {**self.s.deadlines, **dict(self._escalations()), "run_ends": run_ends}

    def _should_continue_as_new(self, run_started: datetime) -> bool:
        info = workflow.info()
        run = self.s.policy.run
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= run.continue_as_new_after_events
            or workflow.now() - run_started >= run.continue_as_new_after
        )

    @workflow.signal
    def request_changed(self, summary: RequestSummary) -> None:
        if summary.request_id.startswith(f"{self.s.case_id}-"):
            changed = self.s.requests.get(summary.request_id) != summary
            self.s.requests[summary.request_id] = summary
            self._events += 4
            self._wake = True
            # A step, so the case record (and audit trail) follows its requests.
            if changed and patched("record-request-changes"):
                self._commit(SYSTEM, "request_changed", {"request_id": summary.request_id, "state": summary.state})

    # ---- query and actions --------------------------------------------------------

    @workflow.query
    def status(self) -> CaseStatus:
        return self._status()

    @workflow.update(dynamic=True)
    def act(self, name: str, args: Sequence[RawValue]) -> CaseStatus:
        action = self._decode(name, args)
        self._begin()
        detail = CASE.actions[name](self, action) or {}
        self._commit(action.actor, name, detail)
        return self._status()

    @act.validator
    def _validate_act(self, name: str, args: Sequence[RawValue]) -> None:
        action = self._decode(name, args)
        self._check(name, action)

    def _decode(self, name: str, args: Sequence[RawValue]) -> Action:
        spec = ACTIONS.get(name)
        if spec is None:
            raise invalid(f"unknown action {name!r}; actions are: {', '.join(sorted(ACTIONS))}")
        if len(args) != 1:
            raise invalid(f"{name} takes one JSON object")
        return decode(name, args[0], spec.model)

    def _check(self, name: str, action: Action) -> None:
        spec = ACTIONS[name]
        s = self.s
        if s.stage not in spec.stages:
            raise invalid(
                f"{name} does not fit a case in stage {s.stage!r}: the case is waiting for {WAITING_FOR[s.stage]}"
            )
        if action.actor.role not in spec.roles:
            raise invalid(f"{name} must be taken by one of: {', '.join(spec.roles)} (not {action.actor.role})")
        check = CASE.checks.get(name)
        if check is not None:
            check(self, action)

    # ---- opening the case ---------------------------------------------------------

    def _open(self, inp: CaseInput) -> CaseState:
        ref = inp.referral
        now = workflow.now()
        policy = inp.policy
        today = local_today(now, policy.timezone)
        county = find_county(ref.child.county, policy.counties)
        self._invalid = referral_problems(ref, today, policy)
        received = ref.received_on or today
        self.s = CaseState(
            case_id=inp.case_id,
            policy=policy,
            policy_version=policy.version(),
            child=ref.child.model_copy(update={"county": county.name if county else ref.child.county}),
            referrer=ref.referrer,
            medi_cal=ref.medi_cal,
            records_attached=ref.records_attached,
            county=county.name if county else ref.child.county,
            jurisdiction=self._jurisdiction(county),
            wcm_plan=county.wcm_plan if county else None,
            stage="intake",
            stage_since=now,
            opened_at=now,
            stage_history=[StageChange(stage="intake", at=now)],
            conditions=[],
            referral_date=received,
            referral_ids=[inp.referral_id] if inp.referral_id else [],
        )
        # 22 CCR 42160(c)(2): in a dependent county the State CCS regional office answers appeals,
        # and the State decides service authorization requests (new cases only).
        self.s.state_decides = self.s.jurisdiction == "state" and patched("state-decides-appeals-sars")
        if self._invalid:
            return self.s
        if patched(NOTICE_KEYS_PER_LIFE):
            self.s.life = now.strftime("%Y%m%dT%H%M%S")
        self._begin()
        self._add_conditions(ref, received)
        age_limit = policy.active.coverage_end_age
        self.s.deadlines["aged_out"] = start_of_day(birthday(ref.child.date_of_birth, age_limit), policy.timezone)
        self._enter_intake()
        self._commit(SYSTEM, "referral_received", {"referrer_kind": ref.referrer.kind, "county": self.s.county})
        return self.s

    @staticmethod
    def _jurisdiction(county) -> str:
        """Who makes the medical determination: the county (independent) or the State."""
        if county is None:
            return "county"
        status = county.jurisdiction
        shipped = COUNTIES[county.name].jurisdiction
        # A status the shipped data corrected from a source (Napa) applies to cases opened or
        # transferred after the correction; a running case replays with the old one.
        if county.name in PREVIOUS_JURISDICTION and status == shipped and not patched("county-status-sourced"):
            status = PREVIOUS_JURISDICTION[county.name]
        return "county" if status == "independent" else "state"

    def _add_conditions(self, ref: Referral, on: date) -> list[Condition]:
        known = {c.icd10 for c in self.s.conditions}
        added = []
        for c in ref.conditions:
            if c.icd10 in known:
                continue
            cond = Condition(
                id=f"C{len(self.s.conditions) + 1}",
                icd10=c.icd10,
                description=c.description,
                referred_on=on,
                referrer_kind=ref.referrer.kind,
            )
            self.s.conditions.append(cond)
            added.append(cond)
        return added

    # ---- tasks, notices, steps ------------------------------------------------------

    def _intake_queue(self) -> str:
        return self._worker()

    def _review_queue(self) -> str:
        return f"{self.s.county}:medical_consultant" if self.s.jurisdiction == "county" else "state:ccs_medical"

    def _open_review_task(self, cond: Condition) -> None:
        self._open_task(f"medical_review:{cond.id}", f"Medical determination of {cond.id} ({cond.icd10})",
                        self._review_queue(), workflow.now() + self.s.policy.eligibility.medical_review_within)

    def _task_id(self, n: int) -> str:
        return f"T{n}"

    def _open_tasks(self) -> list[Task]:
        return list(self.s.tasks.values())

    def _keep_task(self, task: Task) -> None:
        self.s.tasks[task.id] = task

    def _drop_task(self, task_id: str) -> bool:
        return self.s.tasks.pop(task_id, None) is not None

    def _reassign(self, task: Task, assignee: str) -> None:
        if task.assignee == assignee:
            return
        self._close_task(task.id)
        self._open_task(task.kind, task.title, assignee, task.due)

    def _family_address(self) -> str | None:
        s = self.s
        return (s.child.guardian.email if s.child.guardian and s.child.guardian.email else None) or (
            s.referrer.email if s.referrer.kind in ("parent", "self") else None)

    def _child_name(self) -> str:
        return f"{self.s.child.first_name} {self.s.child.last_name}"

    def _appeal_terms(self) -> dict:
        p = self.s.policy.notices
        return {"answer_days": p.appeal_answer_within.days, "hearing_days": p.fair_hearing_window.days}

    def _address_of(self, to: str) -> str | None:
        return {"family": self._family_address(), "referrer": self.s.referrer.email,
                "case_manager": self.s.case_manager}.get(to)

    def _letter_fields(self) -> dict:
        s = self.s
        return dict(case_id=s.case_id, child_name=self._child_name(), county=s.county,
                    jurisdiction=s.jurisdiction, preferred_language=s.child.preferred_language)

    def _notice_life(self) -> str:
        return f"{self.s.life}/" if self.s.life else ""  # cases opened before the patch keep the old keys

    def _referral_at(self) -> datetime:
        """When the intake clock started: now for today's referral, else the start of its day."""
        s = self.s
        opened_on = local_today(s.opened_at, s.policy.timezone)
        return s.opened_at if s.referral_date == opened_on else start_of_day(s.referral_date, s.policy.timezone)

    def _step_fields(self, detail: dict) -> dict:
        return dict(source=self.s.case_id, stage=self.s.stage, detail=detail, record=self._record())

    def _next_deadline(self) -> datetime | None:
        times = [at for k, at in self.s.deadlines.items()] + [t.due for t in self.s.tasks.values()] + [
            r.next_deadline for r in self.s.requests.values() if r.next_deadline and not r.closed]
        return min(times) if times else None

    def _record(self) -> CaseRecord:
        s = self.s
        return CaseRecord(
            case_id=s.case_id, stage=s.stage, stage_since=s.stage_since, county=s.county,
            jurisdiction=s.jurisdiction, case_manager=s.case_manager, next_deadline=self._next_deadline(),
            conditions=[c.icd10 for c in s.conditions], opened_at=s.opened_at,
            closed_at=s.stage_since if s.stage == "closed" else None,
            closure_reason=s.closure.reason if s.closure else None,
        )

    def _search_attributes(self) -> dict:
        s = self.s
        return {
            search.STAGE: s.stage,
            search.STAGE_SINCE: s.stage_since,
            search.COUNTY: s.county,
            search.CASE_MANAGER: s.case_manager,
            search.NEXT_DEADLINE: self._next_deadline(),
        }

    def _closed(self) -> bool:
        return self.s.stage == "closed"

    def _case_management(self) -> str:
        s = self.s
        county = find_county(s.county, s.policy.counties)
        if county is None:  # a referral refused for its county
            return f"{s.county} County CCS"
        full_scope, plan = s.medi_cal.full_scope, s.medi_cal.plan
        if s.finances is not None:  # the eligibility step knows better than the referral
            full_scope, plan = s.finances.full_scope_medi_cal, s.finances.medi_cal_plan or plan
        return case_management(county, full_scope, plan, self._today())

    def _status(self) -> CaseStatus:
        s = self.s
        milestones = sorted(
            (Milestone(name=k, at=at) for k, at in s.deadlines.items()
             if k in ("aged_out", "renewal_notice") or k.startswith("milestone:")),
            key=lambda m: m.at,
        )
        return CaseStatus(
            case_id=s.case_id, stage=s.stage, stage_since=s.stage_since, county=s.county, policy_version=s.policy_version,
            jurisdiction=s.jurisdiction, wcm_plan=s.wcm_plan, appeals_and_sars_by="state" if s.state_decides else "county",
            case_management=self._case_management(),
            case_manager=s.case_manager, child=s.child, conditions=s.conditions,
            referral_date=s.referral_date, application_date=s.application_date, eligibility=s.eligibility,
            denial=s.denial, appeal=s.appeal, renewal_due=s.renewal_due, enrollment_fee=s.enrollment_fee,
            open_tasks=list(s.tasks.values()), deadlines=dict(s.deadlines), next_deadline=self._next_deadline(),
            next_milestones=milestones, stage_history=s.stage_history, notices_sent=s.notices_sent,
            closure=s.closure, waiting_for=WAITING_FOR[s.stage], runs=s.runs, requests=list(s.requests.values()),
            possible_duplicates=list(s.possible_duplicates.values()),
            notes=s.notes,
        )
