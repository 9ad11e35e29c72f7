"""The HTTP API: tokens refused for every kind of flaw, the embedded sign-in and its
throttle, referrals with an Idempotency-Key, reads in scope (and logged), lists with paging."""

from __future__ import annotations

import asyncio
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select, text

from activities.tables import AccessRow, CaseRow
from tests.api_helpers import AUDIENCE, ISSUER, api  # noqa: F401  (fixture)
from tests.helpers import referral

PROBLEM = "application/problem+json"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def bad_tokens(api) -> dict[str, str]:
    iss, now = api.issuer, int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "bad signature": iss.token(key=other_key),
        "unknown key id": iss.token(kid="nosuchkey"),
        "wrong issuer": iss.token(iss="https://evil.example/"),
        "wrong audience": iss.token(aud="another-api"),
        "expired": iss.token(exp=now - 60, iat=now - 400),
        "no expiry": jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": now, "ccs_role": "case_manager",
                                 "ccs_county": "Kern"}, iss.key, algorithm="RS256", headers={"kid": iss.kid}),
        "no role": iss.token(role=None),
        "unknown role": iss.token(role="superuser"),
        "county role without county": iss.token(county=None),
        "not a county": iss.token(county="Atlantis"),
        "unsigned": jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 60,
                                "ccs_role": "admin"}, None, algorithm="none"),
        "local issuer, wrong secret": jwt.encode({"iss": "ccs-embedded", "aud": "ccs-api", "sub": "admin",
                                                  "role": "admin", "iat": now, "exp": now + 60},
                                                 "guessed-secret-guessed-secret-32", algorithm="HS256"),
        "garbage": "not-a-jwt",
    }


async def test_good_oidc_token_names_the_person(api):
    r = await api.http.get("/api/v1/me", headers=api.auth("case_manager", "Kern", sub="cm.oidc"))
    assert r.status_code == 200
    assert r.json() == {"user_id": "cm.oidc", "role": "case_manager", "county": "Kern"}


async def test_flawed_tokens_are_refused(api):
    for flaw, token in bad_tokens(api).items():
        r = await api.http.get("/api/v1/me", headers=bearer(token))
        assert r.status_code == 401, flaw
        assert r.headers["content-type"] == PROBLEM, flaw
        assert r.json()["status"] == 401 and r.json()["detail"], flaw
    r = await api.http.get("/api/v1/cases")
    assert r.status_code == 401 and "sign in" in r.json()["detail"]


async def test_embedded_sign_in_throttle_and_disable(api):
    users = api.services.users
    name = f"clerk.{uuid.uuid4().hex[:6]}"
    password = await users.add(name, "intake_clerk", "kern")
    r = await api.http.post("/api/v1/sign-in", json={"user_id": name, "password": password})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    me = await api.http.get("/api/v1/me", headers=bearer(token))
    assert me.json() == {"user_id": name, "role": "intake_clerk", "county": "Kern"}
    # The session cookie carries the same token (the web app's way in).
    api.http.cookies.set("ccs_session", token)
    try:
        assert (await api.http.get("/api/v1/me")).json()["user_id"] == name
    finally:
        api.http.cookies.clear()

    for _ in range(3):  # the test settings allow 3 failures per user
        wrong = await api.http.post("/api/v1/sign-in", json={"user_id": name, "password": "wrong-password-1"})
        assert wrong.status_code == 401
    throttled = await api.http.post("/api/v1/sign-in", json={"user_id": name, "password": password})
    assert throttled.status_code == 429 and "Retry-After" in throttled.headers
    await asyncio.sleep(1.1)  # token times are in whole seconds
    await users.reset_password(name, password)  # an administrator's reset lifts the throttle...
    assert (await api.http.get("/api/v1/me", headers=bearer(token))).status_code == 401  # ...and ends old tokens
    again = await api.http.post("/api/v1/sign-in", json={"user_id": name, "password": password})
    assert again.status_code == 200
    token = again.json()["access_token"]
    assert (await api.http.get("/api/v1/me", headers=bearer(token))).status_code == 200

    await users.set_disabled(name)
    refused = await api.http.get("/api/v1/me", headers=bearer(token))
    assert refused.status_code == 401 and "disabled" in refused.json()["detail"]


