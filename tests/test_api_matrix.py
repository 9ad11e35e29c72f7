"""Every role x every action x own county / other county, through HTTP: exactly the
outcomes the action registry allows. Out of scope is a 404 (nothing learned about the
case); in scope but not the role's action is a 403; allowed reaches the action's own
validation (a probe field every action refuses, so no case changes)."""

from __future__ import annotations

from models.actions import ACTIONS, REQUEST_ACTIONS
from starters.api.auth import PERSON_ROLES
from starters.api.routes.cases import allowed_roles
from tests.api_helpers import api  # noqa: F401  (fixture)
from tests.helpers import referral

ACTION_NAMES = sorted([n for n in ACTIONS if n != "refer"] + list(REQUEST_ACTIONS))


_MADE: dict[int, dict[str, str]] = {}


async def _cases(api) -> dict[str, str]:
    """A case in Kern (the county decides medically) and one in Alpine (the State decides)."""
    if id(api) in _MADE:
        return _MADE[id(api)]
    kern = await api.http.post("/api/v1/referrals", json=referral(first_name="Matrix", last_name="Kern", cin=None),
                               headers=api.auth("intake_clerk", "Kern"))
    alpine = await api.http.post("/api/v1/referrals",
                                 json=referral(first_name="Matrix", last_name="Alpine", county="Alpine", cin=None),
                                 headers=api.auth("intake_clerk", "Alpine"))
    assert kern.status_code in (200, 201) and alpine.status_code in (200, 201), (kern.text, alpine.text)
    assert kern.json()["status"]["jurisdiction"] == "county" and alpine.json()["status"]["jurisdiction"] == "state"
    _MADE[id(api)] = {"county": kern.json()["case_id"], "state": alpine.json()["case_id"]}
    return _MADE[id(api)]


def principals(role: str) -> dict[str, tuple[str | None, str]]:
    """For each scope, (the token's county, the case it acts on)."""
    if role == "state_reviewer":
        return {"own": (None, "state"), "other": (None, "county")}
    if role == "admin":
        return {"own": (None, "county"), "other": (None, "state")}
    return {"own": ("Kern", "county"), "other": ("Fresno", "county")}


def expected(role: str, action: str, scope: str) -> int:
    if role == "admin" or scope == "other":
        return 404
    return 422 if role in allowed_roles(action) else 403


def test_the_registry_says_what_a_case_manager_would():
    # The State answers appeals and decides SARs in a dependent county (22 CCR 42160(c)(2));
    # the case workflow narrows each to the one that applies (tests/test_dependent_county.py).
    assert set(allowed_roles("decide_appeal")) == {"supervisor", "state_reviewer"}
    assert set(allowed_roles("record_medical_determination")) == {"medical_consultant", "state_reviewer"}
    assert "intake_clerk" not in allowed_roles("record_eligibility")
    assert set(allowed_roles("decide_authorization")) == {"case_manager", "supervisor", "medical_consultant",
                                                          "state_reviewer"}
    assert not any(r in allowed_roles(a) for a in ACTION_NAMES for r in ("auditor", "admin"))


async def test_role_action_county_matrix(api):
    cases = await _cases(api)
    outcomes, wanted = {}, {}
    for role in PERSON_ROLES:
        for scope, (county, case) in principals(role).items():
            headers = api.auth(role, county)
            for action in ACTION_NAMES:
                r = await api.http.post(f"/api/v1/cases/{cases[case]}/actions/{action}", json={"_probe": 1},
                                        headers=headers)
                outcomes[(role, action, scope)] = r.status_code
                wanted[(role, action, scope)] = expected(role, action, scope)
                if r.status_code == 422:  # reached `ccs act`'s own validation of the payload
                    assert r.json()["detail"] == f"invalid data for {action}", r.text
    wrong = {k: (outcomes[k], wanted[k]) for k in outcomes if outcomes[k] != wanted[k]}
    assert not wrong, wrong
    assert len(outcomes) == len(PERSON_ROLES) * len(ACTION_NAMES) * 2


async def test_reads_and_referrals_by_role_and_county(api):
    cases = await _cases(api)
    for role in PERSON_ROLES:
        for scope, (county, case) in principals(role).items():
            r = await api.http.get(f"/api/v1/cases/{cases[case]}", headers=api.auth(role, county))
            want = 403 if role in ("auditor", "admin") else (200 if scope == "own" else 404)
            assert r.status_code == want, (role, scope, r.text)
            trail = await api.http.get(f"/api/v1/cases/{cases[case]}/audit", headers=api.auth(role, county))
            want = 403 if role == "admin" else (200 if scope == "own" else 404)
            assert trail.status_code == want, (role, scope, trail.text)
            body = referral(first_name="Matrix", last_name="Kern", cin=None)
            r = await api.http.post("/api/v1/referrals", json=body, headers=api.auth(role, county))
            # Allowed: the child is already referred for this condition, so the answer is the
            # case as it is, marked a duplicate referral.
            ok = role in ACTIONS["refer"].roles and county == "Kern"
            assert r.status_code == (200 if ok else 403), (role, scope, r.text)
            if ok:
                assert r.json()["duplicate_referral"] is True
