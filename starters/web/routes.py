"""The web app: server-rendered pages for case managers, clerks, consultants and
supervisors, on the same service, sign-in, roles and county scope as the HTTP API.
Every form works without JavaScript; every action goes through ``Cases`` (validated,
audited), so a refused action changes nothing and shows why beside the fields."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import BaseModel, ValidationError

from models.actions import ACTIONS
from models.request_kinds import request_kind
from models.case import Actor, CaseStatus
from models.counties import find_county
from models.referral import Referral
from starters.api.access_log import record_access
from starters.api.auth import SESSION_COOKIE, Principal, current_principal
from starters.api.problems import ApiProblem
from starters.api.routes import records as records_routes
from starters.api.routes.cases import CASE_READERS, read_case
from starters.api.scope import case_in_scope, referral_refusal
from starters.client import CcsError
from starters.supervisor import WorkQueue, stuck
from starters.web import forms, pages, timeliness
from starters.web.find import FindError, find_child
from starters.web.referrals import refer_and_tell
from starters.web.humane import FILTERS, PACIFIC

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(FILTERS)
STATIC = HERE / "static"
SUPERVISORS = ("supervisor",)  # as the API's /work/stuck, /work/overdue and /work/workload
ACTION_TITLES = {"assign_case_manager": "Reassign the case (assign a case manager)", "add_note": "Add a case note"}

router = APIRouter(include_in_schema=False)


async def person(request: Request) -> Principal:
    """The signed-in person; someone not signed in is sent to the sign-in page."""
    try:
        return await current_principal(request)
    except ApiProblem as e:
        if e.status == 401:
            raise HTTPException(303, "sign in first",
                                headers={"Location": f"/sign-in?next={quote(request.url.path)}"}) from None
        raise


def _services(request: Request):
    return request.app.state.services


def _engine(services):
    return services.engine


def render(request: Request, name: str, who: Principal | None, status: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"who": who, "now": datetime.now(timezone.utc), **context},
                                      status_code=status)


def not_found(request: Request, who: Principal | None, what: str) -> HTMLResponse:
    return render(request, "not_found.html", who, 404, what=what)


def signed_in_redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ---- sign-in ----------------------------------------------------------------------------

@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str = "/"):
    return render(request, "sign_in.html", None, next=next if next.startswith("/") else "/")


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request):
    form = await request.form()
    user_id, password = str(form.get("user_id", "")).strip(), str(form.get("password", ""))
    nxt = str(form.get("next", "/"))
    nxt = nxt if nxt.startswith("/") and not nxt.startswith("//") else "/"
    services = _services(request)
    try:
        who = await services.users.sign_in(user_id, password, request.client.host if request.client else "-")
    except ApiProblem as e:
        return render(request, "sign_in.html", None, 401 if e.status == 401 else e.status,
                      error=e.detail, user_id=user_id, next=nxt)
    token, ttl = services.tokens.issue(who.user_id, who.role, who.county)
    response = signed_in_redirect(nxt)
    response.set_cookie(SESSION_COOKIE, token, max_age=ttl, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/sign-out")
async def sign_out():
    response = signed_in_redirect("/sign-in")
    response.delete_cookie(SESSION_COOKIE)
    return response


# ---- my work ----------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
async def my_work(request: Request, who: Principal = Depends(person)):
    bands = await pages.my_work(_services(request).sessions, who)
    return render(request, "my_work.html", who, bands=bands)


# ---- a case -----------------------------------------------------------------------------

def fitting_actions(status: CaseStatus, who: Principal) -> list[str]:
    """The case actions that fit this stage and this person's role (refer has its own page)."""
    return [name for name, spec in ACTIONS.items()
            if name != "refer" and status.stage in spec.stages and who.role in spec.roles]


def action_form(name: str, model: type[BaseModel], values: dict | None = None, errors: dict | None = None,
                skip: set[str] = forms.SERVER_FIELDS) -> dict:
    items = forms.fields_for(model, skip=skip)
    forms.fill(items, values or {}, errors or {}, name)
    return {"name": name, "title": ACTION_TITLES.get(name, forms._label(name)),
            "summary": ACTIONS[name].summary if name in ACTIONS else "", "items": items,
            "problems": forms.unmatched(items, errors or {}), "open": bool(errors)}