async def test_refer_idempotently_read_in_scope_and_logged(api):
    http, clerk, cm = api.http, api.auth("intake_clerk", "Kern", "clerk.kern"), api.auth("case_manager", "Kern")
    body = referral(first_name="Wrenna", last_name="Apitest", cin=None)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await http.post("/api/v1/referrals", json=body, headers={**clerk, **key})
    assert first.status_code == 201, first.text
    case_id = first.json()["case_id"]
    again = await http.post("/api/v1/referrals", json=body, headers={**clerk, **key})
    assert again.status_code == 200 and again.json()["case_id"] == case_id
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(again.json()["status"]["conditions"]) == 1  # the retry added nothing
    other = referral(first_name="Someone", last_name="Else", cin=None)
    reused = await http.post("/api/v1/referrals", json=other, headers={**clerk, **key})
    assert reused.status_code == 422 and "Idempotency-Key" in reused.json()["errors"]

    # Bad input: field errors, problem+json, nothing started.
    bad = referral(first_name="Wrenna", last_name="Apitest", date_of_birth="not-a-date")
    r = await http.post("/api/v1/referrals", json=bad, headers=clerk)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert "child.date_of_birth" in r.json()["errors"]
    # Another county's child: refused, with the reason.
    fresno = referral(first_name="Wrenna", last_name="Fresno", county="Fresno", cin=None)
    r = await http.post("/api/v1/referrals", json=fresno, headers=clerk)
    assert r.status_code == 403 and "Fresno" in r.json()["detail"]

    # The actor is the signed-in person, whatever the payload says.
    r = await http.post(f"/api/v1/cases/{case_id}/actions/record_application",
                        json={"actor": {"id": "someone.else", "role": "supervisor"}}, headers=clerk)
    assert r.status_code == 422 and "actor" in r.json()["errors"]
    r = await http.post(f"/api/v1/cases/{case_id}/actions/record_application", json={}, headers=clerk)
    assert r.status_code == 200 and r.json()["stage"] == "records"
    r = await http.post(f"/api/v1/cases/{case_id}/actions/record_application", json={}, headers=clerk)
    assert r.status_code == 409 and "does not fit a case in stage 'records'" in r.json()["detail"]

    shown = await http.get(f"/api/v1/cases/{case_id}", headers=cm)
    assert shown.status_code == 200 and shown.json()["stage"] == "records"
    for _ in range(50):  # the audit rows follow the workflow's steps
        trail = (await http.get(f"/api/v1/cases/{case_id}/audit", headers=api.auth("auditor", "Kern"))).json()
        if any(e["action"] == "record_application" for e in trail):
            break
        await asyncio.sleep(0.1)
    assert ("record_application", "clerk.kern", "intake_clerk") in [
        (e["action"], e["actor_id"], e["actor_role"]) for e in trail]
    # Outside scope: a 404, as if there were no such case.
    for who in (api.auth("case_manager", "Fresno"), api.auth("state_reviewer", None)):
        r = await http.get(f"/api/v1/cases/{case_id}", headers=who)
        assert r.status_code == 404 and r.json()["detail"] == f"no case {case_id}"
    assert (await http.get(f"/api/v1/cases/{case_id}", headers=api.auth("auditor", "Kern"))).status_code == 403

    log = (await http.get("/api/v1/access-log", params={"case": case_id}, headers=api.auth("auditor", None))).json()
    assert {(row["user_id"], row["what"]) for row in log} == {("case_manager.kern", "case"),
                                                               ("auditor.kern", "audit_trail")}
    assert (await http.get("/api/v1/access-log", params={"case": case_id}, headers=cm)).status_code == 403
    async with api.services.sessions() as s:
        rows = (await s.execute(select(AccessRow).where(AccessRow.case_id == case_id))).scalars().all()
    flat = " ".join(f"{r.user_id} {r.role} {r.case_id} {r.what}" for r in rows).lower()
    for phi in ("wrenna", "apitest", body["child"]["date_of_birth"], "2019"):
        assert phi not in flat
    async with api.services.engine.begin() as conn:  # append-only
        with pytest.raises(Exception, match="append-only"):
            await conn.execute(text("DELETE FROM access_log"))


