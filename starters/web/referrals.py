"""A referral from the web form, and what the person is told about the child's identity:
a new case, added to the existing case, or a possible duplicate a supervisor will review."""

from __future__ import annotations

from models.case import Actor, CaseStatus
from models.referral import Referral

SAID = {
    "new_case": "A new case was opened.",
    "same_cin": "Added to the existing case (same Medi-Cal number).",
    "same_name_dob": "Added to the existing case (same name and date of birth).",
    "cin_added": "Added to the existing case; the Medi-Cal number is now on it.",
    "possible_duplicate": "A new case was opened. Possible duplicate of {others}: a supervisor will review.",
}


async def refer_and_tell(cases, referral: Referral, actor: Actor) -> tuple[CaseStatus, str]:
    """Refer, and say how the referral reached its case (the identity index decides it)."""
    answer = await cases.submit_referral(referral, actor)
    if answer.duplicate_referral:
        return answer.status, "This referral was already received: nothing changed."
    said = SAID.get(answer.identity or "", "The referral reached case {case}.")
    return answer.status, said.format(others=", ".join(answer.possible_duplicate_of), case=answer.case_id)
