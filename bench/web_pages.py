"""Web pages over 20,000 open cases: how long each page of the web app takes to answer.

The read model (cases, open tasks, audit rows, Notices of Action) is seeded with N open
cases straight into PostgreSQL, as ``bench.scale`` would leave it after N referrals but
without waiting ~13 minutes for them; a few real cases run on the dev server for the case
page (a workflow query, its timeline and notices). Each page is asked for one after another
in process (httpx over ASGI, signed in as a Kern supervisor): p50/p95/max.

    python -m bench.web_pages                  # 20,000 cases
    python -m bench.web_pages --cases 2000     # quick
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy import insert

from activities.db import make_engine
from activities.tables import AuditRow, CaseRow, OutboxRow, TaskRow
from bench.common import command_line, latency_row, loadavg, log, machine_md, md_table, referral, stack, write_section
from models.case import Actor
from models.policy import Policy
from starters.api.app import build_services, create_app
from starters.api.settings import ApiSettings
from starters.client import Cases

COUNTIES = ("Kern",) * 3 + ("Fresno", "Alameda", "Los Angeles", "Orange", "Tulare", "Alpine")
STAGES = ("intake", "records", "eligibility", "medical_review", "active")
PASSWORD = "bench-password-123"


def _seed_rows(n: int, now: datetime):
    rnd = random.Random(13)
    cases, tasks, audit, notices = [], [], [], []
    for i in range(n):
        cid, county = f"case-seed{i:06d}", rnd.choice(COUNTIES)
        opened = now - timedelta(days=rnd.uniform(1, 360))
        cm = f"cm.{county.lower().replace(' ', '')}{rnd.randint(1, 40)}" if rnd.random() < 0.8 else None
        cases.append(dict(case_id=cid, stage=rnd.choice(STAGES), stage_since=opened, county=county,
                          jurisdiction="county", case_manager=cm, next_deadline=now + timedelta(days=5),
                          conditions=["E84.0"], opened_at=opened, last_seq=3))
        assignee = rnd.choice([cm or f"{county}:unassigned", f"{county}:unassigned", "supervisor"])
        tasks.append(dict(case_id=cid, task_id="T1", kind="records", title="Receive medical records",
                          assignee=assignee, county=county, due=now + timedelta(days=rnd.uniform(-30, 60)),
                          status="open", opened_at=opened))
        audit.append(dict(case_id=cid, source=cid, seq=1, at=opened, actor_id="clerk.bench",
                          actor_role="intake_clerk", action="refer", stage="intake", county=county, detail={}))
        if rnd.random() < 0.6:
            audit.append(dict(case_id=cid, source=cid, seq=2, at=opened + timedelta(days=rnd.uniform(5, 70)),
                              actor_id="doc.bench", actor_role="medical_consultant",
                              action="record_medical_determination", stage="medical_review", county=county,
                              detail={"eligible": True}))
        if rnd.random() < 0.1:
            notices.append(dict(key=f"{cid}:noa", case_id=cid, kind="notice_of_action", recipient="family",
                                subject="CCS Notice of Action", body="(seeded)", status="sent",
                                created_at=opened, sent_at=opened + timedelta(days=rnd.uniform(0, 10))))
    return cases, tasks, audit, notices


async def seed(engine, n: int) -> None:
    rows = _seed_rows(n, datetime.now(timezone.utc))
    async with engine.begin() as conn:
        for table, values in zip((CaseRow, TaskRow, AuditRow, OutboxRow), rows):
            for i in range(0, len(values), 2000):
                await conn.execute(insert(table), values[i:i + 2000])


async def run(n: int, real: int, rounds: int) -> str:
    async with stack("web") as st:
        engine = make_engine(st.database_url, pool_size=10)
        t0 = time.perf_counter()
        await seed(engine, n)
        log(f"seeded {n} cases in {time.perf_counter() - t0:.1f}s")
        async with st.worker("web"):
            cases = Cases(st.client, "web", Policy(), st.keyring.case_id_secret)
            real_ids = [(await cases.refer(referral(i, tag="Web"), Actor(id="clerk.bench", role="intake_clerk"))).case_id
                        for i in range(real)]
            api = ApiSettings(CCS_API_SECRET="bench-" + os.urandom(8).hex())
            services = build_services(cases, engine, api, api.token_secret.encode())
            await services.users.add("sup.bench", "supervisor", "Kern", PASSWORD)
            app = create_app(api=api, services=services)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
                r = await http.post("/sign-in", data={"user_id": "sup.bench", "password": PASSWORD})
                assert r.status_code == 303, r.text
                pages = {"My work (/)": lambda i: "/",
                         "a case (/cases/ID)": lambda i: f"/cases/{real_ids[i % len(real_ids)]}",
                         "overdue tasks": lambda i: "/supervisor/overdue",
                         "workload": lambda i: "/supervisor/workload",
                         "timeliness": lambda i: "/supervisor/timeliness",
                         "stuck cases": lambda i: "/supervisor/stuck?min_days=0"}
                rows, load_before = [], loadavg()
                for name, path in pages.items():
                    times = []
                    for i in range(rounds):
                        t = time.perf_counter()
                        r = await http.get(path(i))
                        times.append(time.perf_counter() - t)
                        assert r.status_code == 200, (path(i), r.status_code)
                    rows.append({"page": name, **latency_row(times)})
                    log(f"{name}: {rows[-1]}")
        await engine.dispose()
    body = (f"## Web pages over {n:,} open cases\n\n{machine_md()}\n\n`{command_line()}`: {n:,} open cases seeded "
            f"into the read model (cases, one open task each, audit rows, Notices of Action for 10%), {real} real "
            f"cases on the dev server for the case page; each page asked {rounds} times one after another, in "
            f"process (httpx over ASGI, a Kern supervisor signed in; Kern holds a third of the cases). Load "
            f"average {load_before} before the pages, {loadavg()} after (other engineers' processes share "
            f"the 2 CPUs). Stuck cases reads Temporal visibility, which here holds only the {real} real cases "
            f"(its query at 20,000 cases is in the scale section).\n\n"
            + md_table(rows, [("page", "page"), ("n", "n"), ("p50_ms", "p50 ms"), ("p95_ms", "p95 ms"),
                              ("max_ms", "max ms")]))
    return body


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=20000)
    p.add_argument("--real", type=int, default=10)
    p.add_argument("--rounds", type=int, default=60)
    args = p.parse_args()
    write_section("web", asyncio.run(run(args.cases, args.real, args.rounds)))


if __name__ == "__main__":
    main()
