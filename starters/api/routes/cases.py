"""Referrals, cases (list, one, audit trail) and actions, each within the caller's scope."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from activities.tables import AuditRow, CaseRow, IdempotencyRow
from models.actions import ACTIONS, REQUEST_ACTIONS, REQUEST_ROLES
from models.case import STAGES, Actor, CaseStatus
from models.counties import find_county
from models.identity import ReferralAnswer
from models.referral import Referral
from models.requests import AuthorizationStatus, GrievanceStatus, MealsLodgingStatus
from starters.api.access_log import record_access
from starters.api.auth import Principal, current_principal, require_roles
from starters.api.problems import ApiProblem, problem_responses
from starters.api.scope import CASE_ID, case_in_scope, case_of, referral_refusal

router = APIRouter(tags=["cases"])
ERRORS = problem_responses(401, 403, 404, 409, 422, 502)
CASE_READERS = ("intake_clerk", "case_manager", "supervisor", "medical_consultant", "state_reviewer")
CaseId = Annotated[str, Path(pattern=CASE_ID, max_length=80)]
PERSON_ID = r"^[A-Za-z0-9._@:-]{1,64}$"  # a user ID or a queue (Kern:unassigned)


class CaseSummary(BaseModel):
    """A case in a list: what the read model holds, no PHI."""

    case_id: str
    stage: str
    stage_since: datetime
    county: str
    jurisdiction: str
    case_manager: str | None
    next_deadline: datetime | None
    conditions: list[str]


class CasePage(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None


class AuditEntry(BaseModel):
    seq: int
    at: datetime
    source: str
    actor_id: str
    actor_role: str
    action: str
    stage: str
    county: str
    detail: dict[str, Any]


def _actor(who: Principal, data: dict[str, Any]) -> Actor:
    """The actor is the signed-in person; a payload naming someone else is refused."""
    given = data.get("actor")
    if given is not None and given != {"id": who.user_id, "role": who.role}:
        raise ApiProblem(422, "the actor of an action is the signed-in person: leave `actor` out",
                         {"actor": "set by the service from your sign-in"})
    return Actor(id=who.user_id, role=who.role)


def _body_mac(secret: bytes, body: Referral) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hmac.new(secret, canonical.encode(), hashlib.sha256).hexdigest()


@router.post("/referrals", response_model=ReferralAnswer, status_code=201, responses=ERRORS)
async def refer(referral: Referral, request: Request, response: Response,
                who: Principal = Depends(require_roles(*ACTIONS["refer"].roles)),
                idempotency_key: Annotated[str | None, Header(max_length=128,
                                                              pattern=r"^[\x21-\x7e]{1,128}$")] = None):
    """Refer a child. The answer says which case the referral reached and how (the identity rules:
    same Medi-Cal number, same name and date of birth, a possible duplicate for a supervisor).
    With an `Idempotency-Key`, a retry returns the same case and changes nothing."""
    services = request.app.state.services
    county = find_county(referral.child.county, services.cases.policy.counties)
    if refusal := referral_refusal(who, county and county.name):
        raise ApiProblem(403, refusal, {"child.county": f"not {who.county}"})
    actor = _actor(who, {})
    referral_id, mac = None, None
    if idempotency_key:
        mac = _body_mac(services.secret, referral)
        async with services.sessions() as s:
            seen = (await s.execute(select(IdempotencyRow).where(
                IdempotencyRow.user_id == who.user_id, IdempotencyRow.key == idempotency_key))).scalar()
        if seen is not None:
            if seen.body_mac != mac:
                raise ApiProblem(422, "this Idempotency-Key was used for a different referral: use a new key",
                                 {"Idempotency-Key": "already used"})
            response.status_code = 200
            response.headers["Idempotent-Replayed"] = "true"
            status = await services.cases.show(seen.case_id)
            return ReferralAnswer(case_id=status.case_id, stage=status.stage, duplicate_referral=True,
                                  identity=None, status=status)
        referral_id = hashlib.sha256(f"{who.user_id}|{idempotency_key}".encode()).hexdigest()[:32]
    answer = await services.cases.submit_referral(referral, actor, referral_id)
    if idempotency_key:
        async with services.sessions.begin() as s:
            await s.execute(insert(IdempotencyRow).values(user_id=who.user_id, key=idempotency_key, body_mac=mac,
                                                          case_id=answer.case_id).on_conflict_do_nothing())
    if answer.duplicate_referral:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/cases/{answer.case_id}"
    return answer


def _cursor(case_id: str) -> str:
    return base64.urlsafe_b64encode(case_id.encode()).decode()


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        after = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not re.match(CASE_ID, after):
            raise ValueError(after)
        return after
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(422, "cursor is not one this service gave out", {"cursor": "invalid"}) from None


@router.get("/cases", response_model=CasePage, responses=ERRORS)
async def list_cases(request: Request, who: Principal = Depends(require_roles(*CASE_READERS)),
                     county: Annotated[str | None, Query(max_length=60)] = None,
                     stage: Annotated[str | None, Query(max_length=32)] = None,
                     case_manager: Annotated[str | None, Query(pattern=PERSON_ID)] = None,
                     deadline_before: datetime | None = None,
                     cursor: Annotated[str | None, Query(max_length=200)] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 50) -> CasePage:
    """Open and closed cases in your scope, from the read model, ordered by case ID."""
    q = select(CaseRow)
    if county is not None:
        found = find_county(county)
        if found is None:
            raise ApiProblem(422, f"unknown California county {county!r}", {"county": "not a California county"})
        q = q.where(CaseRow.county == found.name)
    if stage is not None:
        if stage not in STAGES:
            raise ApiProblem(422, f"unknown stage {stage!r}; stages: {', '.join(STAGES)}", {"stage": "unknown"})
        q = q.where(CaseRow.stage == stage)
    if case_manager is not None:
        q = q.where(CaseRow.case_manager == case_manager)
    if deadline_before is not None:
        q = q.where(CaseRow.next_deadline < deadline_before)
    if who.role == "state_reviewer":
        q = q.where(CaseRow.jurisdiction == "state")
    elif who.county is not None:
        q = q.where(CaseRow.county == who.county)
    after = _after(cursor)
    if after is not None:
        q = q.where(CaseRow.case_id > after)
    async with request.app.state.services.sessions() as s:
        rows = (await s.execute(q.order_by(CaseRow.case_id).limit(limit + 1))).scalars().all()
    items = [CaseSummary.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return CasePage(items=items, next_cursor=_cursor(rows[limit - 1].case_id) if len(rows) > limit else None)


async def read_case(services, case_id: str) -> CaseStatus | MealsLodgingStatus | AuthorizationStatus | GrievanceStatus:
    """The one place the API reads a case (issue 17 may route closed cases to their record)."""
    return await services.cases.show(case_id)


@router.get("/cases/{case_id}", response_model=CaseStatus | MealsLodgingStatus | AuthorizationStatus | GrievanceStatus,
            responses=ERRORS)
async def show_case(case_id: CaseId, request: Request, who: Principal = Depends(require_roles(*CASE_READERS))):
    """A case's status (the workflow's answer), or one request's (`CASE-ml-1`, `CASE-sar-2`)."""
    services = request.app.state.services
    await case_in_scope(services, who, case_id)
    status = await read_case(services, case_id)
    what = "case" if case_of(case_id) == case_id else f"request:{case_id}"
    await record_access(services.sessions, who, case_of(case_id), what)
    return status


