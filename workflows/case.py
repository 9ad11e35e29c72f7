"""ChildCaseWorkflow: one long-running workflow per child, from referral to closure at 21.

All state lives in one ``CaseState``. Case-manager actions are updates (validated before
anything changes); deadlines are absolute times in the state, so they survive
continue-as-new; every step queues one ``StepRecord`` that the main loop persists
(audit row, tasks, notices, read model) through one idempotent activity. The machinery is the
step engine's (workflows/engine.py); the actions, clocks and stage entries here are declared
with their handlers (workflows/handlers.py ``CASE``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from workflows.common import NOTICE_KEYS_PER_LIFE, TIMER_DRIVEN, decode, invalid
from workflows.condition_appeals import ConditionAppeals
from workflows.endings import ProgramEndings
from workflows.engine import StepEngine
from workflows.handlers import CASE
from workflows.identity import DuplicateHandling
from workflows.policy_in_force import POLICY_IN_FORCE, take_current_policy, with_policy_in_force

with workflow.unsafe.imports_passed_through():
    from models import search
    from models.actions import ACTIONS, WAITING_FOR, Action
    from models.case import (
        SYSTEM,
        Actor,
        Appeal,
        CaseInput,
        CaseNote,
        CaseRecord,
        CaseState,
        CaseStatus,
        Closure,
        Condition,
        Denial,
        Determination,
        EnrollmentFee,
        Milestone,
        RequestStart,
        RequestSummary,
        Stage,
        StageChange,
        Task,
    )
    from models.counties import COUNTIES, PREVIOUS_JURISDICTION, find_county
    from models.referral import Referral, icd10_codes

    # Loaded once per process, on the host: a workflow's sandbox may not load it (it takes seconds).
    icd10_codes()
    from models.request_kinds import BY_OPENING_ACTION
    from rules.reimbursement import condition_problems, meals_lodging_problems
    from rules.ages import age_on, birthday, local_today, start_of_day
    from rules.eligibility import residential_financial
    from rules.fees import assess_fees
    from rules.case_management import case_management
    from rules.authorization import service_problems
    from rules.referral import referral_problems
    from rules.deadlines import due_by

@workflow.defn
class ChildCaseWorkflow(DuplicateHandling, ProgramEndings, ConditionAppeals, StepEngine):
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
        wake_first = workflow.patched("wake-before-flush")
        timer_driven = workflow.patched(TIMER_DRIVEN)
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
            if workflow.patched("record-final-status"):
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

    # ---- requests (child workflows) -----------------------------------------------

    async def _start_requests(self) -> None:
        in_force = bool(self.s.requests_to_start) and workflow.patched(POLICY_IN_FORCE)
        if in_force:
            await take_current_policy(self.s)
            self._events += 6
        while self.s.requests_to_start:
            start = self.s.requests_to_start[0]
            if in_force:
                start = with_policy_in_force(start, self.s, self._today())
            self._events += 6
            try:
                await workflow.start_child_workflow(
                    start.workflow, start.input, id=start.input["request_id"],
                    parent_close_policy=ParentClosePolicy.ABANDON,
                )
            except WorkflowAlreadyStartedError:
                pass  # started before a continue-as-new or a retry: nothing more to do
            self.s.requests_to_start.pop(0)

    async def _tell_requests_case_closed(self) -> None:
        reason = self.s.closure.reason if self.s.closure else "closed"
        for summary in self.s.requests.values():
            if summary.closed:
                continue
            try:
                await workflow.get_external_workflow_handle(summary.request_id).signal(
                    "case_closed", args=[reason, self.s.closure.on if self.s.closure else self._today()])
            except Exception:  # the request finished meanwhile
                workflow.logger.info("request %s already finished", summary.request_id)

    @workflow.signal
    def request_changed(self, summary: RequestSummary) -> None:
        if summary.request_id.startswith(f"{self.s.case_id}-"):
            changed = self.s.requests.get(summary.request_id) != summary
            self.s.requests[summary.request_id] = summary
            self._events += 4
            self._wake = True
            # A step, so the case record (and audit trail) follows its requests.
            if changed and workflow.patched("record-request-changes"):
                self._commit(SYSTEM, "request_changed", {"request_id": summary.request_id, "state": summary.state})

    def _open_request(self, opened_by: str, a) -> dict:
        """Queue the request kind this action opens (models/request_kinds.py); the loop starts it."""
        s, kind = self.s, BY_OPENING_ACTION[opened_by]
        s.request_counter += 1
        inp = kind.input(request_id=kind.request_id(s.case_id, s.request_counter), case_id=s.case_id,
                         county=s.county, case_manager=s.case_manager, family_address=self._family_address(),
                         policy=s.policy, child_name=self._child_name(),
                         preferred_language=s.child.preferred_language, jurisdiction=s.jurisdiction,
                         state_decides=s.state_decides, conditions=s.conditions, requested_by=a.actor,
                         request=a.request)
        s.requests_to_start.append(RequestStart(workflow=kind.workflow, input=inp.model_dump(mode="json"),
                                                    received_on=self._today()))
        s.requests[inp.request_id] = RequestSummary(
            request_id=inp.request_id, kind=kind.kind, state="starting", summary="request received",
            next_deadline=None, closed=False)
        return {"request_id": inp.request_id}

    @CASE.check("request_meals_lodging")
    def _check_request_meals_lodging(self, a) -> None:
        problems = {f"request.{k}": v for k, v in {
            **condition_problems(a.request.condition_id, self.s.conditions),
            **meals_lodging_problems(a.request, self._today(), self.s.policy.in_force(self._today()))}.items()}
        if problems:
            raise invalid("request_meals_lodging: " + "; ".join(f"{k}: {v}" for k, v in problems.items()), **problems)

    @CASE.action("request_meals_lodging")
    def _do_request_meals_lodging(self, a) -> dict:
        return self._open_request("request_meals_lodging", a)

    @CASE.check("request_authorization")
    def _check_request_authorization(self, a) -> None:
        problems = {f"request.{k}": v for k, v in {
            **condition_problems(a.request.condition_id, self.s.conditions),
            **service_problems(a.request, self._today())}.items()}
        if problems:
            raise invalid("request_authorization: " + "; ".join(f"{k}: {v}" for k, v in problems.items()), **problems)

    @CASE.action("request_authorization")
    def _do_request_authorization(self, a) -> dict:
        return self._open_request("request_authorization", a)

    @CASE.action("file_grievance")
    def _do_file_grievance(self, a) -> dict:
        return self._open_request("file_grievance", a)

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
        self.s.state_decides = self.s.jurisdiction == "state" and workflow.patched("state-decides-appeals-sars")
        if self._invalid:
            return self.s
        if workflow.patched(NOTICE_KEYS_PER_LIFE):
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
        if county.name in PREVIOUS_JURISDICTION and status == shipped and not workflow.patched("county-status-sourced"):
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

    # ---- stages ---------------------------------------------------------------------

    def _move(self, stage: Stage) -> None:
        now = self._clock()
        for key in [k for k in self.s.deadlines if not CASE.outlives_stage_change(k)]:
            del self.s.deadlines[key]
        for task in list(self.s.tasks.values()):
            if task.kind in STAGE_TASKS.get(self.s.stage, ()):
                self._close_task(task.id)
        self.s.stage = stage
        self.s.stage_since = now
        self.s.stage_history.append(StageChange(stage=stage, at=now))
        CASE.entries[stage](self)

    @CASE.entry("intake")
    def _enter_intake(self) -> None:
        p = self.s.policy.intake
        self._notify("application_packet", "family")
        due = self._referral_at() + p.second_notice_after
        self.s.deadlines["second_notice"] = due
        self._open_task("application", "Receive the signed application from the family", self._intake_queue(), due)

    @CASE.entry("records")
    def _enter_records(self) -> None:
        p = self.s.policy.records
        now = workflow.now()
        self._notify("records_request", "referrer")
        self.s.deadlines["records_reminder"] = now + p.reminder_every
        self.s.deadlines["records_escalation"] = now + p.escalate_after
        self._open_task("records", "Obtain medical records from the referring provider",
                        self._worker(), now + p.escalate_after)

    @CASE.entry("eligibility")
    def _enter_eligibility(self) -> None:
        p = self.s.policy.eligibility
        now = workflow.now()
        self._notify("documents_request", "family", due_on=self._day(now + p.family_response_within))
        self._open_task("residential_financial", "Decide residential and financial eligibility",
                        self._worker(), now + p.family_response_within)

    @CASE.entry("medical_review")
    def _enter_medical_review(self) -> None:
        for cond in self.s.conditions:
            if cond.status == "pending":
                self._open_review_task(cond)

    @CASE.entry("denied")
    def _enter_denied(self) -> None:
        d = self.s.denial
        p = self.s.policy.notices
        d.noa_sent_on = self._today()
        d.appeal_until = workflow.now() + p.appeal_window
        self._notify("notice_of_action", "family", action="deny_case", reason=d.reason, basis=d.from_stage,
                     appeal_until=self._day(d.appeal_until), **self._appeal_terms())
        self.s.deadlines["appeal_window"] = d.appeal_until

    @CASE.entry("appeal")
    def _enter_appeal(self) -> None:
        who = "state:ccs_regional_office" if self.s.state_decides else "supervisor"
        self._open_task("appeal_answer", "Answer the appeal", who, self.s.appeal.answer_due)

    @CASE.entry("active")
    def _enter_active(self) -> None:
        s, p = self.s, self.s.policy.active
        today = self._today()
        if s.renewal_due is None or s.renewal_due <= today:
            s.renewal_due = birthday(today, p.renewal_every_years)
        self._schedule_renewal()
        if s.finances and s.enrollment_fee is None:
            self._assess_enrollment_fee(today)
        if not s.case_manager:
            self._open_task("assign_case_manager", "Assign a case manager", "supervisor",
                            workflow.now() + p.assign_case_manager_within)
        self._schedule_milestones()
        self._notify("case_open", "family")

    def _assess_enrollment_fee(self, today: date) -> None:
        """The year's fee by rule (HSC 123900); before the rule, the amount the case manager typed."""
        s = self.s
        if workflow.patched("enrollment-fee-rule"):
            fees = assess_fees(s.finances, s.policy.in_force(today).fees)  # the fees in force that day
            s.enrollment_fee = EnrollmentFee(amount=fees.enrollment_fee, assessment_fee=fees.assessment_fee,
                                             due_on=today, basis=fees.basis)
        elif s.finances.enrollment_fee:
            s.enrollment_fee = EnrollmentFee(amount=s.finances.enrollment_fee, due_on=today)
        if s.enrollment_fee is not None and s.enrollment_fee.amount + s.enrollment_fee.assessment_fee > 0:
            s.deadlines["enrollment_fee"] = start_of_day(today, s.policy.timezone) + s.policy.active.enrollment_fee_grace

    @CASE.entry("closed")
    def _enter_closed(self) -> None:
        s = self.s
        for task in list(s.tasks.values()):
            self._close_task(task.id)
        s.deadlines.clear()
        self._notify("case_closed", "family", closure=s.closure.reason, merged_into=s.closure.merged_into)

    def _close(self, reason: str, by: Actor, note: str | None = None) -> None:
        self.s.closure = Closure(reason=reason, on=self._today(), by=by.id, note=note)
        self._move("closed")

    def _after_determinations(self) -> None:
        """Medical review ends when no condition is pending."""
        conds = self.s.conditions
        if any(c.status == "pending" for c in conds):
            return
        if any(c.status == "eligible" for c in conds):
            self._move("active")
        else:
            self.s.denial = Denial(from_stage="medical_review", reason="no CCS-eligible medical condition")
            self._move("denied")

    def _resume_after_appeal(self) -> None:
        origin = self.s.denial.from_stage
        self.s.denial = None
        if origin == "eligibility":
            self._move("medical_review")
        elif origin == "medical_review":
            for c in self.s.conditions:
                if c.status == "not_eligible":
                    c.status = "eligible"
            self._move("active")
        else:  # a renewal denial overturned: the next renewal is a year from now
            self.s.renewal_due = None
            self._move("active")

    # ---- action checks and effects --------------------------------------------------

    def _dated(self, action, field: str) -> date:
        return getattr(action, field) or self._today()

    def _check_date(self, field: str, day: date | None, earliest: date | None = None) -> None:
        day = day or self._today()
        if day > self._today():
            raise invalid(f"{field} is in the future", **{field: "in the future"})
        if earliest and day < earliest:
            raise invalid(f"{field} is before {earliest.isoformat()}", **{field: "too early"})

    @CASE.check("refer")
    def _check_refer(self, a) -> None:
        if self._invalid:
            raise invalid("invalid referral: " + "; ".join(f"{k}: {v}" for k, v in self._invalid.items()),
                          **self._invalid)
        if a.referral_id in self.s.referral_ids:
            return
        problems = referral_problems(a.referral, self._today(), self.s.policy)
        if problems:
            raise invalid("invalid referral: " + "; ".join(f"{k}: {v}" for k, v in problems.items()), **problems)
        if a.referral.child.date_of_birth != self.s.child.date_of_birth:
            raise invalid("this referral is for a different child (date of birth differs)")

    def _do_refer(self, a) -> dict:
        if a.referral_id in self.s.referral_ids:
            if a.referral_id == self._opening_referral:
                self._opening_referral = None
                return {"conditions_added": [c.id for c in self.s.conditions]}
            return {"duplicate_referral": True}
        self.s.referral_ids.append(a.referral_id)
        if a.referral.child.cin and not self.s.child.cin:  # the CIN arrived after the case opened
            self.s.child = self.s.child.model_copy(update={"cin": a.referral.child.cin})
        added = self._add_conditions(a.referral, self._today())
        if not added:  # every condition is already on the case: the same referral sent again
            return {"duplicate_referral": True}
        if self.s.stage in ("active", "medical_review"):
            for cond in added:
                self._open_review_task(cond)
        return {"conditions_added": [c.id for c in added]}

    @CASE.check("record_application")
    def _check_record_application(self, a) -> None:
        self._check_date("received_on", a.received_on, self.s.referral_date)

    @CASE.action("record_application")
    def _do_record_application(self, a) -> dict:
        s, p = self.s, self.s.policy.intake
        received = self._dated(a, "received_on")
        on_time = received <= s.referral_date + timedelta(days=p.application_date_grace.days)
        s.application_date = s.referral_date if on_time else received
        if s.records_attached:  # a provider's referral that carried its records skips the records stage
            s.records_received_on = s.referral_date
            self._move("eligibility")
        else:
            self._move("records")
        return {"application_date": s.application_date.isoformat(), "within_grace": on_time}

    @CASE.check("record_records")
    def _check_record_records(self, a) -> None:
        self._check_date("received_on", a.received_on, self.s.referral_date)

    @CASE.action("record_records")
    def _do_record_records(self, a) -> dict:
        self.s.records_received_on = self._dated(a, "received_on")
        self._move("eligibility")
        return {}

    @CASE.action("record_eligibility")
    def _do_record_eligibility(self, a) -> dict:
        s = self.s
        s.finances = a.finances
        s.eligibility = residential_financial(a.finances, s.policy.eligibility)
        if s.eligibility.eligible:
            self._move("medical_review")
        else:
            s.denial = Denial(from_stage="eligibility", reason=s.eligibility.basis)
            self._move("denied")
        return {"eligible": s.eligibility.eligible, "basis": s.eligibility.basis}

    @CASE.check("record_medical_determination")
    def _check_record_medical_determination(self, a) -> None:
        cond = next((c for c in self.s.conditions if c.id == a.condition_id), None)
        if cond is None:
            raise invalid(f"no condition {a.condition_id} on this case; conditions: "
                          + ", ".join(c.id for c in self.s.conditions), condition_id="unknown")
        if cond.status != "pending":
            raise invalid(f"condition {a.condition_id} was already determined ({cond.status})")
        needed = "medical_consultant" if self.s.jurisdiction == "county" else "state_reviewer"
        if a.actor.role != needed:
            where = "the county medical consultant" if needed == "medical_consultant" else "the State CCS office"
            raise invalid(f"in {self.s.county} County the medical determination is made by {where} ({needed})")

    @CASE.action("record_medical_determination")
    def _do_record_medical_determination(self, a) -> dict:
        cond = next(c for c in self.s.conditions if c.id == a.condition_id)
        cond.status = "eligible" if a.eligible else "not_eligible"
        cond.determination = Determination(
            eligible=a.eligible, decided_by=self.s.jurisdiction, decided_by_actor=a.actor.id,
            decided_on=self._today(), reason=a.reason,
        )
        for task in list(self.s.tasks.values()):
            if task.kind == f"medical_review:{cond.id}":
                self._close_task(task.id)
        if self.s.stage == "medical_review":
            self._after_determinations()
        elif not a.eligible:
            cond.appeal_until = workflow.now() + self.s.policy.notices.appeal_window  # its own appeal
            self._notify("notice_of_action", "family", action="deny_condition", basis="condition",
                         reason=a.reason or "The health problem is not one that CCS covers.",
                         appeal_until=self._day(cond.appeal_until), **self._appeal_terms())
        return {"condition_id": cond.id, "eligible": a.eligible, "decided_by": self.s.jurisdiction}

    @CASE.check("file_appeal")
    def _check_file_appeal(self, a) -> None:
        if workflow.now() > self.s.denial.appeal_until:
            raise invalid("the appeal window has ended")
        self._check_date("filed_on", a.filed_on, self.s.denial.noa_sent_on)

    @CASE.action("file_appeal")
    def _do_file_appeal(self, a) -> dict:
        self.s.appeal = Appeal(filed_on=self._dated(a, "filed_on"), grounds=a.grounds,
                               answer_due=workflow.now() + self.s.policy.notices.appeal_answer_within)
        self._move("appeal")
        return {}

    @CASE.check("decide_appeal")
    def _check_decide_appeal(self, a) -> None:
        if self.s.appeal.outcome is not None:
            raise invalid(f"the appeal was already decided ({self.s.appeal.outcome}); "
                          "record the fair hearing with request_fair_hearing / record_fair_hearing_decision")
        needed = "state_reviewer" if self.s.state_decides else "supervisor"
        if a.actor.role != needed:
            who = "the State CCS regional office" if self.s.state_decides else "a county supervisor"
            raise invalid(f"in {self.s.county} County the appeal is answered by {who} ({needed})",
                          **{"actor.role": "not allowed"})

    @CASE.action("decide_appeal")
    def _do_decide_appeal(self, a) -> dict:
        s = self.s
        s.appeal.outcome, s.appeal.decided_on = a.outcome, self._today()
        self._close_tasks("appeal_answer")
        self._notify("appeal_decision", "family", outcome=a.outcome,
                     hearing_until=self._day(workflow.now() + s.policy.notices.fair_hearing_window))
        if a.outcome == "overturned":
            self._resume_after_appeal()
        else:
            s.appeal.hearing_until = workflow.now() + s.policy.notices.fair_hearing_window
            s.deadlines["fair_hearing_window"] = s.appeal.hearing_until
        return {"outcome": a.outcome}

    @CASE.check("request_fair_hearing")
    def _check_request_fair_hearing(self, a) -> None:
        ap = self.s.appeal
        if ap.outcome != "upheld" or ap.hearing_requested_on is not None:
            raise invalid("a fair hearing can be requested once, after the appeal is upheld")
        self._check_date("requested_on", a.requested_on, ap.decided_on)

    @CASE.action("request_fair_hearing")
    def _do_request_fair_hearing(self, a) -> dict:
        self.s.appeal.hearing_requested_on = self._dated(a, "requested_on")
        self.s.deadlines.pop("fair_hearing_window", None)
        self._open_task("fair_hearing", "Record the State fair hearing decision", self._worker(),
                        workflow.now() + timedelta(days=90))
        return {}

    @CASE.check("record_fair_hearing_decision")
    def _check_record_fair_hearing_decision(self, a) -> None:
        if self.s.appeal.hearing_requested_on is None:
            raise invalid("no fair hearing was requested on this case (request_fair_hearing)")

    @CASE.action("record_fair_hearing_decision")
    def _do_record_fair_hearing_decision(self, a) -> dict:
        if a.outcome == "overturned":
            self._resume_after_appeal()
        else:
            self._close("not_eligible", a.actor, "fair hearing upheld the denial")
        return {"outcome": a.outcome}

    @CASE.action("assign_case_manager")
    def _do_assign_case_manager(self, a) -> dict:
        s = self.s
        previous, s.case_manager = s.case_manager, a.case_manager
        self._close_tasks("assign_case_manager")
        for task in list(s.tasks.values()):
            if task.assignee in (previous, f"{s.county}:unassigned"):
                self._reassign(task, a.case_manager)
        return {"case_manager": a.case_manager, "previous": previous}

    @CASE.action("record_renewal")
    def _do_record_renewal(self, a) -> dict:
        s = self.s
        s.finances = a.finances
        s.eligibility = residential_financial(a.finances, s.policy.eligibility)
        self._close_tasks("renewal")
        if not s.eligibility.eligible:
            s.denial = Denial(from_stage="renewal", reason=s.eligibility.basis)
            self._move("denied")
        else:
            s.renewal_due = birthday(s.renewal_due, s.policy.active.renewal_every_years)
            self._schedule_renewal()
            # 22 CCR 41610(a): the fee is redetermined yearly; an unpaid one keeps its clock.
            settled = s.enrollment_fee is None or s.enrollment_fee.paid_on is not None or (
                s.enrollment_fee.amount + s.enrollment_fee.assessment_fee == 0)
            if settled and workflow.patched("enrollment-fee-renewal"):
                s.enrollment_fee = None
                self._assess_enrollment_fee(self._today())
        return {"eligible": s.eligibility.eligible, "renewal_due": s.renewal_due.isoformat()}

    @CASE.check("transfer_county")
    def _check_transfer_county(self, a) -> None:
        county = find_county(a.county, self.s.policy.counties)
        if county is None:
            raise invalid(f"unknown California county {a.county!r}", county="unknown")
        if county.name == self.s.county:
            raise invalid(f"the case is already in {county.name} County", county="unchanged")

    @CASE.action("transfer_county")
    def _do_transfer_county(self, a) -> dict:
        s = self.s
        county = find_county(a.county, s.policy.counties)
        old = s.county
        s.county, s.wcm_plan = county.name, county.wcm_plan
        s.jurisdiction = self._jurisdiction(county)
        s.state_decides = s.jurisdiction == "state" and workflow.patched("state-decides-appeals-sars")
        s.child = s.child.model_copy(update={"county": county.name})
        s.case_manager = None
        for task in list(s.tasks.values()):
            self._reassign(task, self._review_queue() if task.kind.startswith("medical_review:") else self._worker())
        self._open_task("assign_case_manager", "Assign a case manager after transfer", "supervisor",
                        workflow.now() + s.policy.active.assign_case_manager_within)
        self._notify("transfer", "family", from_county=old)
        return {"from": old, "to": county.name, "jurisdiction": s.jurisdiction}

    @CASE.check("record_fee_payment")
    def _check_record_fee_payment(self, a) -> None:
        fee = self.s.enrollment_fee
        if fee is None or fee.paid_on is not None or fee.amount + fee.assessment_fee == 0:
            raise invalid("no enrollment fee is owed on this case")
        self._check_date("paid_on", a.paid_on)

    @CASE.action("record_fee_payment")
    def _do_record_fee_payment(self, a) -> dict:
        self.s.enrollment_fee.paid_on = self._dated(a, "paid_on")
        self.s.deadlines.pop("enrollment_fee", None)
        return {"amount": str(a.amount)}

    @CASE.check("complete_task")
    def _check_complete_task(self, a) -> None:
        task = self.s.tasks.get(a.task_id)
        if task is None:
            raise invalid(f"no open task {a.task_id}; open tasks: " + (", ".join(self.s.tasks) or "none"))
        if not task.kind.startswith(MANUAL_TASKS):
            raise invalid(f"task {a.task_id} ({task.kind}) closes by itself when its action is taken")

    @CASE.action("complete_task")
    def _do_complete_task(self, a) -> dict:
        kind = self.s.tasks[a.task_id].kind
        self._close_task(a.task_id)
        return {"task_id": a.task_id, "kind": kind}

    @CASE.action("close_case")
    def _do_close_case(self, a) -> dict:
        self._close(a.reason, a.actor, a.note)
        return {"reason": a.reason}

    @CASE.action("add_note")
    def _do_add_note(self, a) -> dict:
        # The text stays in the encrypted state: the audit row says only who, when and what kind.
        self.s.notes.append(CaseNote(at=workflow.now(), by=a.actor.id, role=a.actor.role, contact=a.contact, text=a.note))
        return {"contact": a.contact}

    # ---- timers ---------------------------------------------------------------------

    def _next_wake(self, run_started: datetime) -> datetime:
        times = list(self.s.deadlines.values()) + [at for _, at in self._escalations()]
        times.append(run_started + self.s.policy.run.continue_as_new_after)
        return min(times)

    def _escalations(self) -> list[tuple[str, datetime]]:
        grace = self.s.policy.supervision.escalation_grace
        out = []
        for t in self.s.tasks.values():
            if "assignee" not in t.escalated:
                out.append((f"task_due:{t.id}", t.due))
            elif "supervisor" not in t.escalated:
                out.append((f"task_grace:{t.id}", t.due + grace))
        return out

    def _due(self, now: datetime, timer_driven: bool) -> list[tuple[str, datetime]]:
        times = self._timed() if timer_driven else {**self.s.deadlines, **dict(self._escalations())}
        return [(k, times[k]) for k in due_by(times, now)]

    def _take(self, key: str, at: datetime, now: datetime) -> bool:
        name, _, arg = key.partition(":")
        if key == "run_ends":
            self._run_over = True  # the loop continues as new once this pass's steps are recorded
            return False
        if name.startswith("task_"):
            # The task closed, or was escalated, earlier in this pass: not due any more.
            return (key, self._escalation_at(arg)) in self._escalations()
        if key not in self.s.deadlines or self.s.deadlines[key] > now:
            return False  # an earlier timer in this pass moved or removed it
        del self.s.deadlines[key]
        return True

    def _escalation_at(self, task_id: str) -> datetime | None:
        return next((at for k, at in self._escalations() if k.endswith(f":{task_id}")), None)

    @CASE.clock("second_notice")
    def _fire_second_notice(self, _: str) -> None:
        self._notify("second_notice", "family")
        self._schedule_application_lapse()

    @CASE.clock("records_reminder")
    def _fire_records_reminder(self, _: str) -> dict:
        n = sum(1 for k in self.s.notices_sent if "/records_reminder/" in k) + 1
        self._notify("records_reminder", "referrer", reminder=n)
        self.s.deadlines["records_reminder"] = self._clock() + self.s.policy.records.reminder_every
        return {"reminder": n}

    @CASE.clock("records_escalation")
    def _fire_records_escalation(self, _: str) -> None:
        self._notify("records_escalation", "supervisor", days=self.s.policy.records.escalate_after.days)

    @CASE.clock("appeal_window")
    def _fire_appeal_window(self, _: str) -> None:
        self._close("not_eligible", SYSTEM, "no appeal within the appeal window")

    @CASE.clock("fair_hearing_window")
    def _fire_fair_hearing_window(self, _: str) -> None:
        self._close("not_eligible", SYSTEM, "appeal upheld; no fair hearing requested")

    @CASE.clock("renewal_notice")
    def _fire_renewal_notice(self, _: str) -> None:
        s = self.s
        self._notify("renewal_notice", "family", renew_by=s.renewal_due)
        self._open_task("renewal", "Annual renewal: redetermine residential and financial eligibility",
                        self._worker(), start_of_day(s.renewal_due, s.policy.timezone))
        self._schedule_renewal_lapse()

    @CASE.clock("enrollment_fee")
    def _fire_enrollment_fee(self, _: str) -> None:
        self._close("enrollment_fee_unpaid", SYSTEM, "enrollment fee unpaid by day 61")

    @CASE.clock("milestone", lasting=True)
    def _fire_milestone(self, age: str) -> None:
        self.s.milestones_done.append(age)
        self._open_milestone_task(int(age))

    @CASE.clock("aged_out", lasting=True)
    def _fire_aged_out(self, _: str) -> None:
        self._close("aged_out", SYSTEM, f"turned {self.s.policy.active.coverage_end_age}")

    @CASE.clock("task_due")
    def _fire_task_due(self, task_id: str) -> None:
        task = self.s.tasks[task_id]
        task.escalated.append("assignee")
        self._notify("task_overdue", "case_manager", address=task.assignee, task_id=task.id, title=task.title)

    @CASE.clock("task_grace")
    def _fire_task_grace(self, task_id: str) -> None:
        task = self.s.tasks[task_id]
        task.escalated.append("supervisor")
        self._notify("task_escalation", "supervisor", task_id=task.id, title=task.title, assignee=task.assignee,
                     due=task.due.isoformat())

    def _schedule_renewal(self) -> None:
        s = self.s
        s.deadlines.pop("renewal_lapsed", None)  # the renewal was completed
        s.deadlines["renewal_notice"] = (
            start_of_day(s.renewal_due, s.policy.timezone) - s.policy.active.renewal_notice_before
        )

    def _schedule_milestones(self) -> None:
        s, p = self.s, self.s.policy.active
        dob, today = s.child.date_of_birth, self._today()
        for age in (p.transition_planning_age, *p.transition_review_ages):
            if str(age) in s.milestones_done:
                continue
            if birthday(dob, age) > today:
                s.deadlines[f"milestone:{age}"] = start_of_day(birthday(dob, age), s.policy.timezone)
            elif age == p.transition_planning_age or age_on(dob, today) < age + 1:
                s.milestones_done.append(str(age))
                self._open_milestone_task(age)

    def _open_milestone_task(self, age: int) -> None:
        p = self.s.policy.active
        title = ("Start transition planning" if age == p.transition_planning_age
                 else f"Transition review at age {age}")
        self._open_task(f"transition:{age}", title, self._worker(), self._clock() + p.milestone_task_within)

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


# Tasks that belong to a stage and close when the case leaves it.
STAGE_TASKS: dict[str, tuple[str, ...]] = {
    "intake": ("application",),
    "records": ("records",),
    "eligibility": ("residential_financial",),
    "appeal": ("appeal_answer", "fair_hearing"),
}
# Tasks with no action of their own: a person marks them done with complete_task.
MANUAL_TASKS = ("transition:", "assign_case_manager")
