"""Scale: N open cases waiting on timers (just referred: intake, second notice in 20 days).

Measures, on one dev server (SQLite, WAL) and one PostgreSQL, with the product's worker as
a real `ccs worker` process (DATABASE_URL, CCS_MAX_CACHED_WORKFLOWS and the keys from the
environment, as an operator runs it):

- the time to refer N cases (cases/s), C at a time, through starters.client.Cases;
- the dev server's and the worker's memory (RSS) as the cases are created, and after;
- worker memory at a second cache size: a fresh `ccs worker` with a larger cache, after
  enough cases were read (`ccs show`) to fill it, so memory is shown to follow the cache
  setting, not the number of cases;
- `ccs show` latency (Cases.show over random cases, in process: p50/p95; and a few runs of
  the real `ccs show` command, Python start-up included);
- `ccs stuck` latency (starters.supervisor.stuck, minimum time in stage 0, limit 200) and
  `ccs overdue` latency (WorkQueue.overdue, within 30 days): p50/p95; and a few runs of the
  real commands.

    python -m bench.scale                    # quick: 2,000 cases
    python -m bench.scale --cases 20000      # full
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import time
import uuid
from datetime import timedelta

from sqlalchemy import func, select

import httpx

from activities.db import make_engine, session_factory
from activities.tables import TaskRow
from bench.common import (
    BIN,
    CpuMeter,
    Progress,
    bounded,
    command_line,
    free_port,
    keyring_env,
    latency_row,
    loadavg,
    log,
    machine_md,
    md_table,
    referral,
    rss_mb,
    stack,
    write_section,
)
from models.case import Actor
from models.counties import county_names
from models.policy import Policy
from starters.api.auth import Tokens
from starters.api.settings import ApiSettings
from starters.api.users import Users
from starters.client import Cases
from starters.supervisor import WorkQueue, stuck

INTAKE = Actor(id="clerk.intake", role="intake_clerk")
QUEUE = "bench-scale"


async def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return out


def run_cli(env: dict[str, str], *args: str) -> float:
    t = time.perf_counter()
    done = subprocess.run([str(BIN / "ccs"), *args], env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"ccs {' '.join(args)} failed: {done.stderr[-500:]}")
    return elapsed


async def signed_in_cli(st, engine, county: str) -> tuple[dict[str, str], subprocess.Popen]:
    """`ccs serve` against the stack, and the environment of a `ccs` signed in as a supervisor
    of ``county`` (a user in the database, a token the API signed)."""
    secret = uuid.uuid4().hex * 2
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CCS_", "TEMPORAL_"))}
    env.update(keyring_env(st.keyring))
    env.update({"TEMPORAL_ADDRESS": st.server.address, "CCS_TASK_QUEUE": QUEUE, "CCS_HOME": str(st.tmp / "cli"),
                "CCS_ENV_FILE": str(st.tmp / "none.env"), "DATABASE_URL": st.database_url,
                "CCS_API_SECRET": secret, "CCS_API_PORT": str(port), "CCS_API_URL": f"http://127.0.0.1:{port}"})
    proc = subprocess.Popen([str(BIN / "ccs"), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = ApiSettings(CCS_API_SECRET=secret)
    user = f"bench.sup.{uuid.uuid4().hex[:6]}"
    await Users(session_factory(engine), api).add(user, "supervisor", county)
    env["CCS_TOKEN"], _ = Tokens(api, api.secret(st.tmp)).issue(user, "supervisor", county)
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(f"http://127.0.0.1:{port}/openapi.json")).status_code == 200:
                    return env, proc
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("ccs serve did not come up")


async def main(args) -> None:
    rng = random.Random(args.seed)
    tag = uuid.uuid4().hex[:4]
    counties = county_names()
    small, large = args.cache_sizes
    out: dict = {"rss": [], "load_start": loadavg()}
    async with stack("scale") as st:
        engine = make_engine(st.database_url, pool_size=2)
        cases = Cases(st.client, QUEUE, Policy(), st.keyring.case_id_secret)
        worker = st.worker_process(QUEUE, small)
        await worker.start()
        out["rss"].append({"when": "worker started, no case yet", "cases": 0, "cache": small,
                           "worker": worker.rss_mb(), "server": rss_mb(st.server.pid)})

        # ---- create N cases ---------------------------------------------------------
        ids: list[str] = []
        county_of: dict[str, str] = {}
        checkpoints = {args.cases * k // 4 for k in (1, 2, 3, 4)}
        progress = Progress("referred", args.cases)

        async def refer(i: int) -> None:
            status = await cases.refer(referral(i, county=counties[i % len(counties)], tag=tag), INTAKE)
            ids.append(status.case_id)
            county_of[status.case_id] = counties[i % len(counties)]
            progress.tick()
            if len(ids) in checkpoints:
                out["rss"].append({"when": f"after {len(ids):,} referrals", "cases": len(ids), "cache": small,
                                   "worker": worker.rss_mb(), "server": rss_mb(st.server.pid)})

        log(f"referring {args.cases} cases, {args.concurrency} at a time, worker cache {small}")
        meter = CpuMeter(st)
        meter.start()
        t0 = time.perf_counter()
        await bounded(range(args.cases), args.concurrency, refer)
        out["create_s"] = time.perf_counter() - t0

        async def open_tasks() -> int:
            async with engine.connect() as conn:
                return (await conn.execute(select(func.count()).select_from(TaskRow)
                                           .where(TaskRow.status == "open"))).scalar_one()

        while await open_tasks() < args.cases:  # every step recorded in PostgreSQL too
            await asyncio.sleep(0.1)
        out["recorded_s"] = time.perf_counter() - t0
        out["create_cpu"] = meter.stop()
        await asyncio.sleep(2)
        out["rss"].append({"when": "all created, 2 s later", "cases": len(ids), "cache": small,
                           "worker": worker.rss_mb(), "server": rss_mb(st.server.pid)})
        out["worker_peak_small"] = worker.peak_mb()
        out["sqlite_mb"] = st.server.db_size_mb()
        log(f"created in {out['create_s']:.0f}s ({args.cases / out['create_s']:.1f}/s); "
            f"worker {worker.rss_mb():.0f} MB, dev server {rss_mb(st.server.pid):.0f} MB")

        # ---- ccs show ------------------------------------------------------------------
        async def show_sample(label: str) -> dict:
            picked = [rng.choice(ids) for _ in range(args.shows)]
            lat = []
            for cid in picked:
                t = time.perf_counter()
                await cases.show(cid)
                lat.append(time.perf_counter() - t)
            log(f"  show ({label}): p50 {statistics.median(lat) * 1000:.0f} ms")
            return latency_row(lat)

        out["show_small"] = await show_sample(f"cache {small}")
        # The person verbs are clients of the HTTP API: a `ccs serve` of its own, and a supervisor
        # of one county signed in (a token in CCS_TOKEN); `ccs show` reads that county's cases.
        county = counties[0]
        cli_env, api_proc = await signed_in_cli(st, engine, county)
        in_county = [cid for cid in ids if county_of[cid] == county]
        out["cli_show"] = [run_cli(cli_env, "show", rng.choice(in_county)) for _ in range(args.cli_runs)]

        # ---- ccs stuck, ccs overdue ------------------------------------------------------
        policy = Policy()
        probe = await stuck(st.client, policy, min_in_stage=timedelta(0), limit=200)
        out["stuck_total"], out["stuck_shown"] = probe["total"], probe["shown"]
        out["stuck"] = latency_row(await timed(
            lambda: stuck(st.client, policy, min_in_stage=timedelta(0), limit=200), args.queries))
        out["stuck_county"] = latency_row(await timed(
            lambda: stuck(st.client, policy, county=county, min_in_stage=timedelta(0), limit=200), args.queries))
        out["stuck_county_name"] = county
        queue = WorkQueue(engine)
        probe = await queue.overdue(within=timedelta(days=30))
        out["overdue_total"], out["overdue_shown"] = probe["total"], len(probe["tasks"])
        out["overdue"] = latency_row(await timed(lambda: queue.overdue(within=timedelta(days=30)), args.queries))
        out["cli_stuck"] = [run_cli(cli_env, "stuck", "--min", "0", "--json") for _ in range(args.cli_runs)]
        out["cli_overdue"] = [run_cli(cli_env, "overdue", "--within", "30", "--json") for _ in range(args.cli_runs)]
        api_proc.terminate()
        api_proc.wait(timeout=30)
        log(f"  stuck p95 {out['stuck']['p95_ms']} ms over {out['stuck_total']} cases; "
            f"overdue p95 {out['overdue']['p95_ms']} ms over {out['overdue_total']} tasks")

        # ---- a second cache size -------------------------------------------------------------
        worker.stop()
        big = st.worker_process(QUEUE, large)
        await big.start()
        out["rss"].append({"when": "fresh worker, nothing read yet", "cases": len(ids), "cache": large,
                           "worker": big.rss_mb(), "server": rss_mb(st.server.pid)})
        fill = ids[: min(len(ids), int(large * 1.2))]
        log(f"reading {len(fill)} cases to fill a cache of {large}")
        t0 = time.perf_counter()
        progress = Progress("read", len(fill))

        async def read(cid: str) -> None:
            await cases.show(cid)
            progress.tick()

        await bounded(fill, args.concurrency, read)
        out["fill_s"], out["fill_n"] = time.perf_counter() - t0, len(fill)
        await asyncio.sleep(2)
        out["rss"].append({"when": f"after reading {len(fill):,} cases", "cases": len(ids), "cache": large,
                           "worker": big.rss_mb(), "server": rss_mb(st.server.pid)})
        out["worker_peak_large"] = big.peak_mb()
        out["show_large"] = await show_sample(f"cache {large}")
        out["load_end"] = loadavg()
        big.stop()
        await engine.dispose()
    write_section("scale", report(args, out))


def report(args, out: dict) -> str:
    small, large = args.cache_sizes
    n = args.cases
    rss = out["rss"]
    r_small = next(r for r in rss if r["when"] == "all created, 2 s later")["worker"]
    r_large = rss[-1]["worker"]
    in_small, in_large = min(n, small), min(n, large)
    per_case = (r_large - r_small) / (in_large - in_small) if in_large > in_small else float("nan")
    cpu = out["create_cpu"]
    marks = [r for r in rss if r["cache"] == small and r["when"].startswith("after ")]
    q1 = marks[0]["cases"]
    grow_early = marks[0]["worker"] - rss[0]["worker"]
    grow_late = marks[-1]["worker"] - marks[0]["worker"]
    bounded_note = (": its memory follows the cache setting, not the number of cases"
                    if n >= 4 * small and grow_late < grow_early / 2 else
                    " (at this size the figures do not tell the cache from the number of cases apart)")
    per_case_note = (f"about {per_case * 1024:.0f} KB per cached case (the difference between the two workers, "
                     "divided by the difference in cached cases)" if per_case > 0 else
                     "too few cases at this size to tell the memory per cached case")
    rows_rss = [{**r, "worker": round(r["worker"]), "server": round(r["server"])} for r in rss]
    lat_rows = [
        {"what": f"`ccs show` (Cases.show), worker cache {small}", **out["show_small"]},
        {"what": f"`ccs show` (Cases.show), worker cache {large}", **out["show_large"]},
        {"what": "`ccs stuck --min 0` (stuck, limit 200)", **out["stuck"]},
        {"what": f"`ccs stuck --min 0 --county {out['stuck_county_name']}`", **out["stuck_county"]},
        {"what": "`ccs overdue --within 30` (WorkQueue.overdue)", **out["overdue"]},
    ]
    cli = ", ".join
    fmt = lambda xs: cli(f"{x * 1000:.0f}" for x in xs)  # noqa: E731
    stuck_ok = "met" if out["stuck"]["p95_ms"] < 1000 else "missed"
    overdue_ok = "met" if out["overdue"]["p95_ms"] < 1000 else "missed"
    full = "" if n >= 20000 else (f" **This run has {n:,} cases, not the 20,000 of the target** "
                                  "(`--cases 20000` for the full figure).")
    return f"""## Scale: open cases waiting on timers

