"""HTTP API latency over N open cases: `GET /api/v1/cases` (a county and stage filter, the
first page of 50) and `GET /api/v1/cases/{id}` (the scope check, the workflow query and the
access-log row), each p50/p95 over one request after another, through a real `ccs serve`
process signed in as a Kern case manager. A quarter of the cases are in Kern, the rest
spread over the other counties; the worker is a real `ccs worker` process.

    python -m bench.api                    # quick: 2,000 cases
    python -m bench.api --cases 20000      # full
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import time
import uuid

import httpx
from sqlalchemy import func, select

from activities.db import make_engine, session_factory
from activities.tables import CaseRow
from bench.common import (BIN, Progress, bounded, command_line, free_port, latency_row, loadavg, log, machine_md,
                          md_table, referral, stack, write_section)
from models.case import Actor
from models.counties import county_names
from models.policy import Policy
from starters.api.settings import ApiSettings
from starters.api.users import Users
from starters.client import Cases

INTAKE = Actor(id="clerk.intake", role="intake_clerk")
QUEUE = "bench-api"


async def _serve(worker_env: dict, home, port: int, secret: str) -> subprocess.Popen:
    env = {**worker_env, "CCS_HOME": str(home), "CCS_API_PORT": str(port), "CCS_API_SECRET": secret}
    home.mkdir(parents=True, exist_ok=True)
    log_file = open(home / "serve.log", "ab")
    proc = subprocess.Popen([str(BIN / "ccs"), "serve"], env=env, cwd=home, stdout=log_file, stderr=log_file,
                            start_new_session=True)
    log_file.close()
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            try:
                if (await http.get(f"http://127.0.0.1:{port}/openapi.json")).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
    raise RuntimeError(f"`ccs serve` did not start: {(home / 'serve.log').read_text()[-2000:]}")


async def _timed(http: httpx.AsyncClient, urls: list[str]) -> list[float]:
    out = []
    for url in urls:
        t = time.perf_counter()
        r = await http.get(url)
        out.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise RuntimeError(f"GET {url}: {r.status_code} {r.text[:300]}")
    return out


async def main(args) -> None:
    rng = random.Random(args.seed)
    tag = uuid.uuid4().hex[:4]
    others = [c for c in county_names() if c != "Kern"]
    out: dict = {"load_start": loadavg()}
    async with stack("api") as st:
        worker = st.worker_process(QUEUE, args.cache)
        await worker.start()
        cases = Cases(st.client, QUEUE, Policy(), st.keyring.case_id_secret)
        kern: list[str] = []
        progress = Progress("referred", args.cases)

        async def refer(i: int) -> None:
            county = "Kern" if i % 4 == 0 else others[i % len(others)]
            status = await cases.refer(referral(i, county=county, tag=tag), INTAKE)
            if county == "Kern":
                kern.append(status.case_id)
            progress.tick()

        log(f"referring {args.cases} cases, {args.concurrency} at a time")
        t0 = time.perf_counter()
        await bounded(range(args.cases), args.concurrency, refer)
        out["create_s"] = time.perf_counter() - t0
        engine = make_engine(st.database_url, pool_size=2)
        async with engine.connect() as conn:
            while (await conn.execute(select(func.count()).select_from(CaseRow))).scalar_one() < args.cases:
                await asyncio.sleep(0.2)
        secret = os.urandom(24).hex()
        password = os.urandom(12).hex()
        await Users(session_factory(engine), ApiSettings(CCS_API_SECRET=secret)).add(
            "cm.bench", "case_manager", "Kern", password)
        await engine.dispose()

        port = free_port()
        api = await _serve(worker.env, st.tmp / "api", port, secret)
        try:
            base = f"http://127.0.0.1:{port}/api/v1"
            async with httpx.AsyncClient(timeout=60) as http:
                token = (await http.post(f"{base}/sign-in", json={"user_id": "cm.bench", "password": password})
                         ).json()["access_token"]
                http.headers["Authorization"] = f"Bearer {token}"
                page = f"{base}/cases?county=Kern&stage=intake&limit=50"
                first = (await http.get(page)).json()
                out["page_items"] = len(first["items"])
                await _timed(http, [page] * 10)  # warm-up: connections, the server's first imports
                out["list"] = latency_row(await _timed(http, [page] * args.requests))
                picked = [rng.choice(kern) for _ in range(args.requests)]
                out["show"] = latency_row(await _timed(http, [f"{base}/cases/{cid}" for cid in picked]))
        finally:
            api.terminate()
            api.wait(30)
            worker.stop()
        out["kern"] = len(kern)
        out["load_end"] = loadavg()
    write_section("api", report(args, out))


def report(args, out: dict) -> str:
    n = args.cases
    rows = [{"what": "`GET /api/v1/cases?county=Kern&stage=intake&limit=50` (first page)", **out["list"]},
            {"what": "`GET /api/v1/cases/{id}` (random Kern case)", **out["show"]}]
    met = lambda row, ms: "met" if row["p95_ms"] < ms else "missed"  # noqa: E731
    full = "" if n >= 20000 else (f" **This run has {n:,} cases, not the 20,000 of the target** "
                                  "(`--cases 20000` for the full figure).")
    return f"""## HTTP API: case list and one case

`{command_line()}`: {n:,} open cases (intake), {out['kern']:,} of them in Kern, referred in {out['create_s']:.0f} s;
a real `ccs worker` (cache {args.cache}) and a real `ccs serve` process, signed in as a Kern case manager;
{args.requests} requests of each kind, one after another, over HTTP on loopback. Load average
{out['load_start']} at the start, {out['load_end']} at the end (other processes share the machine's CPUs).{full}

{machine_md()}

{md_table(rows, [("what", "request"), ("n", "n"), ("p50_ms", "p50 ms"), ("p95_ms", "p95 ms"), ("max_ms", "max ms")])}

Targets at 20,000 open cases: p95 under 100 ms for the list ({met(out['list'], 100)} at {n:,}; the first page
held {out['page_items']} cases) and under 50 ms for one case ({met(out['show'], 50)} at {n:,}). One case is a
scope lookup in the read model, the workflow's `status` query (a case outside the worker's cache of
{args.cache} replays its history first) and an access-log insert.
"""


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=2000, help="open cases to create (full: 20000)")
    p.add_argument("--concurrency", type=int, default=20, help="referrals in flight at once")
    p.add_argument("--cache", type=int, default=1000, help="the worker's CCS_MAX_CACHED_WORKFLOWS")
    p.add_argument("--requests", type=int, default=300, help="requests of each kind")
    p.add_argument("--seed", type=int, default=21)
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
