"""A referral from the web form, and what the person is told about the child's identity:
a new case, added to the existing case, or a possible duplicate a supervisor will review."""

from __future__ import annotations

from temporalio.service import RPCError, RPCStatusCode

from models.case import Actor, CaseStatus
from models.referral import Referral
from starters.client import CcsError, case_id_for

SAID = {
    "new_case": "A new case was opened.",
    "same_cin": "Added to the existing case (same Medi-Cal number).",
    "same_name_dob": "Added to the existing case (same name and date of birth).",
    "cin_added": "Added to the existing case; the Medi-Cal number is now on it.",
    "possible_duplicate": "A new case was opened. Possible duplicate of {others}: a supervisor will review.",
}


async def refer_and_tell(cases, referral: Referral, actor: Actor) -> tuple[CaseStatus, str]:
    """Refer, and say how the referral reached its case."""
    if hasattr(cases, "submit_referral"):  # the identity index decides the case (and says how)
        answer = await cases.submit_referral(referral, actor)
        if answer.duplicate_referral:
            return answer.status, "This referral was already received: nothing changed."
        said = SAID.get(answer.identity or "", "The referral reached case {case}.")
        return answer.status, said.format(others=", ".join(answer.possible_duplicate_of), case=answer.case_id)
    case_id = case_id_for(referral.child, cases.secret)
    before = await _conditions(cases, case_id)
    status = await cases.refer(referral, actor)
    if before is None:
        return status, SAID["new_case"]
    added = len(status.conditions) - before
    return status, (f"Added to the existing case: {added} new condition(s) to determine." if added
                    else "Added to the existing case: these conditions were already on it.")


async def _conditions(cases, case_id: str) -> int | None:
    """How many conditions the child's case has; None when there is no such case."""
    try:
        await cases.client.get_workflow_handle(case_id).describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None
        raise CcsError(f"Temporal refused: {e.message}") from None
    return len((await cases.show(case_id)).conditions)
