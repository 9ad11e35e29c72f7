"""What the identity index costs a referral.

    python -m bench.identity --children 20000 --referrals 200

1. The index alone: resolving and claiming new children, one at a time and 20 at a time,
   after the index holds ``--children`` children (latency should not grow with it).
2. A referral through the Python client (update-with-start on the dev server, one in-process
   worker) with and without the index in front of it.
3. 20 referrals of one new child at once: one case, and how long the burst takes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import date, timedelta

from sqlalchemy import func, select

from activities.db import make_engine, session_factory
from activities.identity import resolve_and_claim
from activities.tables import IdentityKeyRow
from bench.common import bounded, latency_row, log, machine_md, md_table, stack, write_section
from models.case import Actor
from models.policy import Policy
from rules.identity import child_keys
from starters.client import Cases

INTAKE = Actor(id="bench.intake", role="intake_clerk")


def keys(secret: bytes, i: int, tag: str):
    dob = date(2010, 1, 1) + timedelta(days=i % 4000)
    return child_keys(secret, first_name=f"Child{tag}{i}", last_name=f"Bench{i % 997}", date_of_birth=dob,
                      cin=f"{(i * 7919) % 10**8:08d}{tag[:1].upper() or 'A'}")


def referral_data(i: int, tag: str) -> dict:
    dob = (date.today() - timedelta(days=400 + i % 3000)).isoformat()
    return {"child": {"first_name": f"Ref{tag}{i}", "last_name": f"Bench{i}", "date_of_birth": dob, "county": "Kern",
                      "cin": f"{(i * 104729) % 10**8:08d}{tag[:1].upper()}"},
            "referrer": {"kind": "specialist", "name": "Bench Clinic"},
            "conditions": [{"icd10": "E84.0", "description": "bench condition"}],
            "medi_cal": {"full_scope": True}}


async def timed(fn, items, concurrency: int) -> list[float]:
    async def one(item):
        t0 = time.perf_counter()
        await fn(item)
        return time.perf_counter() - t0
    return await bounded(items, concurrency, one)


async def main(children: int, referrals: int) -> None:
    rows = []
    async with stack("identity") as st:
        engine = make_engine(st.database_url, pool_size=20)
        sessions = session_factory(engine)
        secret = os.urandom(32)
        t0 = time.perf_counter()
        await bounded(range(children), 20, lambda i: resolve_and_claim(sessions, keys(secret, i, "a")))
        fill = time.perf_counter() - t0
        async with sessions() as s:
            held = await s.scalar(select(func.count()).select_from(IdentityKeyRow))
        log(f"index filled with {children} children ({held} keys) in {fill:.1f}s")
        for conc, tag in ((1, "b"), (20, "c")):
            lat = await timed(lambda i: resolve_and_claim(sessions, keys(secret, i, tag)), range(500), conc)
            rows.append({"what": f"index: resolve + claim a new child, {conc} at a time", **latency_row(lat)})
        lat = await timed(lambda i: resolve_and_claim(sessions, keys(secret, i, "a")), range(500), 20)
        rows.append({"what": "index: a child already indexed, 20 at a time", **latency_row(lat)})

        async with st.worker("bench-identity"):
            plain = Cases(st.client, "bench-identity", Policy(), os.urandom(32))
            indexed = Cases(st.client, "bench-identity", Policy(), os.urandom(32), sessions)
            for label, cases, tag in (("client: new referral, no index", plain, "p"),
                                      ("client: new referral, with the index", indexed, "i")):
                lat = await timed(lambda i: cases.submit_referral(referral_data(i, tag), INTAKE),
                                  range(referrals), 10)
                rows.append({"what": f"{label} (10 at a time)", **latency_row(lat)})
            t0 = time.perf_counter()
            answers = await asyncio.gather(*(indexed.submit_referral(referral_data(10**6, "burst"), INTAKE)
                                             for _ in range(20)))
            burst = time.perf_counter() - t0
        await engine.dispose()
    cases_opened = len({a.case_id for a in answers})
    load = os.getloadavg()
    body = f"""## Identity index

`python -m bench.identity --children {children} --referrals {referrals}`: the index filled with {children}
children ({held} keys) in {fill:.1f} s (20 at a time), then each row below; latency per call at the client.
The client rows run update-with-start against the dev server with one in-process worker.

{machine_md()} Load average after the run: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}
(other engineers' test runs shared the 2 CPUs).

{md_table(rows, [("what", "what"), ("p50_ms", "p50 ms"), ("p95_ms", "p95 ms"), ("max_ms", "max ms"), ("n", "n")])}

20 referrals of one new child at once through the client: {cases_opened} case opened,
{sum(not a.duplicate_referral for a in answers)} answer new and {sum(a.duplicate_referral for a in answers)} duplicate_referral, all in {burst:.2f} s.
"""
    write_section("identity", body)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--children", type=int, default=20000)
    p.add_argument("--referrals", type=int, default=200)
    a = p.parse_args()
    asyncio.run(main(a.children, a.referrals))