`{command_line()}`: {n:,} cases referred (intake, the second notice 20 days out), {args.concurrency} at a
time, through starters.client.Cases; the worker is a real `ccs worker` process. Load average
{out['load_start']} at the start, {out['load_end']} at the end (other processes on the machine share its CPUs).{full}

{machine_md()}

**Creation: {n / out['create_s']:.1f} cases/s** ({n:,} referrals answered in {out['create_s']:.0f} s; every step
recorded in PostgreSQL after {out['recorded_s']:.0f} s). CPU per referral: worker {cpu['worker:' + QUEUE] / n * 1000:.0f} ms,
dev server {cpu['temporal'] / n * 1000:.0f} ms, PostgreSQL {cpu['postgres'] / n * 1000:.0f} ms, client {cpu['bench'] / n * 1000:.0f} ms;
this benchmark kept {cpu['busy']:.0%} of the machine's CPUs busy, other processes {cpu['other_share']:.0%}.
The dev server's SQLite file: {out['sqlite_mb']:.0f} MB.

**Memory** (RSS, MB). With a cache of {small}, the worker grew by {grow_late:.0f} MB from
{q1:,} to {n:,} open cases, after {grow_early:.0f} MB over the first {q1:,}{bounded_note}. A fresh worker
with a cache of {large} grew until its cache held {in_large:,} cases: {per_case_note}. Peak RSS: {out['worker_peak_small']:.0f} MB
(cache {small}), {out['worker_peak_large']:.0f} MB (cache {large}). Filling the larger cache read
{out['fill_n']:,} cases in {out['fill_s']:.0f} s ({out['fill_n'] / out['fill_s']:.0f}/s; each read of a case outside the cache
replays its history).

