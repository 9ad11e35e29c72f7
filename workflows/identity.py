"""One child, one case, on the case workflow: the `refer` update (which answers whether the
referral was new), possible duplicates (same name and date of birth, different Medi-Cal
numbers) and a supervisor's decision on them.

Mixed into ChildCaseWorkflow. The two cases of a possible duplicate tell each other by
signal; a confirmed same child moves the newer case's open conditions to the older case
and closes the newer one as ``merged``, its identity keys re-pointed to the case kept.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy

from workflows.common import decode, invalid
from workflows.handlers import CASE

with workflow.unsafe.imports_passed_through():
    from models.actions import ConfirmDifferentChildren, ConfirmSameChild, Refer
    from models.case import SYSTEM, Actor, CaseStatus, Closure, Condition, PossibleDuplicate
    from models.identity import DuplicateFlag, DuplicateResolved, MovedCondition, ReferResult

MERGE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(minutes=1))


class DuplicateHandling:
    # ---- refer ----------------------------------------------------------------------

    @workflow.update(name="refer")
    async def refer(self, raw: RawValue) -> ReferResult:
        a = decode("refer", raw, Refer)
        self._begin()
        detail = self._do_refer(a)
        flagged = self._flag_duplicates(a.possible_duplicate_of, other_is_older=True)
        if flagged:
            detail["possible_duplicate_of"] = flagged
        self._commit(a.actor, "refer", detail)
        result = ReferResult(status=self._status(), duplicate_referral=bool(detail.get("duplicate_referral")),
                             conditions_added=detail.get("conditions_added", []))
        for other in flagged:
            await self._tell(other, "possible_duplicate", DuplicateFlag(case_id=self.s.case_id, opened_at=self.s.opened_at))
        return result

    @refer.validator
    def _validate_refer(self, raw: RawValue) -> None:
        self._check("refer", decode("refer", raw, Refer))

    # ---- possible duplicates ------------------------------------------------------

    def _flag_duplicates(self, others: list[str], *, other_is_older: bool) -> list[str]:
        """A supervisor task per case not known yet (a case once decided on is never flagged again)."""
        s, flagged = self.s, []
        for other in others:
            if other == s.case_id or other in s.possible_duplicates:
                continue
            self._open_task(f"possible_duplicate:{other}",
                            f"Possible duplicate of case {other} (same name and date of birth, another Medi-Cal "
                            "number): confirm_same_child or confirm_different_children", "supervisor",
                            workflow.now() + s.policy.supervision.duplicate_review_within)
            s.possible_duplicates[other] = PossibleDuplicate(other_case_id=other, other_is_older=other_is_older,
                                                             task_id=f"T{s.task_counter}")
            flagged.append(other)
        return flagged

    @workflow.signal(name="possible_duplicate")
    def _on_possible_duplicate(self, flag: DuplicateFlag) -> None:
        if self.s.stage == "closed":
            return
        self._begin()
        if self._flag_duplicates([flag.case_id], other_is_older=flag.opened_at < self.s.opened_at):
            self._commit(SYSTEM, "possible_duplicate", {"other_case_id": flag.case_id})

    @CASE.check("confirm_same_child")
    @CASE.check("confirm_different_children")
    def _check_possible_duplicate(self, a) -> None:
        pd = self.s.possible_duplicates.get(a.other_case_id)
        if pd is None or pd.decision != "open":
            open_ = [o for o, p in self.s.possible_duplicates.items() if p.decision == "open"]
            raise invalid(f"case {a.other_case_id} is not an open possible duplicate of this case; open: "
                          + (", ".join(open_) or "none"), other_case_id="not an open possible duplicate")

    def _decide(self, other: str, decision: str) -> PossibleDuplicate:
        pd = self.s.possible_duplicates[other]
        pd.decision = decision
        if pd.task_id:
            self._close_task(pd.task_id)
        return pd

    @workflow.update(name="confirm_different_children")
    async def confirm_different_children(self, raw: RawValue) -> CaseStatus:
        a = decode("confirm_different_children", raw, ConfirmDifferentChildren)
        self._begin()
        self._decide(a.other_case_id, "different_children")
        self._commit(a.actor, "confirm_different_children", {"other_case_id": a.other_case_id})
        status = self._status()
        await self._tell(a.other_case_id, "duplicate_resolved", DuplicateResolved(
            case_id=self.s.case_id, decision="different_children", by=a.actor))
        return status

    @confirm_different_children.validator
    def _validate_confirm_different_children(self, raw: RawValue) -> None:
        self._check("confirm_different_children", decode("confirm_different_children", raw, ConfirmDifferentChildren))

    @workflow.update(name="confirm_same_child")
    async def confirm_same_child(self, raw: RawValue) -> CaseStatus:
        a = decode("confirm_same_child", raw, ConfirmSameChild)
        other = a.other_case_id
        if self.s.possible_duplicates[other].other_is_older:  # this case is the newer one: it merges into the other
            # Decided now, so a second decision is refused while the identity keys move.
            self.s.possible_duplicates[other].decision = "same_child"
            await self._repoint_identity(other)
            self._begin()
            self._decide(other, "same_child")
            moved = self._merge_into(other, a.actor)
            self._commit(a.actor, "confirm_same_child", {"other_case_id": other, "merged_into": other,
                                                         "conditions_moved": [m.icd10 for m in moved]})
            status = self._status()
            await self._send_conditions(other, moved, a.actor)
            return status
        self._begin()
        self._decide(other, "same_child")
        self._commit(a.actor, "confirm_same_child", {"other_case_id": other, "kept": self.s.case_id})
        status = self._status()
        await self._tell(other, "duplicate_resolved", DuplicateResolved(
            case_id=self.s.case_id, decision="same_child", kept_case_id=self.s.case_id, by=a.actor))
        return status

    @confirm_same_child.validator
    def _validate_confirm_same_child(self, raw: RawValue) -> None:
        self._check("confirm_same_child", decode("confirm_same_child", raw, ConfirmSameChild))

    @workflow.signal(name="duplicate_resolved")
    async def _on_duplicate_resolved(self, msg: DuplicateResolved) -> None:
        pd = self.s.possible_duplicates.get(msg.case_id)
        if pd is None or self.s.stage == "closed":
            return
        detail: dict = {"other_case_id": msg.case_id, "decision": msg.decision}
        if msg.decision == "same_child" and msg.kept_case_id != self.s.case_id:
            pd.decision = "same_child"
            await self._repoint_identity(msg.kept_case_id)
            if self.s.stage == "closed":  # merged meanwhile
                return
            self._begin()
            self._decide(msg.case_id, "same_child")
            moved = self._merge_into(msg.kept_case_id, msg.by)
            self._commit(msg.by, "duplicate_resolved", {**detail, "merged_into": msg.kept_case_id,
                                                        "conditions_moved": [m.icd10 for m in moved]})
            await self._send_conditions(msg.kept_case_id, moved, msg.by)
            return
        self._begin()
        changed = pd.decision == "open"
        if changed:
            self._decide(msg.case_id, msg.decision)
        if msg.conditions and not pd.conditions_received:
            pd.conditions_received, changed = True, True
            detail["conditions_added"] = [c.id for c in self._take_conditions(msg.conditions)]
        if changed:
            self._commit(msg.by, "duplicate_resolved", detail)

    # ---- merging ------------------------------------------------------------------

    def _merge_into(self, kept: str, by: Actor) -> list[MovedCondition]:
        """Close this case as merged into ``kept``; return the conditions that move there."""
        moved = [MovedCondition(icd10=c.icd10, description=c.description, referred_on=c.referred_on,
                                referrer_kind=c.referrer_kind)
                 for c in self.s.conditions if c.status != "not_eligible"]
        self.s.closure = Closure(reason="merged", on=self._today(), by=by.id, merged_into=kept,
                                 note=f"same child as case {kept}")
        self._move("closed")
        return moved

    async def _repoint_identity(self, kept: str) -> None:
        # Before this case closes: a referral never finds the merged case, only the case kept.
        await workflow.execute_activity("merge_identity", args=[self.s.case_id, kept],
                                        start_to_close_timeout=timedelta(seconds=30), retry_policy=MERGE_RETRY,
                                        summary="re-point identity keys")

    async def _send_conditions(self, kept: str, moved: list[MovedCondition], by: Actor) -> None:
        await self._tell(kept, "duplicate_resolved", DuplicateResolved(
            case_id=self.s.case_id, decision="same_child", kept_case_id=kept, conditions=moved, by=by))

    def _take_conditions(self, moved: list[MovedCondition]) -> list[Condition]:
        known = {c.icd10 for c in self.s.conditions}
        added = []
        for m in moved:
            if m.icd10 in known:
                continue
            cond = Condition(id=f"C{len(self.s.conditions) + 1}", **m.model_dump())
            self.s.conditions.append(cond)
            added.append(cond)
            if self.s.stage in ("active", "medical_review"):
                self._open_review_task(cond)
        return added

    async def _tell(self, case_id: str, signal: str, payload) -> None:
        try:
            await workflow.get_external_workflow_handle(case_id).signal(signal, payload)
        except Exception:  # that case has closed meanwhile: nothing left to tell it
            workflow.logger.warning("case %s did not take the %s signal", case_id, signal)
