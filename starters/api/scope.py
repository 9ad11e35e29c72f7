"""Which cases a person may see: county staff their county's, State reviewers the cases
where the State decides, auditors their county's (or all, statewide). Outside scope is a
404, as if the case did not exist: a person learns nothing about other counties' children."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from activities.tables import CaseRow
from models import request_kinds
from starters.api.auth import Principal
from starters.api.problems import ApiProblem
from starters.client import CcsError

CASE_ID = r"^[A-Za-z0-9_.-]{1,80}$"


@dataclass(frozen=True)
class CaseScope:
    case_id: str
    county: str
    jurisdiction: str  # "county" or "state": who makes the medical determination


def case_of(workflow_id: str) -> str:
    """The case a request belongs to (``case-x-ml-1`` -> ``case-x``)."""
    return request_kinds.case_of(workflow_id)


def sees(who: Principal, county: str, jurisdiction: str) -> bool:
    if who.role == "admin":
        return False  # administrators manage people, not children's records
    if who.role == "state_reviewer":
        return jurisdiction == "state"
    return who.county is None or who.county == county


def not_found(case_id: str) -> ApiProblem:
    return ApiProblem(404, f"no case {case_id}")


async def scope_of(services, case_id: str) -> CaseScope | None:
    """County and jurisdiction of a case: the read model, or the workflow when the read
    model has not caught up yet (a referral seconds old)."""
    async with services.sessions() as s:
        row = (await s.execute(select(CaseRow.county, CaseRow.jurisdiction).where(CaseRow.case_id == case_id))).first()
    if row is not None:
        return CaseScope(case_id, row.county, row.jurisdiction)
    try:
        status = await services.cases.show(case_id)
    except CcsError:
        return None
    return CaseScope(case_id, status.county, status.jurisdiction)


async def case_in_scope(services, who: Principal, workflow_id: str) -> CaseScope:
    """The case (or the case of a request) if ``who`` may see it; 404 otherwise."""
    case_id = case_of(workflow_id)
    scope = await scope_of(services, case_id)
    if scope is None or not sees(who, scope.county, scope.jurisdiction):
        raise not_found(workflow_id)
    return scope


def referral_refusal(who: Principal, county: str | None) -> str | None:
    """Why this person may not refer a child living in ``county`` (a canonical county name, or
    None when the referral names no California county), or None when they may. County staff
    refer the children of their own county; an unknown county is the referral's own error."""
    if county is None or county == who.county:
        return None
    return f"you refer children who live in {who.county or 'your county'}; this child lives in {county}"