{md_table(rows_rss, [("when", "when"), ("cases", "open cases"), ("cache", "worker cache"),
                     ("worker", "worker RSS"), ("server", "dev server RSS")])}

**Latency** over {n:,} open cases (p50/p95 over {args.shows} random cases for show, {args.queries} calls
for the others, one after another, in process). `ccs stuck` found {out['stuck_total']:,} cases and
listed {out['stuck_shown']}; `ccs overdue` found {out['overdue_total']:,} tasks and listed {out['overdue_shown']}.
Targets at 20,000 cases: p95 under 1 s for stuck ({stuck_ok} at {n:,}) and overdue ({overdue_ok} at {n:,}).
A `ccs show` of a case outside the worker's cache replays the case's history first.

{md_table(lat_rows, [("what", "call"), ("n", "n"), ("p50_ms", "p50 ms"), ("p95_ms", "p95 ms"), ("max_ms", "max ms")])}

The real commands, each a new process (Python start-up, then the HTTP API of a `ccs serve`, signed in
as a supervisor of {out['stuck_county_name']}: their county's cases), milliseconds per run:
`ccs show` {fmt(out['cli_show'])}; `ccs stuck --min 0 --json` {fmt(out['cli_stuck'])};
`ccs overdue --within 30 --json` {fmt(out['cli_overdue'])}.
"""


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=2000, help="open cases to create (full: 20000)")
    p.add_argument("--concurrency", type=int, default=20, help="referrals (and reads) in flight at once")
    p.add_argument("--cache-sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=(500, 5000),
                   help="the worker cache (CCS_MAX_CACHED_WORKFLOWS) for creation, then for the second worker")
    p.add_argument("--shows", type=int, default=300, help="Cases.show calls per cache size")
    p.add_argument("--queries", type=int, default=30, help="stuck and overdue calls")
    p.add_argument("--cli-runs", type=int, default=5, help="runs of each real `ccs` command")
    p.add_argument("--seed", type=int, default=21)
    args = p.parse_args(argv)
    if len(args.cache_sizes) != 2 or args.cache_sizes[0] >= args.cache_sizes[1]:
        p.error("--cache-sizes takes two sizes, smaller first: 500,5000")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
