"""The web app without a browser: forms generated from the action models, errors beside
fields with nothing changed, scope, and the pages a supervisor reads. (The browser walk
is tests/test_web_e2e.py.)"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import pytest_asyncio

from sqlalchemy import select

from activities.tables import AuditRow
from models.actions import ACTIONS, RecordEligibility
from starters.web import forms
from starters.web.humane import human_date, human_time, time_left
from tests.web_helpers import CLIENT, PASSWORD, REFERRAL_FORM, open_office


def test_forms_come_from_the_action_models():
    items = forms.fields_for(RecordEligibility)
    names = [f.name for f in forms.walk(items)]
    assert "actor.id" not in names and "finances.residential_in_county" in names
    residential = next(f for f in forms.walk(items) if f.name == "finances.residential_in_county")
    assert residential.kind == "select" and residential.required  # a yes/no nobody may skip
    assert forms.parse({"finances.residential_in_county": "true", "finances.family_agi": " ", "note": ""}) == {
        "finances": {"residential_in_county": "true"}}
    assert forms.parse({"request.travellers.0.relationship": "parent", "request.travellers.1.relationship": ""}) == {
        "request": {"travellers": [{"relationship": "parent"}]}}


def test_times_read_as_california_people_write_them():
    at = datetime(2026, 7, 4, 19, 5, tzinfo=timezone.utc)
    assert human_time(at) == "July 4, 2026, 12:05 PM PDT"
    assert human_date(at.date()) == "July 4, 2026"
    assert time_left(at, datetime(2026, 7, 1, tzinfo=timezone.utc)) == "due in 3 days"
    assert time_left(at, datetime(2026, 7, 24, tzinfo=timezone.utc)) == "overdue by 19 days"


@pytest_asyncio.fixture(scope="module")
async def office(dev_env, engine, sessions, tmp_path_factory):
    office, worker = await open_office(dev_env, engine, sessions, tmp_path_factory.mktemp("web"))
    async with worker:
        yield office


async def _browser(office, who: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=office.app, client=CLIENT), base_url="http://ccs.test")
    r = await http.post("/sign-in", data={"user_id": office.users[who], "password": PASSWORD, "next": "/"})
    assert r.status_code == 303, r.text
    return http


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def request_page(http, case_id: str, request_id: str):
    """A request's page, once the case has started the request's own workflow (a moment later)."""
    for _ in range(50):
        page = await http.get(f"/cases/{case_id}/requests/{request_id}")
        if page.status_code == 200:
            return page
        await asyncio.sleep(0.1)
    return page


async def test_a_page_sends_a_stranger_to_sign_in(office):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=office.app, client=CLIENT), base_url="http://ccs.test") as http:
        r = await http.get("/")
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
        r = await http.post("/sign-in", data={"user_id": office.users["cm"], "password": "wrong-password-1"})
        assert r.status_code == 401 and "wrong user ID or password" in r.text


async def test_refer_act_refuse_and_scope(office):
    clerk = await _browser(office, "clerk")
    form = {**REFERRAL_FORM, "child.last_name": f"Synthetic{uuid.uuid4().hex[:6]}"}
    bad = await clerk.post("/refer", data={**form, "conditions.0.icd10": "ZZZ.9"})
    assert bad.status_code == 422 and "is not an ICD-10-CM code" in _text(bad.text)
    elsewhere = await clerk.post("/refer", data={**form, "child.county": "Fresno"})
    assert elsewhere.status_code == 422 and "this child lives in Fresno" in _text(elsewhere.text)
    r = await clerk.post("/refer", data=form)
    assert r.status_code == 200 and "A new case was opened." in r.text
    case_id = re.search(r'href="/cases/(case-[0-9a-f]+)"', r.text).group(1)
    same = await clerk.post("/refer", data=form)
    assert "already on the case" in same.text or "already received" in same.text  # with the identity index
    again = await clerk.post("/refer", data={**form, "conditions.0.icd10": "Q90.9",
                                             "conditions.0.description": "Down syndrome"})
    assert "Added to the existing case" in again.text

    cm = await _browser(office, "cm")
    page = await cm.get(f"/cases/{case_id}")
    assert page.status_code == 200 and "Record application" in page.text and "Rosa" in page.text
    r = await cm.post(f"/cases/{case_id}/actions/record_application", data={"received_on": "yesterday"})
    assert r.status_code == 422
    assert 'id="f-record_application-received_on-error"' in r.text and "Nothing was changed" in r.text
    assert (await office.services.cases.show(case_id)).stage == "intake"
    r = await cm.post(f"/cases/{case_id}/actions/add_note", data={"contact": "phone_call",
                                                                  "note": "Mother called about the visit"})
    assert r.status_code == 303
    page = await cm.get(r.headers["location"])
    assert "Mother called about the visit" in page.text and "add note" in _text(page.text)
    async with office.services.sessions() as s:  # the note's text is PHI: only in the encrypted state
        details = (await s.execute(select(AuditRow.detail).where(AuditRow.case_id == case_id))).scalars().all()
    assert details and "Mother called" not in json.dumps(details)
    r = await cm.post("/find", data={"last_name": "Synthetic"})
    assert r.status_code == 422 and "last name and date of birth" in r.text

    fresno = await _browser(office, "fresno")
    assert (await fresno.get(f"/cases/{case_id}")).status_code == 404
    assert (await fresno.post(f"/cases/{case_id}/actions/add_note",
                              data={"contact": "other", "note": "x"})).status_code == 404
    for http in (clerk, cm, fresno):
        await http.aclose()


async def test_supervisor_pages_answer(office):
    from models.case import Actor

    last_name = f"Stuck{uuid.uuid4().hex[:6]}"
    referral = forms.parse({**REFERRAL_FORM, "child.last_name": last_name})
    case_id = (await office.services.cases.refer(referral, Actor(id="clerk.web", role="intake_clerk"))).case_id
    sup = await _browser(office, "sup")
    for _ in range(50):  # visibility shows a new case within moments
        stuck = await sup.get("/supervisor/stuck?min_days=0")
        if case_id in stuck.text:
            break
        await asyncio.sleep(0.1)
    assert case_id in stuck.text and "intake" in _text(stuck.text)
    for path, words in (("/supervisor/stuck", "stuck case(s)"), ("/supervisor/overdue", "task(s)"),
                        ("/supervisor/workload", "Open cases per county and stage"),
                        ("/supervisor/timeliness", "CMS-0057-F")):
        r = await sup.get(path)
        assert r.status_code == 200 and words in r.text, path
    cm, aud = await _browser(office, "cm"), await _browser(office, "aud")
    assert (await cm.get("/supervisor/workload")).status_code == 403
    assert (await aud.get("/supervisor/stuck")).status_code == 403, "the API refuses auditors these lists too"
    page = await aud.get(f"/cases/{case_id}")
    assert page.status_code == 404 and last_name not in page.text, "an auditor reads no child's case page"
    found = await aud.post("/find", data={"last_name": last_name, "date_of_birth": REFERRAL_FORM["child.date_of_birth"]})
    assert found.status_code == 403 and case_id not in found.text
    for http in (sup, cm, aud):
        await http.aclose()


@pytest.mark.parametrize("name", sorted(n for n in ACTIONS if n != "refer"))
def test_every_action_has_a_form(name):
    assert list(forms.walk(forms.fields_for(ACTIONS[name].model))) or name in ("record_application",)


async def test_demo_fills_every_stage_once(office, database_url, monkeypatch):
    from activities.db import make_engine
    from starters.api.app import build_services
    from starters.web import demo

    said: list[str] = []

    async def services_of_the_test(settings, api):
        s = office.services
        return build_services(s.cases, make_engine(database_url, pool_size=2), api, s.secret)

    monkeypatch.setattr(demo, "connect_services", services_of_the_test)
    await demo.add_demo(None, office.app.state.api_settings, said.append)
    assert "  demo children  9 added, one in every stage (last name Sample)" in said, said[-1]
    people = [line for line in said if line.startswith("    ")]
    assert len(people) == len(demo.PEOPLE) and "supervisor.demo" in "".join(people)
    stages = set()
    for first, born, county, _ in demo.CHILDREN:
        from starters.client import case_id_for
        from models.referral import Child

        child = Child(first_name=first, last_name="Sample", date_of_birth=born, county=county)
        stages.add((await office.services.cases.show(case_id_for(child, office.services.cases.secret))).stage)
    assert stages == {"intake", "records", "eligibility", "medical_review", "denied", "appeal", "active", "closed"}
    said.clear()
    await demo.add_demo(None, office.app.state.api_settings, said.append)
    assert "  demo children  0 added, one in every stage (last name Sample)" in said
    assert any("demo people exist already" in line for line in said)


async def test_timeliness_figures_from_the_audit_log(engine):
    """One county's month: two determinations (3 and 41 days after referral), two Notices of
    Action (one sent in time), two routine authorizations (one approved in time, one denied late)."""
    from sqlalchemy import insert

    from activities.tables import CaseRow, OutboxRow
    from starters.web.timeliness import figures

    county, at = f"Testshire{uuid.uuid4().hex[:6]}", datetime(2026, 3, 2, 18, tzinfo=timezone.utc)
    day = timedelta(days=1)

    def step(case, action, when, source=None, **detail):
        return dict(case_id=case, source=source or case, seq=int(when.timestamp()) % 100000, at=when,
                    actor_id="t", actor_role="case_manager", action=action, stage="active", county=county,
                    detail=detail)

    a, b = f"{county}-a", f"{county}-b"
    rows = [step(a, "refer", at - 3 * day), step(a, "record_medical_determination", at),
            step(b, "refer", at - 40 * day), step(b, "record_medical_determination", at + day),
            step(a, "request_authorization", at, f"{a}-sar-1", urgency="routine"),
            step(a, "decide_authorization", at + 2 * day, f"{a}-sar-1", decision="approve", late=False),
            step(b, "request_authorization", at, f"{b}-sar-1", urgency="routine"),
            step(b, "decide_authorization", at + 8 * day, f"{b}-sar-1", decision="deny", late=True)]
    async with engine.begin() as conn:
        await conn.execute(insert(AuditRow), rows)
        await conn.execute(insert(CaseRow), [dict(case_id=c, stage="active", stage_since=at, county=county,
                                                  jurisdiction="county", case_manager=None, next_deadline=None,
                                                  conditions=[], opened_at=at, last_seq=1) for c in (a, b)])
        await conn.execute(insert(OutboxRow), [
            dict(key=f"{a}/noa", case_id=a, kind="notice_of_action", recipient="family", subject="s", body="b",
                 status="sent", created_at=at, sent_at=at + day),
            dict(key=f"{b}/noa", case_id=b, kind="notice_of_action", recipient="family", subject="s", body="b",
                 status="sent", created_at=at, sent_at=at + 9 * day)])
    figs = await figures(engine, county, now=at + 30 * day)
    assert figs["determination_days"] == [{"month": "2026-03", "cases": 2, "median": 22.0, "buckets": [1, 0, 0, 1, 0]}]
    assert figs["noa"] == [{"month": "2026-03", "within": 1, "total": 2, "percent": 50.0}]
    (auth,) = figs["authorizations"]
    assert (auth["urgency"], auth["decided"], auth["in_time_percent"], auth["approved_percent"],
            auth["denied_percent"], auth["mean_days"], auth["median_days"]) == ("standard", 2, 50.0, 50.0, 50.0, 5.0, 5.0)


async def test_meals_and_lodging_from_request_to_reimbursement(office):
    """The family's trip through the web forms: the request (route shown), the decision,
    receipts with one field wrong (nothing changed), then the reimbursement as computed."""
    from models.case import Actor
    from starters.web.humane import PACIFIC

    cases = office.services.cases
    referral = forms.parse({**REFERRAL_FORM, "child.last_name": f"Trip{uuid.uuid4().hex[:6]}"})
    case_id = (await cases.refer(referral, Actor(id="clerk.web", role="intake_clerk"))).case_id
    cm = {"actor": {"id": office.users["cm"], "role": "case_manager"}}
    for name, data in (("record_application", {}), ("record_records", {}),
                       ("record_eligibility", {"finances": {"residential_in_county": True, "full_scope_medi_cal": True}})):
        await cases.act(case_id, name, {**cm, **data})
    await cases.act(case_id, "record_medical_determination", {
        "actor": {"id": office.users["doc"], "role": "medical_consultant"}, "condition_id": "C1", "eligible": True,
        "reason": "eligible"})
    today = datetime.now(PACIFIC).date().isoformat()
    http = await _browser(office, "cm")
    r = await http.post(f"/cases/{case_id}/actions/request_meals_lodging", data={
        "request.travel_start": today, "request.travel_end": today, "request.travellers.0.relationship": "parent",
        "request.condition_id": "C1", "request.treatment": "Urgent clinic visit", "request.emergency": "true",
        "request.estimated.meals": "15", "request.estimated.parking": "12"})
    assert r.status_code == 303, _text(r.text)[:2000]
    request_id = f"{case_id}-ml-1"
    page = await request_page(http, case_id, request_id)
    assert "exception review" in page.text and "awaiting decision" in page.text
    r = await http.post(f"/cases/{case_id}/requests/{request_id}/actions/decide_meals_lodging",
                        data={"decision": "approve"})
    assert r.status_code == 303
    receipts = {"items.0.category": "meals", "items.0.amount": "14.50", "items.0.spent_on": today,
                "items.1.category": "parking", "items.1.amount": "12", "items.1.spent_on": "2001-01-01",
                "final": "true"}
    r = await http.post(f"/cases/{case_id}/requests/{request_id}/actions/submit_receipts", data=receipts)
    assert r.status_code == 422 and "outside the trip" in r.text and "Nothing was changed" in r.text
    assert (await cases.show(request_id)).receipts == []
    r = await http.post(f"/cases/{case_id}/requests/{request_id}/actions/submit_receipts",
                        data={**receipts, "items.1.spent_on": today})
    assert r.status_code == 303
    page = await http.get(r.headers["location"])
    assert "Reimbursement as computed: $26.50" in _text(page.text)
    await http.aclose()


async def test_a_grievance_is_linked_from_its_case_and_resolved_on_its_page(office):
    """Every request kind has its page (models/request_kinds.py): a grievance too."""
    from models.case import Actor

    cases = office.services.cases
    referral = forms.parse({**REFERRAL_FORM, "child.last_name": f"Grieves{uuid.uuid4().hex[:6]}"})
    case_id = (await cases.refer(referral, Actor(id="clerk.web", role="intake_clerk"))).case_id
    http = await _browser(office, "cm")
    r = await http.post(f"/cases/{case_id}/actions/file_grievance", data={
        "request.about": "delay", "request.summary": "Six weeks without a first visit.", "request.expedited": "false"})
    assert r.status_code == 303, _text(r.text)[:2000]
    request_id = f"{case_id}-grv-1"
    page = await request_page(http, case_id, request_id)
    assert page.status_code == 200 and "resolve_grievance" in page.text
    assert f"Grievance {request_id}" in _text(page.text) and "Service authorization" not in page.text
    assert "Six weeks without a first visit." in page.text
    assert f'href="/cases/{case_id}/requests/{request_id}"' in (await http.get(f"/cases/{case_id}")).text
    r = await http.post(f"/cases/{case_id}/requests/{request_id}/actions/resolve_grievance",
                        data={"resolution": "We booked the first visit for next week."})
    assert r.status_code == 303, _text(r.text)[:2000]
    page = await http.get(r.headers["location"])
    assert "resolved" in _text(page.text) and "/actions/resolve_grievance" not in page.text
    assert "We booked the first visit for next week." in page.text
    # An action of another kind is no action of a grievance.
    r = await http.post(f"/cases/{case_id}/requests/{request_id}/actions/decide_meals_lodging", data={})
    assert r.status_code == 404
    await http.aclose()