async def test_case_list_scope_filters_and_cursor(api):
    http, clerk = api.http, api.auth("intake_clerk", "Kern")
    made = []
    for i in range(3):
        r = await http.post("/api/v1/referrals", json=referral(first_name=f"Lister{i}", last_name="Apitest", cin=None),
                            headers=clerk)
        made.append(r.json()["case_id"])
    alpine = referral(first_name="Alpa", last_name="Apitest", county="Alpine", cin=None)
    r = await http.post("/api/v1/referrals", json=alpine, headers=api.auth("intake_clerk", "Alpine"))
    state_case = r.json()["case_id"]
    for _ in range(100):  # the read model follows the workflows
        async with api.services.sessions() as s:
            n = (await s.execute(select(CaseRow.case_id).where(CaseRow.case_id.in_([*made, state_case])))).all()
        if len(n) == 4:
            break
        await asyncio.sleep(0.1)

    seen, cursor = [], None
    while True:
        params = {"stage": "intake", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/api/v1/cases", params=params, headers=api.auth("case_manager", "Kern"))).json()
        seen += [c["case_id"] for c in page["items"]]
        assert all(c["county"] == "Kern" for c in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert set(made) <= set(seen) and state_case not in seen and len(seen) == len(set(seen))
    # A Kern case manager asking for Alpine sees nothing; the State sees Alpine (a dependent county).
    r = await http.get("/api/v1/cases", params={"county": "Alpine"}, headers=api.auth("case_manager", "Kern"))
    assert r.json()["items"] == []
    r = await http.get("/api/v1/cases", params={"county": "Alpine"}, headers=api.auth("state_reviewer", None))
    assert state_case in [c["case_id"] for c in r.json()["items"]]
    r = await http.get("/api/v1/cases", params={"stage": "limbo"}, headers=api.auth("case_manager", "Kern"))
    assert r.status_code == 422 and "stage" in r.json()["errors"]

    work = (await http.get("/api/v1/my-work", headers=api.auth("intake_clerk", "Kern"))).json()
    assert {t["case_id"] for t in work} >= set(made)
    assert all(t["county"] == "Kern" for t in work)
    dues = [t["due"] for t in work]
    assert dues == sorted(dues)


async def test_an_unexpected_failure_is_a_problem_without_details(caplog):
    from starters.api.problems import install
    from fastapi import FastAPI
    import httpx

    app = FastAPI()
    install(app)

    @app.get("/boom")
    async def boom():
        raise RuntimeError("child Zelda Boomtest born 2015-01-01")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://t") as http:
        r = await http.get("/boom")
    assert r.status_code == 500 and r.headers["content-type"] == PROBLEM
    assert "Zelda" not in r.text and "Zelda" not in caplog.text and "RuntimeError" in caplog.text


async def test_an_oidc_subject_an_actor_cannot_carry_is_refused(api):
    r = await api.http.get("/api/v1/me", headers=bearer(api.issuer.token(sub="auth0|12345")))
    assert r.status_code == 401 and "CCS_OIDC_USER_CLAIM" in r.json()["detail"]


async def test_serve_connects_to_the_configured_services(dev_env, database_url, engine, tmp_path):
    """`ccs serve` builds its services from the settings at start-up (the lifespan)."""
    import httpx

    from models.settings import Settings
    from starters.api.app import create_app
    from starters.api.settings import ApiSettings
    from starters.api.users import Users
    from activities.db import session_factory

    settings = Settings(TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
                        DATABASE_URL=database_url, CCS_HOME=str(tmp_path))
    api_settings = ApiSettings(CCS_API_SECRET="serve-test-" + uuid.uuid4().hex)
    name = f"sup.{uuid.uuid4().hex[:6]}"
    password = await Users(session_factory(engine), api_settings).add(name, "supervisor", "Kern")
    app = create_app(settings, api_settings)
    async with app.router.lifespan_context(app):
        services = app.state.services
        assert services.cases.records.sessions.kw["bind"] is services.engine, "one pool for the service"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ccs.test") as http:
            token = (await http.post("/api/v1/sign-in", json={"user_id": name, "password": password})
                     ).json()["access_token"]
            r = await http.get("/api/v1/supervision/stuck", params={"min_days": 0}, headers=bearer(token))
            assert r.status_code == 200 and "Kern" in r.json()["query"]
            r = await http.get("/api/v1/cases/case-nosuchcase", headers=bearer(token))
            assert r.status_code == 404
