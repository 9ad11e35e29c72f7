"""What the record holds beside the case's status: legal holds on it, the letters sent to the
family, the clerks' print queue, and finding a child. Each within the caller's scope, each
read in the access log. These work on a closed case whose workflow Temporal no longer has:
they read PostgreSQL only."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from activities.tables import LetterRow
from models.case import Actor
from models.records import MATTER
from starters.api.access_log import record_access
from starters.api.auth import Principal, require_roles
from starters.api.problems import ApiProblem, problem_responses
from starters.api.routes.cases import CASE_READERS, CaseId
from starters.api.scope import case_in_scope
from starters.client import CcsError
from starters.records import Records
from starters.web.find import FindError, find_child

router = APIRouter(tags=["records"])
ERRORS = problem_responses(401, 403, 404, 409, 422)
# Who prints and posts letters: the clerks, and their supervisor.
PRINT_ROOM = ("intake_clerk", "supervisor")


class HoldRequest(BaseModel):
    matter: str = Field(pattern=MATTER, description="the matter's reference, e.g. LIT-2026-014 (no names)")


class Hold(BaseModel):
    matter: str
    placed_by: str
    placed_at: datetime
    released_by: str | None = None
    released_at: datetime | None = None


class Letter(BaseModel):
    """A letter sent (or to be posted) for a case; the PDF is at ``pdf``."""

    key: str
    case_id: str
    kind: str
    to: str
    language: str
    created_at: datetime
    size: int | None
    print_status: str | None
    pdf: str


class FindRequest(BaseModel):
    """Medi-Cal number (CIN), or last name and date of birth (a first name narrows it)."""

    cin: str | None = Field(None, max_length=16)
    first_name: str | None = Field(None, max_length=80)
    last_name: str | None = Field(None, max_length=80)
    date_of_birth: date | None = None


class Found(BaseModel):
    case_ids: list[str]


def _records(services) -> Records:
    # Holds read and write PostgreSQL only; no codec is needed for them.
    return services.cases.records or Records(services.sessions, None)


def _refused(e: CcsError) -> ApiProblem:
    status = 404 if e.message.startswith("no record") else 409
    return ApiProblem(status, e.message, e.fields or None)


# ---- legal holds ------------------------------------------------------------------------

@router.get("/cases/{case_id}/holds", response_model=list[Hold], responses=ERRORS)
async def holds(case_id: CaseId, request: Request,
                who: Principal = Depends(require_roles(*CASE_READERS, "auditor"))) -> list[Hold]:
    """The legal holds on a case's record, released ones included, oldest first."""
    services = request.app.state.services
    scope = await case_in_scope(services, who, case_id)
    found = await _records(services).holds(scope.case_id)
    await record_access(services.sessions, who, scope.case_id, "holds")
    return [Hold.model_validate(h) for h in found]


@router.post("/cases/{case_id}/holds", response_model=Hold, status_code=201, responses=ERRORS)
async def place_hold(case_id: CaseId, body: HoldRequest, request: Request,
                     who: Principal = Depends(require_roles("supervisor"))) -> Hold:
    """Place a legal hold (supervisor, own county): the record is not purged until it is released."""
    services = request.app.state.services
    scope = await case_in_scope(services, who, case_id)
    try:
        done = await _records(services).place_hold(scope.case_id, Actor(id=who.user_id, role=who.role), body.matter)
    except CcsError as e:
        raise _refused(e) from None
    return Hold.model_validate(done)


@router.post("/cases/{case_id}/holds/{matter}/release", response_model=Hold, responses=ERRORS)
async def release_hold(case_id: CaseId, matter: Annotated[str, Path(pattern=MATTER)], request: Request,
                       who: Principal = Depends(require_roles("supervisor"))) -> Hold:
    """Release a legal hold (supervisor, own county); the purge may then take the record when due."""
    services = request.app.state.services
    scope = await case_in_scope(services, who, case_id)
    try:
        await _records(services).release_hold(scope.case_id, Actor(id=who.user_id, role=who.role), matter)
    except CcsError as e:
        raise _refused(e) from None
    return next(Hold.model_validate(h) for h in reversed(await _records(services).holds(scope.case_id))
                if h["matter"] == matter)


# ---- letters ----------------------------------------------------------------------------

def _store(services):
    if services.letters is None:
        raise ApiProblem(404, "this service keeps no letters (no keyring configured)")
    return services.letters


def letter_item(row: LetterRow) -> Letter:
    return Letter(key=row.key, case_id=row.case_id, kind=row.kind, to=row.recipient, language=row.language,
                  created_at=row.created_at, size=row.size, print_status=row.print_status,
                  pdf=f"/api/v1/cases/{row.case_id}/letters/{row.key}")


@router.get("/cases/{case_id}/letters", response_model=list[Letter], responses=ERRORS)
async def case_letters(case_id: CaseId, request: Request,
                       who: Principal = Depends(require_roles(*CASE_READERS))) -> list[Letter]:
    """The letters of a case, oldest first."""
    services = request.app.state.services
    scope = await case_in_scope(services, who, case_id)
    rows = await _store(services).for_case(scope.case_id)
    await record_access(services.sessions, who, scope.case_id, "letters")
    return [letter_item(r) for r in rows]


async def letter_pdf(services, who: Principal, case_id: str, key: str, what: str = "letter") -> bytes:
    """One letter's PDF if ``who`` may see its case; logged as read. 404 otherwise, 409 before it is rendered."""
    scope = await case_in_scope(services, who, case_id)
    found = await _store(services).get(key)
    if found is None or found[0].case_id != scope.case_id:
        raise ApiProblem(404, f"case {case_id} has no letter {key}")
    if found[1] is None:
        raise ApiProblem(409, f"letter {key} is not rendered yet: try again in a minute")
    await record_access(services.sessions, who, scope.case_id, f"{what}:{key}")
    return found[1]


@router.get("/cases/{case_id}/letters/{key:path}", response_class=Response, responses={
    **ERRORS, 200: {"content": {"application/pdf": {}}, "description": "the letter as sent"}})
async def case_letter(case_id: CaseId, key: Annotated[str, Path(max_length=160)], request: Request,
                      who: Principal = Depends(require_roles(*CASE_READERS))) -> Response:
    """A letter's PDF, as the family received it."""
    pdf = await letter_pdf(request.app.state.services, who, case_id, key)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{key.replace("/", "_")}.pdf"'})


async def print_queue_for(services, who: Principal) -> list[LetterRow]:
    """Letters waiting to go by post, of the cases in ``who``'s county, oldest first."""
    return await _store(services).print_queue(county=who.county)


@router.get("/print-queue", response_model=list[Letter], responses=ERRORS)
async def print_queue(request: Request, who: Principal = Depends(require_roles(*PRINT_ROOM))) -> list[Letter]:
    """Letters of your county waiting to go by post (the family has no e-mail on file)."""
    return [letter_item(r) for r in await print_queue_for(request.app.state.services, who)]


# ---- find a child -----------------------------------------------------------------------

@router.post("/find", response_model=Found, responses=ERRORS)
async def find(body: FindRequest, request: Request,
               who: Principal = Depends(require_roles(*CASE_READERS))) -> Found:
    """Find a child's cases in your scope by CIN, or by last name and date of birth. A POST, so
    what you typed is never in a URL or a server log; the access log names the cases found."""
    values = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in body.model_dump().items() if v}
    try:
        found = await find_child(request.app.state.services, who, values, channel="api")
    except FindError as e:
        raise ApiProblem(422, str(e), {"cin": "or last_name and date_of_birth"}) from None
    return Found(case_ids=found)