@router.get("/cases/{case_id}/audit", response_model=list[AuditEntry], responses=ERRORS)
async def audit_trail(case_id: CaseId, request: Request,
                      who: Principal = Depends(require_roles(*CASE_READERS, "auditor"))) -> list[AuditEntry]:
    """Every recorded step of the case and its requests, oldest first."""
    services = request.app.state.services
    await case_in_scope(services, who, case_id)
    async with services.sessions() as s:
        rows = (await s.execute(select(AuditRow).where(AuditRow.case_id == case_of(case_id))
                                .order_by(AuditRow.at, AuditRow.id))).scalars().all()
    await record_access(services.sessions, who, case_of(case_id), "audit_trail")
    return [AuditEntry.model_validate(r, from_attributes=True) for r in rows]


def allowed_roles(name: str) -> tuple[str, ...] | None:
    """From the one action registry: the roles that may take ``name`` (None: no such action)."""
    if name in REQUEST_ACTIONS:
        return REQUEST_ROLES[name]
    spec = ACTIONS.get(name)
    return None if spec is None or name == "refer" else spec.roles


@router.post("/cases/{case_id}/actions/{action}",
             response_model=CaseStatus | MealsLodgingStatus | AuthorizationStatus | GrievanceStatus, responses=ERRORS)
async def act(case_id: CaseId, action: Annotated[str, Path(pattern=r"^[a-z_]{1,64}$")], request: Request,
              data: Annotated[dict[str, Any], Body(description="the action's payload (examples/actions/), "
                                                             "without `actor`")],
              who: Principal = Depends(current_principal)):
    """Take an action on a case, or on one of its requests (`request_id` in the payload).
    Validation and messages are those of `ccs act`; the actor is you."""
    services = request.app.state.services
    roles = allowed_roles(action)
    if roles is None:
        known = sorted([n for n in ACTIONS if n != "refer"] + list(REQUEST_ACTIONS))
        raise ApiProblem(404, f"unknown action {action!r}; actions are: {', '.join(known)} "
                         "(POST /api/v1/referrals to refer)")
    await case_in_scope(services, who, case_id)
    if who.role not in roles:
        raise ApiProblem(403, f"{action} must be taken by one of: {', '.join(roles)} (not {who.role})")
    payload = {**data, "actor": _actor(who, data).model_dump()}
    return await services.cases.act(case_id, action, payload)