async def _case_or_404(request: Request, who: Principal, case_id: str):
    """The case is one this person reads: a role that reads cases (as the API's case reads:
    auditors and administrators read no child's record) and the case in their scope."""
    if who.role not in CASE_READERS:
        return None
    try:
        await case_in_scope(_services(request), who, case_id)
    except ApiProblem:
        return None
    return True


async def _show_case(request: Request, who: Principal, case_id: str, failed: dict | None = None,
                     status_code: int = 200, done: str | None = None) -> HTMLResponse:
    services = _services(request)
    if not await _case_or_404(request, who, case_id):
        return not_found(request, who, f"case {case_id}")
    try:
        status = await read_case(services, case_id)
    except CcsError as e:
        return render(request, "error.html", who, 503, message=e.message)
    await record_access(services.sessions, who, case_id, "web:case")
    actions = []
    if status.stage != "closed":
        for name in fitting_actions(status, who):
            f = failed if failed and failed["name"] == name else None
            actions.append(action_form(name, ACTIONS[name].model, f and f["values"], f and f["errors"]))
    return render(request, "case.html", who, status_code, case=status, actions=actions,
                  holds=await records_routes._records(services).holds(case_id),
                  letters=await services.letters.for_case(case_id) if services.letters else [],
                  timeline=await pages.timeline(services.sessions, case_id),
                  notices=await pages.notices(services.sessions, case_id), done=done,
                  failed=failed, ml=services.cases.policy.in_force(datetime.now(PACIFIC).date()).meals_lodging,
                  prior_from=datetime.now(PACIFIC).date() + services.cases.policy.meals_lodging.prior_approval_min)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(request: Request, case_id: str, done: str | None = None, who: Principal = Depends(person)):
    return await _show_case(request, who, case_id, done=done)


def _form_values(form) -> dict[str, str]:
    return {k: str(v) for k, v in form.multi_items() if not k.startswith("_")}


@router.post("/cases/{case_id}/actions/{name}", response_class=HTMLResponse)
async def act(request: Request, case_id: str, name: str, who: Principal = Depends(person)):
    if not await _case_or_404(request, who, case_id):
        return not_found(request, who, f"case {case_id}")
    if name not in ACTIONS or name == "refer":
        return not_found(request, who, f"action {name}")
    values = _form_values(await request.form())
    data = forms.parse(values)
    data["actor"] = {"id": who.user_id, "role": who.role}
    try:
        ACTIONS[name].model.model_validate(data)
        await _services(request).cases.act(case_id, name, data)
    except ValidationError as e:
        return await _refused(request, who, case_id, name, values, forms.error_fields(e))
    except CcsError as e:
        return await _refused(request, who, case_id, name, values, {"(form)": e.message, **e.fields})
    return signed_in_redirect(f"/cases/{quote(case_id)}?done={name}")


async def _refused(request, who, case_id, name, values, errors) -> HTMLResponse:
    failed = {"name": name, "values": values, "errors": errors}
    return await _show_case(request, who, case_id, failed=failed, status_code=422)


# ---- a request (any kind in models/request_kinds.py) ------------------------------------

async def _show_request(request: Request, who: Principal, case_id: str, request_id: str,
                        failed: dict | None = None, status_code: int = 200, done: str | None = None):
    services = _services(request)
    kind = request_kind(request_id)
    if kind is None or not request_id.startswith(f"{case_id}-") or not await _case_or_404(request, who, case_id):
        return not_found(request, who, f"request {request_id}")
    try:
        req = await read_case(services, request_id)
    except CcsError:
        return not_found(request, who, f"request {request_id}")
    await record_access(services.sessions, who, case_id, f"web:request:{request_id}")
    actions = []
    for name, spec in kind.actions.items():  # the forms that fit the request's state and your role
        if req.state in spec.states and who.role in spec.roles:
            f = failed if failed and failed["name"] == name else None
            actions.append(action_form(name, spec.model, f and f["values"], f and f["errors"],
                                       skip=forms.SERVER_FIELDS | {"request_id"}))
    return render(request, "request.html", who, status_code, case_id=case_id, req=req, actions=actions,
                  done=done, failed=failed, title=kind.title)


