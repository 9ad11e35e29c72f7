"""The merged pieces meeting at the front door: legal holds, letters, finding a child and
closed cases read from the record, through the API, the web app and the CLI, in scope and
in the access log."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest_asyncio
import uvicorn
from sqlalchemy import select

from activities.letters import LetterStore
from activities.notify import MailboxChannel, Notifier
from activities.storage import CaseActivities
from activities.tables import AccessRow, AuditRow
from starters.api.app import build_services, create_app
from starters.cli import main
from starters.records import Records
from tests.api_helpers import Api, api_settings, local_issuer
from tests.conftest import CONVERTER, KEYRING, cases_for
from tests.helpers import referral, free_port
from tests.test_records import delete_workflow
from workers.worker import build_worker

PDF = "application/pdf"


@pytest_asyncio.fixture(scope="module")
async def desk(dev_env, engine, sessions, tmp_path_factory):
    """The API and web app on a worker that keeps records (snapshots) and letters."""
    tmp = tmp_path_factory.mktemp("front")
    store = LetterStore(sessions, KEYRING)
    notifier = Notifier(sessions, MailboxChannel(tmp / "mailbox"), "ccs@county.example",
                        "supervisor@county.example", letters=store)
    queue = f"tq-front-{uuid.uuid4().hex[:8]}"
    cases = cases_for(dev_env, queue)
    cases.records = Records(sessions, CONVERTER.payload_codec)
    with local_issuer() as (issuer, jwks_url):
        settings = api_settings(jwks_url)
        services = build_services(cases, engine, settings, settings.token_secret.encode(), KEYRING)
        app = create_app(api=settings, services=services)
        async with build_worker(dev_env.client, queue, CaseActivities(sessions, notifier, CONVERTER.payload_codec)):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ccs.test") as http:
                yield Api(http, services, issuer), app, notifier


def child(first: str, **more) -> dict:
    return referral(first_name=first, last_name="Frontdoor", date_of_birth="2016-05-0" + str(len(first) % 9 + 1),
                    county="Kern", **more)


async def refer(api: Api, data: dict) -> str:
    r = await api.http.post("/api/v1/referrals", json=data, headers=api.auth("intake_clerk"))
    assert r.status_code == 201, r.text
    return r.json()["case_id"]


async def close(api: Api, case_id: str) -> None:
    r = await api.http.post(f"/api/v1/cases/{case_id}/actions/close_case", json={"reason": "family_withdrew"},
                            headers=api.auth("case_manager"))
    assert r.status_code == 200 and r.json()["stage"] == "closed", r.text
    await api.services.cases.client.get_workflow_handle(case_id).result()


async def access(api: Api, user_id: str) -> list[tuple[str, str]]:
    async with api.services.sessions() as s:
        rows = (await s.execute(select(AccessRow.case_id, AccessRow.what).where(AccessRow.user_id == user_id)
                                .order_by(AccessRow.id))).all()
    return [tuple(r) for r in rows]



async def test_closed_case_gone_from_temporal_is_read_and_held_from_the_record(desk, monkeypatch, capsys):
    api, app, _ = desk
    cid = await refer(api, child("Holly"))
    await close(api, cid)
    await delete_workflow(api.services.cases.client, cid)

    # The case and its page come from the record, marked so, and each read is logged.
    r = await api.http.get(f"/api/v1/cases/{cid}", headers=api.auth("case_manager", sub="cm.reader"))
    assert r.status_code == 200, r.text
    assert r.json()["from_record"] and r.json()["stage"] == "closed"
    page = await api.http.get(f"/cases/{cid}", headers=api.auth("case_manager", sub="cm.reader"))
    assert page.status_code == 200 and "from the case record" in page.text and "Holly" in page.text
    assert await access(api, "cm.reader") == [(cid, "case"), (cid, "web:case")]

    # Holds: supervisors of the case's county only; another county's supervisor learns nothing.
    hold = {"matter": "LIT-2026-101"}
    url = f"/api/v1/cases/{cid}/holds"
    r = await api.http.post(url, json=hold, headers=api.auth("case_manager"))
    assert r.status_code == 403
    r = await api.http.post(url, json=hold, headers=api.auth("supervisor", "Fresno"))
    assert r.status_code == 404 and r.json()["detail"] == f"no case {cid}"
    r = await api.http.post(url, json={"matter": "Sam Example's lawsuit"}, headers=api.auth("supervisor"))
    assert r.status_code == 422 and "matter" in json.dumps(r.json()["errors"])
    r = await api.http.post(url, json=hold, headers=api.auth("supervisor", sub="sup.kern"))
    assert r.status_code == 201 and r.json()["placed_by"] == "sup.kern", r.text
    r = await api.http.post(url, json=hold, headers=api.auth("supervisor", sub="sup.kern"))
    assert r.status_code == 409 and "already on hold" in r.json()["detail"]
    r = await api.http.get(url, headers=api.auth("case_manager", sub="cm.reader"))
    assert [h["matter"] for h in r.json()] == ["LIT-2026-101"] and r.json()[0]["released_at"] is None
    page = await api.http.get(f"/cases/{cid}", headers=api.auth("case_manager"))
    assert "LIT-2026-101" in page.text and "Legal holds" in page.text

    # The CLI verbs go through the API with the signed-in person's token.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        monkeypatch.setenv("CCS_API_URL", f"http://127.0.0.1:{server.config.port}")
        monkeypatch.setenv("CCS_TOKEN", api.auth("supervisor", sub="sup.cli")["Authorization"].split()[1])
        assert await asyncio.to_thread(main, ["hold", cid, "--matter", "X-1", "--actor", "someone.else"]) == 2
        assert "--actor and --role are gone" in capsys.readouterr().err
        assert await asyncio.to_thread(main, ["release-hold", cid, "--matter", "LIT-2026-101", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["released_by"] == "sup.cli"
        assert await asyncio.to_thread(main, ["release-hold", cid, "--matter", "LIT-2026-101"]) == 2
        assert "has no hold for matter LIT-2026-101" in capsys.readouterr().err
        monkeypatch.setenv("CCS_TOKEN", api.auth("supervisor", "Fresno")["Authorization"].split()[1])
        assert await asyncio.to_thread(main, ["hold", cid, "--matter", "LIT-2026-102"]) == 2
        assert f"no case {cid}" in capsys.readouterr().err
    finally:
        server.should_exit = True
        await serving
    async with api.services.sessions() as s:
        audited = (await s.execute(select(AuditRow.action, AuditRow.actor_id).where(
            AuditRow.case_id == cid, AuditRow.action.in_(("place_hold", "release_hold"))).order_by(AuditRow.seq))).all()
    assert [tuple(a) for a in audited] == [("place_hold", "sup.kern"), ("release_hold", "sup.cli")]


def by_post(first: str) -> dict:
    """A family with no e-mail on file: their letters go to the print queue."""
    data = child(first)
    data["child"]["guardian"] = {"name": "Pat Frontdoor", "phone": "555-0101"}
    return data


async def test_letters_on_the_case_and_the_print_queue_in_scope_and_logged(desk):
    api, _, notifier = desk
    cid = await refer(api, by_post("Letty"))
    await close(api, cid)
    await notifier.drain()
    kern, fresno = api.auth("case_manager", sub="cm.letters"), api.auth("case_manager", "Fresno")

    r = await api.http.get(f"/api/v1/cases/{cid}/letters", headers=kern)
    assert r.status_code == 200, r.text
    letters = {x["kind"]: x for x in r.json()}
    assert "case_closed" in letters and letters["case_closed"]["print_status"] == "queued"
    closed = letters["case_closed"]
    pdf = await api.http.get(closed["pdf"], headers=kern)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == PDF and pdf.content.startswith(b"%PDF")
    assert (await api.http.get(f"/api/v1/cases/{cid}/letters/{cid}/999/case_closed/0", headers=kern)).status_code == 404
    for url in (f"/api/v1/cases/{cid}/letters", closed["pdf"]):
        assert (await api.http.get(url, headers=fresno)).status_code == 404
    assert await access(api, "cm.letters") == [(cid, "letters"), (cid, f"letter:{closed['key']}")]

    # The web case page lists the letters, each a link to its PDF.
    page = await api.http.get(f"/cases/{cid}", headers=kern)
    assert f'href="/cases/{cid}/letters/{closed["key"]}"' in page.text
    web_pdf = await api.http.get(f"/cases/{cid}/letters/{closed['key']}", headers=kern)
    assert web_pdf.content == pdf.content
    assert (await api.http.get(f"/cases/{cid}/letters/{closed['key']}", headers=fresno)).status_code == 404

    # The print queue: the county's clerks (and supervisor) see their county's letters only.
    queued = await api.http.get("/api/v1/print-queue", headers=api.auth("intake_clerk"))
    assert closed["key"] in [x["key"] for x in queued.json()]
    other = await api.http.get("/api/v1/print-queue", headers=api.auth("intake_clerk", "Fresno"))
    assert other.status_code == 200 and cid not in [x["case_id"] for x in other.json()]
    assert (await api.http.get("/api/v1/print-queue", headers=kern)).status_code == 403
    page = await api.http.get("/print-queue", headers=api.auth("intake_clerk"))
    assert page.status_code == 200 and f'href="/cases/{cid}/letters/{closed["key"]}"' in page.text
    assert (await api.http.get("/print-queue", headers=kern)).status_code == 404


async def test_find_a_child_by_cin_name_or_last_name_in_scope_only(desk):
    api, _, _ = desk
    kern_child, fresno_child = child("Finn"), child("Fiona")
    fresno_child["child"].update(county="Fresno", date_of_birth=kern_child["child"]["date_of_birth"])
    fresno_child["child"]["cin"] = "91234567F"
    kern_cid = await refer(api, kern_child)
    r = await api.http.post("/api/v1/referrals", json=fresno_child, headers=api.auth("intake_clerk", "Fresno"))
    assert r.status_code == 201, r.text
    kid = kern_child["child"]
    me = api.auth("case_manager", sub="cm.finder")

    async def found(**criteria) -> list[str]:
        r = await api.http.post("/api/v1/find", json=criteria, headers=me)
        assert r.status_code == 200, r.text
        return r.json()["case_ids"]

    assert await found(cin=kid["cin"]) == [kern_cid]
    assert await found(first_name=kid["first_name"], last_name="Frontdoor", date_of_birth=kid["date_of_birth"]) \
        == [kern_cid]
    # Both children share last name and birthday; the Fresno one is out of this person's scope.
    assert await found(last_name="Frontdoor", date_of_birth=kid["date_of_birth"]) == [kern_cid]
    assert await found(cin="91234567F") == []
    r = await api.http.post("/api/v1/find", json={"first_name": "Finn"}, headers=me)
    assert r.status_code == 422 and "last name and date of birth" in r.json()["detail"]
    page = await api.http.post("/find", headers=me, data={"last_name": "frontdoor", "date_of_birth": kid["date_of_birth"]})
    assert page.status_code == 200 and f"/cases/{kern_cid}" in page.text

    rows = await access(api, "cm.finder")
    assert (kern_cid, "api:find") in rows and (kern_cid, "web:find") in rows
    assert ("(search)", "api:find:2") in rows  # the index matched both; one was in scope
    typed = [kid["cin"], "91234567F", "finn", "fiona", "frontdoor", kid["date_of_birth"]]
    assert not [t for t in typed for row in rows if t.lower() in " ".join(row).lower()]
