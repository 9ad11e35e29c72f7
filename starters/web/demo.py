"""`ccs up --demo`: a living office for a newcomer. People of each role (their passwords
printed once) and synthetic children in every stage, so the first look at the web app
shows real work. Running it again adds nothing twice."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from models.case import Actor
from models.settings import Settings
from starters.api.app import connect_services
from starters.api.settings import ApiSettings
from starters.client import CcsError, Cases, case_id_for
from temporalio.service import RPCError, RPCStatusCode
from starters.web.humane import PACIFIC

PEOPLE = (("clerk.demo", "intake_clerk", "Kern"), ("cm.demo", "case_manager", "Kern"),
          ("cm2.demo", "case_manager", "Kern"), ("consultant.demo", "medical_consultant", "Kern"),
          ("supervisor.demo", "supervisor", "Kern"), ("state.demo", "state_reviewer", None),
          ("clerk.alpine.demo", "intake_clerk", "Alpine"))
CLERK, CM, DOC, SUP, STATE = (Actor(id=i, role=r) for i, r in (
    ("clerk.demo", "intake_clerk"), ("cm.demo", "case_manager"), ("consultant.demo", "medical_consultant"),
    ("supervisor.demo", "supervisor"), ("state.demo", "state_reviewer")))
YES = {"residential_in_county": True, "program": "treatment", "full_scope_medi_cal": True}
NO = {"residential_in_county": False, "program": "treatment"}

# Synthetic children (no real person): first name, born, county, and the steps that bring
# each case to its stage.
CHILDREN = (
    ("Ava", date(2016, 2, 11), "Kern", []),
    ("Ben", date(2018, 6, 3), "Kern", ["application"]),
    ("Cora", date(2012, 9, 21), "Kern", ["application", "records"]),
    ("Dev", date(2020, 1, 30), "Kern", ["application", "records", "eligible"]),
    ("Eli", date(2019, 11, 8), "Alpine", ["application", "records", "eligible"]),
    ("Fay", date(2014, 4, 17), "Kern", ["application", "records", "eligible", "determined", "trip"]),
    ("Gus", date(2010, 7, 2), "Kern", ["application", "records", "not_eligible"]),
    ("Hana", date(2015, 12, 24), "Kern", ["application", "records", "not_eligible", "appeal"]),
    ("Ivy", date(2011, 3, 5), "Kern", ["application", "records", "eligible", "determined", "closed"]),
)


def _referral(first: str, born: date, county: str) -> dict:
    return {"child": {"first_name": first, "last_name": "Sample", "date_of_birth": born.isoformat(),
                      "county": county},
            "referrer": {"kind": "specialist", "organization": "Example Children's Clinic",
                         "email": "referrals@clinic.example.org"},
            "conditions": [{"icd10": "E84.0", "description": "Cystic fibrosis with pulmonary manifestations"}],
            "medi_cal": {"full_scope": True}}


def _trip(today: date) -> dict:
    start = today + timedelta(days=21)
    return {"travel_start": start.isoformat(), "travel_end": (start + timedelta(days=1)).isoformat(),
            "nights": 1, "travellers": [{"relationship": "child"}, {"relationship": "parent"}],
            "round_trip_miles": "180", "condition_id": "C1", "treatment": "Cystic fibrosis clinic visit",
            "estimated": {"meals": "60", "lodging": "140", "mileage": "37.80", "parking": "20"}}


async def _bring(cases: Cases, case_id: str, county: str, steps: list[str]) -> None:
    today = datetime.now(PACIFIC).date()
    doc = DOC if county == "Kern" else STATE
    act = {
        "application": ("record_application", {"actor": CM}),
        "records": ("record_records", {"actor": CM}),
        "eligible": ("record_eligibility", {"actor": CM, "finances": YES}),
        "not_eligible": ("record_eligibility", {"actor": CM, "finances": NO}),
        "determined": ("record_medical_determination", {"actor": doc, "condition_id": "C1", "eligible": True,
                                                        "reason": "Meets CCS medical eligibility"}),
        "appeal": ("file_appeal", {"actor": CM, "grounds": "The family lives in the county since last month"}),
        "trip": ("request_meals_lodging", {"actor": CM, "request": _trip(today)}),
        "closed": ("close_case", {"actor": CM, "reason": "family_withdrew"}),
    }
    for step in steps:
        name, data = act[step]
        data = {k: (v.model_dump() if isinstance(v, Actor) else v) for k, v in data.items()}
        await cases.act(case_id, name, data)


async def _exists(cases: Cases, case_id: str) -> bool:
    try:
        await cases.client.get_workflow_handle(case_id).describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def add_demo(settings: Settings, api: ApiSettings, echo=print) -> None:
    services = await connect_services(settings, api)
    try:
        made = []
        for user_id, role, county in PEOPLE:
            try:
                made.append((user_id, role, county, await services.users.add(user_id, role, county)))
            except CcsError:
                pass  # there from an earlier --demo: its password was printed then
        if made:
            echo("  demo people (passwords shown only now):")
            for user_id, role, county, password in made:
                echo(f"    {user_id:<20} {role:<19} {county or 'statewide':<10} {password}")
        else:
            echo("  demo people exist already (reset one: ccs user reset-password USER)")
        added = 0
        for first, born, county, steps in CHILDREN:
            referral = services.cases.validate_referral(_referral(first, born, county))
            if await _exists(services.cases, case_id_for(referral.child, services.cases.secret)):
                continue  # from an earlier --demo (a closed case too: a new referral would reopen it)
            status = await services.cases.refer(referral, CLERK)
            await _bring(services.cases, status.case_id, county, steps)
            added += 1
        echo(f"  demo children  {added} added, one in every stage (last name Sample)")
    finally:
        await services.engine.dispose()