@router.get("/cases/{case_id}/requests/{request_id}", response_class=HTMLResponse)
async def request_page(request: Request, case_id: str, request_id: str, done: str | None = None,
                       who: Principal = Depends(person)):
    return await _show_request(request, who, case_id, request_id, done=done)


@router.post("/cases/{case_id}/requests/{request_id}/actions/{name}", response_class=HTMLResponse)
async def act_on_request(request: Request, case_id: str, request_id: str, name: str,
                         who: Principal = Depends(person)):
    kind = request_kind(request_id)
    if kind is None or name not in kind.actions or not request_id.startswith(f"{case_id}-") \
            or not await _case_or_404(request, who, case_id):
        return not_found(request, who, f"request {request_id}")
    values = _form_values(await request.form())
    data = forms.parse(values)
    data.update(actor={"id": who.user_id, "role": who.role}, request_id=request_id)
    try:
        kind.actions[name].model.model_validate(data)
        await _services(request).cases.act(case_id, name, data)
    except (ValidationError, CcsError) as e:
        errors = forms.error_fields(e) if isinstance(e, ValidationError) else {"(form)": e.message, **e.fields}
        return await _show_request(request, who, case_id, request_id, {"name": name, "values": values,
                                                                       "errors": errors}, 422)
    return signed_in_redirect(f"/cases/{quote(case_id)}/requests/{quote(request_id)}?done={name}")


# ---- referral ---------------------------------------------------------------------------

REFERRERS = ("intake_clerk", "case_manager", "supervisor")


def _referral_form(values=None, errors=None) -> dict:
    items = forms.fields_for(Referral, skip=set())
    forms.fill(items, values or {}, errors or {})
    return {"items": items, "problems": forms.unmatched(items, errors or {})}


@router.get("/refer", response_class=HTMLResponse)
async def refer_page(request: Request, who: Principal = Depends(person)):
    if who.role not in REFERRERS:
        return not_found(request, who, "the referral form")
    return render(request, "refer.html", who, form=_referral_form({"child.county": who.county or ""}, {}))


@router.post("/refer", response_class=HTMLResponse)
async def refer(request: Request, who: Principal = Depends(person)):
    if who.role not in REFERRERS:
        return not_found(request, who, "the referral form")
    services = _services(request)
    values = _form_values(await request.form())
    data = forms.parse(values)
    try:
        referral = services.cases.validate_referral(data)
        county = find_county(referral.child.county, services.cases.policy.counties)
        if refusal := referral_refusal(who, county and county.name):
            raise CcsError("invalid referral", {"child.county": refusal})
        status, outcome = await refer_and_tell(services.cases, referral, Actor(id=who.user_id, role=who.role))
    except (ValidationError, CcsError) as e:
        errors = forms.error_fields(e) if isinstance(e, ValidationError) else {"(form)": e.message, **e.fields}
        return render(request, "refer.html", who, 422, form=_referral_form(values, errors))
    await record_access(services.sessions, who, status.case_id, "web:refer")
    return render(request, "referred.html", who, case=status, outcome=outcome)


# ---- letters ----------------------------------------------------------------------------

@router.get("/cases/{case_id}/letters/{key:path}")
async def letter_page(request: Request, case_id: str, key: str, who: Principal = Depends(person)):
    """A letter's PDF, as the family received it (in scope, logged as read)."""
    if who.role not in CASE_READERS:
        return not_found(request, who, f"letter {key}")
    try:
        pdf = await records_routes.letter_pdf(_services(request), who, case_id, key, "web:letter")
    except ApiProblem as e:
        if e.status == 409:
            return render(request, "error.html", who, 409, message=e.detail)
        return not_found(request, who, f"letter {key}")
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{key.replace("/", "_")}.pdf"'})


@router.get("/print-queue", response_class=HTMLResponse)
async def print_queue_page(request: Request, who: Principal = Depends(person)):
    """The clerks' print room: letters of their county that go by post, oldest first."""
    if who.role not in records_routes.PRINT_ROOM:
        return not_found(request, who, "page")
    services = _services(request)
    rows = await records_routes.print_queue_for(services, who) if services.letters else []
    return render(request, "print_queue.html", who, letters=rows)


# ---- find a child -----------------------------------------------------------------------

@router.get("/find", response_class=HTMLResponse)
async def find_page(request: Request, who: Principal = Depends(person)):
    return render(request, "find.html", who, values={}, results=None)


@router.post("/find", response_class=HTMLResponse)
async def find(request: Request, who: Principal = Depends(person)):
    if who.role not in CASE_READERS:  # as the API's /find: a search for a child is a read of cases
        return render(request, "error.html", who, 403, message="Finding a child is for the people who work cases.")
    values = _form_values(await request.form())
    try:
        results = await find_child(_services(request), who, values)
    except FindError as e:
        return render(request, "find.html", who, 422, values=values, results=None, error=str(e))
    return render(request, "find.html", who, values=values, results=results)


def _times(rows: list[dict], key: str) -> None:
    """The supervisor reads give ISO strings; pages show them in California time."""
    for r in rows:
        r[f"{key}_at"] = datetime.fromisoformat(r[key]) if r.get(key) else None


# ---- supervisors --------------------------------------------------------------------------

def _supervisor(request: Request, who: Principal) -> HTMLResponse | None:
    if who.role not in SUPERVISORS:
        return render(request, "error.html", who, 403, message="Supervisor pages are for supervisors.")
    return None


@router.get("/supervisor/stuck", response_class=HTMLResponse)
async def stuck_page(request: Request, stage: str = "", case_manager: str = "", min_days: str = "",
                     county: str = "", who: Principal = Depends(person)):
    if refused := _supervisor(request, who):
        return refused
    cases = _services(request).cases
    county = who.county or county or None
    error = None
    result = {"cases": [], "total": 0}
    try:
        minimum = timedelta(days=float(min_days)) if min_days else None
        result = await stuck(cases.client, cases.policy, stage=stage or None, county=county,
                             case_manager=case_manager or None, min_in_stage=minimum)
    except ValueError:
        error = f"{min_days!r} is not a number of days"
    except CcsError as e:
        error = e.message
    _times(result["cases"], "next_deadline")
    _times(result["cases"], "since")
    return render(request, "stuck.html", who, 422 if error else 200, result=result, error=error,
                  filters={"stage": stage, "case_manager": case_manager, "min_days": min_days,
                           "county": county or ""})


@router.get("/supervisor/overdue", response_class=HTMLResponse)
async def overdue_page(request: Request, within: int = 0, who: Principal = Depends(person)):
    if refused := _supervisor(request, who):
        return refused
    queue = WorkQueue(_engine(_services(request)))
    result = await queue.overdue(within=timedelta(days=max(0, min(within, 90))), county=who.county)
    _times(result["tasks"], "due")
    return render(request, "overdue.html", who, result=result, within=within)


@router.get("/supervisor/workload", response_class=HTMLResponse)
async def workload_page(request: Request, who: Principal = Depends(person)):
    if refused := _supervisor(request, who):
        return refused
    result = await WorkQueue(_engine(_services(request))).workload(county=who.county)
    _times(result["case_managers"], "next_due")
    return render(request, "workload.html", who, result=result)


@router.get("/supervisor/timeliness", response_class=HTMLResponse)
async def timeliness_page(request: Request, who: Principal = Depends(person)):
    if refused := _supervisor(request, who):
        return refused
    figs = await timeliness.figures(_engine(_services(request)), who.county)
    charts = {
        "noa": Markup(timeliness.bar_chart("Notices of Action sent within 7 days, per month",
                                           [(r["month"], r["percent"]) for r in figs["noa"]])),
        "auth": Markup(timeliness.bar_chart("Authorizations decided in time, per month",
                                            [(f"{r['month']} {r['urgency'][:3]}", r["in_time_percent"])
                                             for r in figs["authorizations"]])),
        "days": Markup(timeliness.bar_chart("Median days from referral to medical determination",
                                            [(r["month"], r["median"]) for r in figs["determination_days"]],
                                            unit=" d", top=None)),
    }
    return render(request, "timeliness.html", who, figs=figs, charts=charts, buckets=timeliness.DAY_BUCKETS)


@router.get("/static/web/style.css")
async def style():
    return FileResponse(STATIC / "style.css", media_type="text/css")
